import { describe, expect, it } from 'vitest'
import { inferCountry, localeRegion } from './country.js'

describe('inferCountry', () => {
  it.each([
    ['a Brazilian mobile', '+5511987654321', 'BR'],
    ['a Portuguese mobile', '+351912345678', 'PT'],
    ['a Mexican mobile', '+525512345678', 'MX'],
    ['a US number', '+12015550123', 'US'],
    ['a Canadian number (same +1 as the US)', '+14165550123', 'CA'],
    ['a UK mobile', '+447400123456', 'GB'], ['a Guernsey mobile (+44 too)', '+447911123456', 'GG'],
  ])('takes the country of %s as a strong signal', (_, phoneE164, code) => {
    expect(inferCountry({ phoneE164 })).toEqual({ code, from: 'phone', confidence: 'strong' })
  })

  it('prefers the phone over the locale', () => {
    expect(inferCountry({ phoneE164: '+351912345678', locale: 'pt-BR' })).toEqual({ code: 'PT', from: 'phone', confidence: 'strong' })
  })

  it('falls back to the locale as a weak signal when the phone is not a valid number', () => {
    expect(inferCountry({ phoneE164: '+999', locale: 'pt-BR' })).toEqual({ code: 'BR', from: 'locale', confidence: 'weak' })
  })

  it.each([
    ['nothing', {}],
    ['a locale without a region', { locale: 'pt' }],
    ['garbage', { phoneE164: 12, locale: { a: 1 } }],
    ['a huge phone', { phoneE164: '+55'.repeat(100_000) }],
  ])('says nothing for %s', (_, input) => {
    expect(inferCountry(input)).toBeNull()
  })
})

describe('localeRegion', () => {
  it.each([
    ['pt-BR', 'BR'], ['pt_BR', 'BR'], ['en-US', 'US'], ['es-MX', 'MX'], ['zh-Hant-TW', 'TW'], ['sr-Latn-RS', 'RS'],
    ['pt-br', 'BR'], ['pt-BR,pt;q=0.9,en-US;q=0.8', 'BR'], ['  de-AT  ', 'AT'],
  ])('reads the region of %s', (locale, region) => {
    expect(localeRegion(locale)).toBe(region)
  })

  it.each([
    ['a language alone', 'pt'], ['a numeric region (Latin America)', 'es-419'], ['an unknown region', 'en-XX'],
    ['a malformed tag', 'not a locale!'], ['empty', ''], ['not a string', 42], ['huge', `pt-BR${'-x'.repeat(10_000)}`],
  ])('answers null for %s', (_, locale) => {
    expect(localeRegion(locale)).toBeNull()
  })
})
