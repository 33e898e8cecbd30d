import { describe, expect, it } from 'vitest'
import { type CountryCode, normalizePhone, phoneMatchKey, waIdToE164 } from './phone.js'

describe('normalizePhone', () => {
  it.each<[string, CountryCode | undefined, string, CountryCode]>([
    // Brazil
    ['+55 11 98765-4321', undefined, '+5511987654321', 'BR'],
    ['(11) 98765-4321', 'BR', '+5511987654321', 'BR'],
    ['011 98765-4321', 'BR', '+5511987654321', 'BR'],
    ['021 11 98765-4321', 'BR', '+5511987654321', 'BR'], // trunk 0 + carrier 21
    ['0055 11 98765-4321', 'BR', '+5511987654321', 'BR'], // 00 + country code, not Brazil's 00 + carrier
    ['0055 11 98765-4321', undefined, '+5511987654321', 'BR'],
    ['5511987654321', undefined, '+5511987654321', 'BR'],
    ['5511987654321', 'US', '+5511987654321', 'BR'],
    ['+55 (21) 9 8765-4321', undefined, '+5521987654321', 'BR'],
    ['(21) 8765-4321', 'BR', '+5521987654321', 'BR'], // a mobile typed the old 8-digit way gets its ninth digit
    ['(11) 3265-4321', 'BR', '+551132654321', 'BR'], // landline: no ninth digit
    ['0800 123 4567', 'BR', '+558001234567', 'BR'],
    ['１１ ９８７６５-４３２１', 'BR', '+5511987654321', 'BR'], // full-width digits from a CJK keyboard
    // Mexico
    ['+52 55 1234 5678', undefined, '+525512345678', 'MX'],
    ['55 1234 5678', 'MX', '+525512345678', 'MX'],
    ['+52 1 55 1234 5678', undefined, '+525512345678', 'MX'], // retired mobile prefix
    ['5215512345678', undefined, '+525512345678', 'MX'],
    // Argentina
    ['+54 9 11 2345-6789', undefined, '+5491123456789', 'AR'],
    ['011 15 2345-6789', 'AR', '+5491123456789', 'AR'],
    ['11 15 2345-6789', 'AR', '+5491123456789', 'AR'],
    ['0223 15 512-3456', 'AR', '+5492235123456', 'AR'],
    ['+54 11 2345-6789', undefined, '+541123456789', 'AR'],
    // United States
    ['+1 (201) 555-0123', undefined, '+12015550123', 'US'],
    ['201-555-0123', 'US', '+12015550123', 'US'],
    ['1 201 555 0123', 'US', '+12015550123', 'US'],
    ['011 55 11 98765 4321', 'US', '+5511987654321', 'BR'], // US international prefix
    ['+1 201 555 0123 ext. 7', undefined, '+12015550123', 'US'],
    // Germany
    ['0151 23456789', 'DE', '+4915123456789', 'DE'],
    ['+49 30 123456', undefined, '+4930123456', 'DE'],
    ['0049 151 23456789', 'DE', '+4915123456789', 'DE'],
    // India
    ['+91 98765 43210', undefined, '+919876543210', 'IN'],
    ['098765 43210', 'IN', '+919876543210', 'IN'],
    ['98765-43210', 'IN', '+919876543210', 'IN'],
    // Portugal
    ['+351 912 345 678', undefined, '+351912345678', 'PT'],
    ['912 345 678', 'PT', '+351912345678', 'PT'],
  ])('reads %j (default %s) as %s', (raw, country, e164, detected) => {
    expect(normalizePhone(raw, country)).toEqual({ e164, country: detected })
  })

  it.each<[string, CountryCode | undefined]>([
    ['', 'BR'],
    ['   ', undefined],
    ['abc', 'BR'],
    ['123', 'BR'],
    ['+1 555', undefined],
    ['+999 1234567', undefined], // unassigned country code
    ['(11) 3265-432', 'BR'], // one digit short (a mobile one digit short reads as an old 8-digit mobile)
    ['98765-4321', 'BR'], // no area code
    ['(11) 98765-4321', undefined], // national without a default country
    ['+55 11 98765-4321 ' + '9'.repeat(60), undefined],
    ['+55 (21) 1765-4321', undefined], // neither a mobile nor a landline range
  ])('rejects %j (default %s)', (raw, country) => {
    expect(normalizePhone(raw, country)).toBeNull()
  })

  it('ignores an unsupported default country instead of throwing', () => {
    expect(normalizePhone('(11) 98765-4321', 'XX' as CountryCode)).toBeNull()
    expect(normalizePhone('+55 11 98765-4321', 'XX' as CountryCode)?.e164).toBe('+5511987654321')
  })
})

