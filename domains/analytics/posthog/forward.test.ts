import { describe, expect, it } from 'vitest'
import { Pseudonyms, sha256 } from '../../../lib/crypto.js'
import { allowedPropertiesOf, derivedEventUuid, distinctIdOf } from './forward.js'
import type { DueOutboxRow } from './queries.js'
import { DEFAULT_POSTHOG_PROPERTIES, isPersonalPropertyName } from './schemas.js'

const row = (overrides: Partial<DueOutboxRow> = {}): DueOutboxRow => ({
  eventId: '1', attempts: 0, found: true, clientEventId: null, name: 'lead.created', occurredAt: new Date(0), leadId: null, anonymousId: null,
  properties: {}, source: null, acqSource: null, acqChannel: null, country: null, device: null, browser: null, os: null, ...overrides,
})

describe('what PostHog receives', () => {
  const p = new Pseudonyms(sha256('test key'))
  const T1 = '11111111-1111-4111-8111-111111111111'
  const T2 = '22222222-2222-4222-8222-222222222222'
  const LEAD = '33333333-3333-4333-8333-333333333333'

  it('derives a stable, valid UUID per tenant and event, different across tenants', () => {
    const a = derivedEventUuid(T1, '42')
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(derivedEventUuid(T1, '42')).toBe(a)
    expect(derivedEventUuid(T2, '42')).not.toBe(a)
    expect(derivedEventUuid(T1, '43')).not.toBe(a)
  })

  it('names the lead, else the visitor, by a keyed pseudonym that differs per tenant and per key', () => {
    const lead = distinctIdOf(p, T1, { leadId: LEAD, anonymousId: 'anon-1' })
    expect(lead).toEqual({ id: expect.stringMatching(/^lead_[A-Za-z0-9_-]{22}$/), person: true })
    expect(lead.id).not.toContain(LEAD)
    expect(distinctIdOf(p, T2, { leadId: LEAD, anonymousId: null }).id).not.toBe(lead.id)
    expect(distinctIdOf(new Pseudonyms(sha256('other key')), T1, { leadId: LEAD, anonymousId: null }).id).not.toBe(lead.id)
    expect(distinctIdOf(p, T1, { leadId: null, anonymousId: 'anon-1' }).id).toMatch(/^anon_/)
    expect(distinctIdOf(p, T1, { leadId: null, anonymousId: null })).toEqual({ id: expect.stringMatching(/^tenant_/), person: false })
  })

  it('keeps allow-listed scalars only, and drops values shaped like an email or a phone number whatever their name', () => {
    const r = row({ source: 'whatsapp', acqChannel: 'paid', country: 'BR', properties: { formId: 'f1', plan: 'pro', flowId: { nested: true }, templateName: 'ana@example.com', campaignId: '+55 11 98765-4321', experimentKey: 'x'.repeat(201), variationKey: 7 } })
    expect(allowedPropertiesOf(r, DEFAULT_POSTHOG_PROPERTIES)).toEqual({ producer: 'whatsapp', channel: 'paid', country: 'BR', formId: 'f1', variationKey: 7 })
    expect(allowedPropertiesOf(r, ['plan'])).toEqual({ plan: 'pro' })
  })

  it.each(['phone', 'customerEmail', 'e-mail', 'name', 'firstName', 'text', 'messageBody', 'ip', 'userAgent', 'pageUrl', 'referrer', 'anonymousId', 'sessionId', 'leadId', 'waId', 'address'])(
    'calls %s personal', (name) => expect(isPersonalPropertyName(name)).toBe(true))
  it.each([...DEFAULT_POSTHOG_PROPERTIES, 'plan', 'tier', 'step'])('lets %s through', (name) => expect(isPersonalPropertyName(name)).toBe(false))
})
