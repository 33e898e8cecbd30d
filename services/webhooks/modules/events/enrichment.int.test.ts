import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { withTenant } from '../../../../lib/db.js'
import { recordEvents } from '../../../../domains/analytics/service.js'
import type { App } from '../../../../lib/http/create-server.js'

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'
const DESKTOP_CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'
const ANDROID_CHROME = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36'
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'

const event = (context: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
  id: randomUUID(), name: 'page', type: 'page', occurredAt: new Date().toISOString(), anonymousId: 'anon-1', context, ...overrides,
})

describe('analytics__process_events enriches each client event before storing it', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
  })

  const post = (events: unknown[]) => app.inject({ method: 'POST', url: '/v1/events', headers: bearer(tenant.adminKey), payload: { events } })
  const storedOf = (ids: string[]) => db.current.owner<Record<string, unknown>[]>`
    select event_id, source, acq_source, acq_channel, referrer_host, utm, click_id, device, browser, os, is_bot, country, country_from
      from analytics.events where tenant_id = ${tenant.id} and event_id = any(${ids}::uuid[])`
    .then((rows) => new Map(rows.map((r) => [r.eventId as string, r])))

  it('stores channel, acquisition source, device and country: Google search on an iPhone, a cpc ad, a click-to-WhatsApp ad, a bot, a Brazilian lead', async () => {
    const [lead] = await withTenant(db.current.sql, tenant.id, (tx) =>
      tx<{ id: string }[]>`insert into marketing.leads (tenant_id, phone_e164, source) values (${tenant.id}, '+5511987654321', 'test') returning id`)
    const search = event({ page: { url: 'https://clinic.example/', referrer: 'https://www.google.com/' }, userAgent: IPHONE, locale: 'en-US' })
    const cpc = event({ page: { url: 'https://clinic.example/promo?utm_source=google&utm_medium=cpc&utm_campaign=spring' }, userAgent: DESKTOP_CHROME })
    const ctwa = event({ page: { url: 'https://clinic.example/?ctwa_clid=ARAkLkA8rmlFeiCk' }, userAgent: ANDROID_CHROME })
    const bot = event({ page: { url: 'https://clinic.example/' }, userAgent: GOOGLEBOT })
    // The lead's phone decides the country over the locale (pt-PT would say Portugal).
    const ofLead = event({ page: { url: 'https://clinic.example/' }, userAgent: ANDROID_CHROME, locale: 'pt-PT' }, { leadId: lead!.id, anonymousId: undefined, type: 'track', name: 'Signup clicked' })
    const events = [search, cpc, ctwa, bot, ofLead]
    // Enriched by the commit the 202 waits for.
    expect((await post(events)).statusCode).toBe(202)
    const stored = await storedOf(events.map((e) => e.id))
    expect(stored.size).toBe(5)
    expect(stored.get(search.id)).toMatchObject({
      source: 'api', acqSource: 'google', acqChannel: 'search', referrerHost: 'google.com', device: 'mobile', os: 'iOS', isBot: false,
      country: 'US', countryFrom: 'locale', clickId: null,
    })
    expect(stored.get(cpc.id)).toMatchObject({
      acqSource: 'google', acqChannel: 'paid', device: 'desktop', browser: 'Chrome', os: 'Windows', isBot: false, country: null,
      utm: { source: 'google', medium: 'cpc', campaign: 'spring', term: null, content: null },
    })
    expect(stored.get(ctwa.id)).toMatchObject({ acqChannel: 'whatsapp', device: 'mobile', clickId: { param: 'ctwa_clid', value: 'ARAkLkA8rmlFeiCk' } })
    expect(stored.get(bot.id)).toMatchObject({ device: 'bot', isBot: true, acqChannel: 'direct' })
    expect(stored.get(ofLead.id)).toMatchObject({ device: 'mobile', country: 'BR', countryFrom: 'phone' })
  })

  it('leaves the enrichment columns empty for events other producers record without enrichment (a WhatsApp message)', async () => {
    await withTenant(db.current.sql, tenant.id, (tx) =>
      recordEvents(tx, [{ name: 'whatsapp.message_received', occurredAt: new Date(), dedupeKey: 'wa:msg:enrich-test', source: 'whatsapp' }]))
    const rows = await db.current.owner<Record<string, unknown>[]>`
      select acq_source, acq_channel, referrer_host, utm, click_id, device, browser, browser_version, os, os_version, is_bot, country, country_from
        from analytics.events where tenant_id = ${tenant.id} and dedupe_key = 'wa:msg:enrich-test'`
    expect(rows).toHaveLength(1)
    expect(Object.values(rows[0]!).every((v) => v === null)).toBe(true)
  })
})
