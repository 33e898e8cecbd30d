import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { fastIntakeBatch } from './intake-fast-path.js'
import { IntakeBatch, propertiesJson } from './schemas.js'

const event = (i = 0): Record<string, unknown> => ({
  id: randomUUID(),
  name: ['page', 'pricing.viewed', 'Signup clicked', 'whatsapp.cta_clicked', 'Página vista'][i % 5],
  type: i % 2 ? 'track' : 'page',
  occurredAt: new Date(Date.now() - i * 1000).toISOString(),
  anonymousId: `anon-${i}`,
  ...(i % 3 === 0 ? { leadId: randomUUID(), sessionId: `s-${i}` } : {}),
  properties: { plan: i % 2 ? 'pro' : 'basic', step: i, nested: { a: [1, 'x', null] } },
  context: {
    page: { url: `https://loja.example.com.br/p/${i}?utm_source=x`, path: `/p/${i}`, title: 'Loja', referrer: i % 2 ? '' : 'https://www.google.com/' },
    ...(i % 4 === 0 ? { utm: { source: 'newsletter', medium: 'email', campaign: 'verao' } } : {}),
    userAgent: 'Mozilla/5.0 (Linux; Android 13) Chrome/120.0.0.0 Mobile Safari/537.36',
    locale: 'pt-BR',
  },
})

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T

/** Each a change to one valid event (at index 1 of a batch of 3): valid or not, the two must agree. */
const mutations: [string, (e: Record<string, any>) => void][] = [
  ['nothing', () => {}],
  ['no properties', (e) => delete e.properties],
  ['no context', (e) => delete e.context],
  ['empty context', (e) => (e.context = {})],
  ['only a leadId', (e) => { delete e.anonymousId; e.leadId = randomUUID() }],
  ['neither anonymousId nor leadId', (e) => { delete e.anonymousId; delete e.leadId }],
  ['an unknown event key (zod strips it)', (e) => (e.extra = 1)],
  ['an unknown context key', (e) => (e.context.screen = { w: 1 })],
  ['an unknown page key', (e) => (e.context.page.hash = '#x')],
  ['an unknown utm key', (e) => (e.context.utm = { source: 'a', foo: 'b' })],
  ['uppercase id', (e) => (e.id = String(e.id).toUpperCase())],
  ['nil uuid', (e) => (e.id = '00000000-0000-0000-0000-000000000000')],
  ['bad id', (e) => (e.id = 'not-a-uuid')],
  ['id a number', (e) => (e.id = 12)],
  ['bad leadId', (e) => (e.leadId = 'x')],
  ['null leadId', (e) => (e.leadId = null)],
  ['null anonymousId', (e) => (e.anonymousId = null)],
  ['empty anonymousId', (e) => (e.anonymousId = '')],
  ['long anonymousId', (e) => (e.anonymousId = 'a'.repeat(201))],
  ['anonymousId of 200', (e) => (e.anonymousId = 'a'.repeat(200))],
  ['empty sessionId', (e) => (e.sessionId = '')],
  ['empty name', (e) => (e.name = '')],
  ['long name', (e) => (e.name = 'a'.repeat(121))],
  ['name with a bad character', (e) => (e.name = 'a<b')],
  ['name starting with a space', (e) => (e.name = ' a')],
  ['unknown type', (e) => (e.type = 'click')],
  ['occurredAt with an offset', (e) => (e.occurredAt = '2026-01-01T10:00:00-03:00')],
  ['occurredAt without seconds', (e) => (e.occurredAt = '2026-01-01T10:00Z')],
  ['occurredAt a date only', (e) => (e.occurredAt = '2026-01-01')],
  ['occurredAt Feb 30', (e) => (e.occurredAt = '2026-02-30T10:00:00Z')],
  ['occurredAt in the far past', (e) => (e.occurredAt = '1999-01-01T00:00:00.123456Z')],
  ['occurredAt in the far future', (e) => (e.occurredAt = new Date(Date.now() + 3_600_000).toISOString())],
  ['occurredAt slightly ahead', (e) => (e.occurredAt = new Date(Date.now() + 60_000).toISOString())],
  ['occurredAt a number', (e) => (e.occurredAt = Date.now())],
  ['properties an array', (e) => (e.properties = [1])],
  ['properties null', (e) => (e.properties = null)],
  ['properties too large', (e) => (e.properties = { big: 'x'.repeat(9000) })],
  ['context an array', (e) => (e.context = [])],
  ['context null', (e) => (e.context = null)],
  ['page a string', (e) => (e.context.page = 'x')],
  ['page url not http', (e) => (e.context.page.url = 'ftp://x.example/')],
  ['page url not a url', (e) => (e.context.page.url = 'https://')],
  ['page url too long', (e) => (e.context.page.url = `https://x.example/${'a'.repeat(2000)}`)],
  ['empty referrer', (e) => (e.context.page.referrer = '')],
  ['bad referrer', (e) => (e.context.page.referrer = 'nope')],
  ['empty path', (e) => (e.context.page.path = '')],
  ['long title', (e) => (e.context.page.title = 't'.repeat(501))],
  ['empty userAgent', (e) => (e.context.userAgent = '')],
  ['long userAgent', (e) => (e.context.userAgent = 'u'.repeat(1001))],
  ['userAgent a number', (e) => (e.context.userAgent = 1)],
  ['long locale', (e) => (e.context.locale = 'l'.repeat(36))],
  ['empty utm value', (e) => (e.context.utm = { source: '' })],
  ['utm value a number', (e) => (e.context.utm = { source: 1 })],
  ['utm an array', (e) => (e.context.utm = [])],
  ['the event an array', (e) => { for (const k of Object.keys(e)) delete e[k]; (e as any).length = 0 }],
]

describe('fastIntakeBatch: the same answers as IntakeBatch, without zod', () => {
  it('takes the common shape, with the value zod returns and the properties text measured', () => {
    const body = { events: Array.from({ length: 50 }, (_, i) => event(i)) }
    const fast = fastIntakeBatch(clone(body))
    expect(fast).not.toBeNull()
    expect(fast).toEqual(IntakeBatch.parse(clone(body)))
    for (const e of fast!.events) expect(propertiesJson(e.properties)).toBe(JSON.stringify(e.properties))
  })

  it.each(mutations)('agrees with zod on %s', (_, mutate) => {
    const body = { events: [event(0), event(1), event(3)] }
    mutate(body.events[1]!)
    const fast = fastIntakeBatch(clone(body))
    const zod = IntakeBatch.safeParse(clone(body))
    // Whatever it takes, zod takes, with the same value; whatever it leaves, zod decides (and reports).
    if (fast !== null) {
      expect(zod.success).toBe(true)
      expect(fast).toEqual(zod.data)
    }
    // Valid input without unknown keys must not need zod (else the fast path would silently stop being the path).
    if (zod.success && !/unknown/.test(_)) expect(fast).not.toBeNull()
  })

  it.each([
    ['not an object', 'x'],
    ['null', null],
    ['no events', {}],
    ['events empty', { events: [] }],
    ['events not an array', { events: {} }],
    ['more than 1,000 events', { events: Array.from({ length: 1001 }, (_, i) => event(i)) }],
    ['an unknown top-level key', { events: [event()], extra: true }],
  ])('leaves %s to zod', (_, body) => {
    expect(fastIntakeBatch(clone(body))).toBeNull()
  })
})