describe('waIdToE164', () => {
  it.each([
    ['5511987654321', '+5511987654321'],
    ['552187654321', '+552187654321'], // legacy Brazilian id kept as WhatsApp knows it
    ['5215512345678', '+5215512345678'], // legacy Mexican id kept as WhatsApp knows it
    ['525512345678', '+525512345678'],
    ['5491123456789', '+5491123456789'],
    ['12015550123', '+12015550123'],
    ['919876543210', '+919876543210'],
  ])('turns wa_id %s into %s', (waId, e164) => {
    expect(waIdToE164(waId)).toBe(e164)
  })

  it.each(['', '+5511987654321', '55 11 98765 4321', '0055119876543', '123', '9'.repeat(16), '551132654', '552117654321'])(
    'rejects %j',
    (waId) => {
      expect(waIdToE164(waId)).toBeNull()
    },
  )
})

describe('phoneMatchKey', () => {
  // Each row: how a form gives us the number, how WhatsApp does, and the key both must share.
  it.each<[string, string, CountryCode, string, string]>([
    ['Brazil, São Paulo mobile, id with the 9', '(11) 98765-4321', 'BR', '5511987654321', '+5511987654321'],
    ['Brazil, Rio mobile, old id without the 9', '(21) 98765-4321', 'BR', '552187654321', '+5521987654321'],
    ['Brazil, Rondônia mobile, old id without the 9', '+55 69 99602-1005', 'BR', '556996021005', '+5569996021005'],
    ['Brazil, mobile typed without the 9, id without it', '(31) 8765-4321', 'BR', '553187654321', '+5531987654321'],
    ['Mexico, mobile, legacy 521 id', '55 1234 5678', 'MX', '5215512345678', '+525512345678'],
    ['Mexico, Guadalajara, id without the 1', '+52 33 1234 5678', 'MX', '523312345678', '+523312345678'],
    ['Argentina, Buenos Aires mobile typed with 15', '011 15 2345-6789', 'AR', '5491123456789', '+541123456789'],
    ['Argentina, mobile typed as from abroad without the 9', '+54 11 2345-6789', 'AR', '5491123456789', '+541123456789'],
    ['Argentina, Mar del Plata mobile', '0223 15 512-3456', 'AR', '5492235123456', '+542235123456'],
    ['United States', '(201) 555-0123', 'US', '12015550123', '+12015550123'],
    ['Germany', '0151 23456789', 'DE', '4915123456789', '+4915123456789'],
    ['India', '98765 43210', 'IN', '919876543210', '+919876543210'],
    ['Portugal', '912 345 678', 'PT', '351912345678', '+351912345678'],
  ])('%s: form and WhatsApp share one key', (_story, typed, country, waId, key) => {
    const fromForm = normalizePhone(typed, country)
    const fromWhatsApp = waIdToE164(waId)
    expect(fromForm).not.toBeNull()
    expect(fromWhatsApp).not.toBeNull()
    expect(phoneMatchKey(fromForm!.e164)).toBe(key)
    expect(phoneMatchKey(fromWhatsApp!)).toBe(key)
  })

  it.each([
    ['+551132654321', '+551132654321'], // São Paulo landline (3…) never gets a 9
    ['+552125554321', '+552125554321'], // Rio landline (2…)
    ['+556135551234', '+556135551234'], // Brasília landline (3…)
    ['+554140041234', '+554140041234'], // 4…: landline / shared-cost ranges
    ['+558001234567', '+558001234567'], // 0800 toll free: "80" is not a DDD
    ['+5511987654321', '+5511987654321'],
    ['+525512345678', '+525512345678'],
    ['+543511234567', '+543511234567'],
    ['+4930123456', '+4930123456'],
  ])('leaves %s as %s', (e164, key) => {
    expect(phoneMatchKey(e164)).toBe(key)
  })

  it('keeps Brazilian landlines and mobiles with the same digits apart', () => {
    expect(phoneMatchKey('+551132654321')).not.toBe(phoneMatchKey('+5511932654321'))
  })

  it.each(['+552187654321', '+5215512345678', '+5491123456789', '+5511987654321', '+551132654321', '+12015550123', '+351912345678'])(
    'is idempotent for %s',
    (e164) => {
      const key = phoneMatchKey(e164)
      expect(phoneMatchKey(key)).toBe(key)
      // These keys are also valid numbers (not guaranteed for every Argentine one, see README.md).
      expect(normalizePhone(key)?.e164).toBeDefined()
    },
  )

  it('rejects what is not an E.164 number instead of inventing a shared key', () => {
    expect(() => phoneMatchKey('')).toThrow(TypeError)
    expect(() => phoneMatchKey('not a phone')).toThrow(TypeError)
  })
})
