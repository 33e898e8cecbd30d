import { describe, expect, it } from 'vitest'
import { enrichEvent } from './enrich.js'
import { Enrichment } from './schemas.js'

const iphoneInstagram = 'Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Instagram 305.0.0.22.109 (iPhone14,5; iOS 16_6; pt_BR; pt; scale=3.00; 1170x2532; 532277904)'

describe('enrichEvent', () => {
  it('enriches a page view from an Instagram ad on an iPhone of a Brazilian lead', () => {
    const result = enrichEvent({
      userAgent: iphoneInstagram,
      referrer: 'https://l.instagram.com/',
      pageUrl: 'https://loja.example.com.br/?utm_source=instagram&utm_medium=paid_social&utm_campaign=verao',
      locale: 'pt-BR',
      phoneE164: '+5511987654321',
    })
    expect(result).toEqual({
      browser: { name: 'Instagram', version: '305.0.0.22.109' },
      os: { name: 'iOS', version: '16.6' },
      device: 'mobile',
      isBot: false,
      source: 'instagram',
      channel: 'paid',
      referrerHost: 'l.instagram.com',
      internal: false,
      utm: { source: 'instagram', medium: 'paid_social', campaign: 'verao', term: null, content: null },
      clickId: null,
      country: { code: 'BR', from: 'phone', confidence: 'strong' },
    })
  })

  it('enriches a visit with nothing known as direct, other device, no country', () => {
    expect(enrichEvent({})).toEqual({
      browser: { name: null, version: null },
      os: { name: null, version: null },
      device: 'other',
      isBot: false,
      source: null,
      channel: 'direct',
      referrerHost: null,
      internal: false,
      utm: { source: null, medium: null, campaign: null, term: null, content: null },
      clickId: null,
      country: null,
    })
  })

  it('flags Googlebot as a bot', () => {
    expect(enrichEvent({ userAgent: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)' })).toMatchObject({ device: 'bot', isBot: true })
  })

  const huge = 'x'.repeat(2_000_000)
  it.each([
    ['undefined', undefined], ['null', null], ['a string', 'hello'], ['a number', 42], ['an array', [1, 2]],
    ['every field of the wrong type', { userAgent: 1, referrer: {}, pageUrl: [], utm: 'x', locale: true, phoneE164: {} }],
    ['every field huge', { userAgent: huge, referrer: `https://${huge}.com/`, pageUrl: `https://a.com/?utm_source=${huge}`, utm: { source: huge, medium: huge, campaign: huge, term: huge, content: huge }, locale: huge, phoneE164: huge }],
    ['control characters', { userAgent: '\u0000\u0001', referrer: 'https://\u0000/', pageUrl: 'https://a.com/?utm_source=%00', locale: '\u0000' }],
    ['broken percent escapes', { pageUrl: 'https://a.com/?utm_source=%E0%A4%A&utm_medium=%' }],
  ])('never throws, and answers the schema, for %s', (_, input) => {
    const result = enrichEvent(input)
    expect(Enrichment.safeParse(result).success).toBe(true)
  })

  it('is deterministic: the same input gives the same output', () => {
    const input = { userAgent: iphoneInstagram, referrer: 'https://www.google.com.br/', pageUrl: 'https://a.com/?gclid=1', locale: 'pt-BR' }
    expect(enrichEvent(input)).toEqual(enrichEvent(structuredClone(input)))
  })
})
