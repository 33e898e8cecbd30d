import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeSiteKey } from '../../../../test/factories/analytics-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { count, drainJobs } from '../../../../test/whatsapp.js'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { SiteKeyView } from '../../../../domains/analytics/schemas.js'

const ORIGIN = 'https://clinic.example'

const pageView = (overrides: Record<string, unknown> = {}) => ({
  id: randomUUID(),
  name: 'pricing.viewed',
  type: 'page',
  occurredAt: new Date().toISOString(),
  anonymousId: 'anon-1',
  sessionId: 'sess-1',
  properties: { plan: 'pro' },
  context: {
    page: { url: 'https://clinic.example/pricing?utm_source=instagram', referrer: 'https://l.instagram.com/' },
    utm: { source: 'instagram', campaign: 'spring' },
    userAgent: 'Mozilla/5.0 (test)',
    locale: 'pt-BR',
  },
  ...overrides,
})

describe('POST /v1/events: event intake', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let siteKey: SiteKeyView
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    siteKey = await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })
  })

  const inboxOf = (t: TestTenant) => count(db.current, 'analytics.event_inbox', `tenant_id = '${t.id}'`)
  /** Everything stored for the tenant's client events, wherever: analytics.events and the inbox. */
  const storedOf = async (t: TestTenant) => (await inboxOf(t)) + (await count(db.current, 'analytics.events', `tenant_id = '${t.id}' and dedupe_key like 'evt:%'`))
  const eventsOf = (t: TestTenant, where = 'true') => count(db.current, 'analytics.events', `tenant_id = '${t.id}' and dedupe_key like 'evt:%' and ${where}`)
  const withKey = (events: unknown[], key = tenant.adminKey) =>
    app.inject({ method: 'POST', url: '/v1/events', headers: bearer(key), payload: { events } })
  const fromSite = (events: unknown[], headers: Record<string, string> = { origin: ORIGIN }, key = siteKey.publicKey) =>
    app.inject({ method: 'POST', url: `/v1/events?siteKey=${key}`, headers, payload: { events } })

  it('stores a batch sent with an admin API key in analytics.events, every field, before answering 202 (no inbox, no job)', async () => {
    const lead = await withTenant(db.current.sql, tenant.id, (tx) =>
      tx<{ id: string }[]>`insert into marketing.leads (tenant_id, email, source) values (${tenant.id}, 'ana@example.com', 'test') returning id`)
    const events = [pageView(), pageView({ name: 'Signup clicked', type: 'track', leadId: lead[0]!.id, anonymousId: undefined })]
    const res = await withKey(events)
    expect(res.statusCode).toBe(202)
    expect(res.json()).toEqual({ accepted: 2, duplicates: 0 })
    // Recorded by the commit the 202 waited for: nothing waits in the inbox and no job is needed.
    expect(await inboxOf(tenant)).toBe(0)
    expect(await count(db.current, 'graphile_worker._private_jobs', `task_id in (select id from graphile_worker._private_tasks where identifier = 'analytics__process_events')`)).toBe(0)
    const stored = await db.current.owner<Record<string, unknown>[]>`
      select event_id, name, type, lead_id, anonymous_id, session_id, properties, context, source, dedupe_key, occurred_at
        from analytics.events where tenant_id = ${tenant.id} and event_id = any(${events.map((e) => e.id)}::uuid[]) order by name`
    expect(stored).toEqual([
      {
        eventId: events[1]!.id, name: 'Signup clicked', type: 'track', leadId: lead[0]!.id, anonymousId: null, sessionId: 'sess-1',
        properties: { plan: 'pro' }, context: events[1]!.context, source: 'api', dedupeKey: `evt:${events[1]!.id}`, occurredAt: new Date(events[1]!.occurredAt),
      },
      {
        eventId: events[0]!.id, name: 'pricing.viewed', type: 'page', leadId: null, anonymousId: 'anon-1', sessionId: 'sess-1',
        properties: { plan: 'pro' }, context: events[0]!.context, source: 'api', dedupeKey: `evt:${events[0]!.id}`, occurredAt: new Date(events[0]!.occurredAt),
      },
    ])
  })

  it('stores a repeated id once: twice in one batch, and again in a later batch before and after the task ran', async () => {
    const e = pageView()
    expect((await withKey([e, e, pageView()])).json()).toEqual({ accepted: 2, duplicates: 1 })
    expect((await withKey([e])).json()).toEqual({ accepted: 0, duplicates: 1 })
    await drainJobs(db.current)
    expect((await withKey([{ ...e, name: 'changed.name' }])).json()).toEqual({ accepted: 0, duplicates: 1 })
    await drainJobs(db.current)
    expect(await eventsOf(tenant, `event_id = '${e.id}'`)).toBe(1)
    expect(await eventsOf(tenant, `name = 'changed.name'`)).toBe(0)
  })

  it('moves each event exactly once when its job runs again, even if its rows were back in the inbox', async () => {
    const events = [pageView(), pageView()]
    await withKey(events)
    await drainJobs(db.current)
    const payload = { tenantId: tenant.id, eventIds: events.map((e) => e.id) }
    // A replayed job finds nothing to move; rows stored again (as a crash between two systems could) add nothing.
    await db.current.owner`
      insert into analytics.event_inbox (tenant_id, id, name, type, occurred_at, anonymous_id, source)
      select ${tenant.id}, unnest(${payload.eventIds}::uuid[]), 'replayed.name', 'track', now(), 'anon-1', 'api'`
    await db.current.owner`select graphile_worker.add_job('analytics__process_events', ${JSON.stringify(payload)}::text::json)`
    await drainJobs(db.current)
    expect(await eventsOf(tenant, `event_id = any('{${payload.eventIds.join(',')}}'::uuid[])`)).toBe(2)
    expect(await eventsOf(tenant, `name = 'replayed.name'`)).toBe(0)
    expect(await inboxOf(tenant)).toBe(0)
  })

  it('stores awkward text exactly (quotes, backslashes, braces, commas, control characters, the word NULL) and an upper-case id once', async () => {
    const awkward = ['say "hi", {ok}', 'back\\slash \\" end', 'line\nbreak\ttab\u0001bell', 'NULL', ' spaced ', 'olá 🙂 \u2028']
    const events = awkward.map((text) => pageView({
      anonymousId: text, sessionId: `${text}-s`, properties: { text, nested: { list: [text, null, 1.5, true] } },
      context: { page: { url: 'https://clinic.example/a?q="x"', title: text }, userAgent: text, locale: 'pt-BR' },
    }))
    expect((await withKey(events)).json()).toEqual({ accepted: awkward.length, duplicates: 0 })
    const stored = await db.current.owner<{ eventId: string; anonymousId: string; sessionId: string; properties: unknown; context: unknown }[]>`
      select event_id, anonymous_id, session_id, properties, context from analytics.events
       where tenant_id = ${tenant.id} and event_id = any(${events.map((e) => e.id)}::uuid[])`
    const byId = new Map(stored.map((r) => [r.eventId, r]))
    for (const e of events) {
      expect(byId.get(e.id)).toEqual({ eventId: e.id, anonymousId: e.anonymousId, sessionId: e.sessionId, properties: e.properties, context: e.context })
    }
    // An id is one id however its hex digits are cased: stored once, counted for the request that stored it.
    const id = randomUUID()
    expect((await withKey([pageView({ id: id.toUpperCase() }), pageView({ id })])).json()).toEqual({ accepted: 1, duplicates: 1 })
    expect((await withKey([pageView({ id })])).json()).toEqual({ accepted: 0, duplicates: 1 })
    expect(await eventsOf(tenant, `event_id = '${id}'`)).toBe(1)
  })

  it('accepts late data (a year old) and refuses occurredAt more than 10 minutes ahead', async () => {
    const late = pageView({ occurredAt: new Date(Date.now() - 365 * 86_400_000).toISOString() })
    expect((await withKey([late])).statusCode).toBe(202)
    const before = await storedOf(tenant)
    const res = await withKey([pageView(), pageView({ occurredAt: new Date(Date.now() + 11 * 60_000).toISOString() })])
    expect(res.statusCode).toBe(400)
    expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'events.1.occurredAt' })])
    expect(await storedOf(tenant)).toBe(before)
    // A little clock drift is not refused.
    expect((await withKey([pageView({ occurredAt: new Date(Date.now() + 5 * 60_000).toISOString() })])).statusCode).toBe(202)
  })

  it('reports every bad event by its index and stores nothing of that batch', async () => {
    const before = await storedOf(tenant)
    const res = await withKey([
      pageView(),
      pageView({ id: 'not-a-uuid' }),
      pageView(),
      pageView({ occurredAt: 'yesterday' }),
      pageView({ anonymousId: undefined }),
      pageView({ properties: { blob: 'x'.repeat(9000) } }),
      pageView({ type: 'purchase' }),
    ])
    expect(res.statusCode).toBe(400)
    expect(res.json().error.code).toBe('BAD_REQUEST')
    expect(res.json().error.details.map((d: { path: string }) => d.path).sort()).toEqual(
      ['events.1.id', 'events.3.occurredAt', 'events.4.anonymousId', 'events.5.properties', 'events.6.type'].sort())
    expect(await storedOf(tenant)).toBe(before)
  })

  it('answers 413 for 1,001 events and for a body over the limit, storing nothing', async () => {
    const before = await storedOf(tenant)
    const tooMany = await withKey(Array.from({ length: 1001 }, () => pageView()))
    expect(tooMany.statusCode).toBe(413)
    expect(tooMany.json().error.code).toBe('PAYLOAD_TOO_LARGE')
    const huge = await withKey(Array.from({ length: 300 }, () => pageView({ properties: { blob: 'x'.repeat(7900) } })))
    expect(huge.statusCode).toBe(413)
    expect(await storedOf(tenant)).toBe(before)
    // Exactly 1,000 is fine.
    expect((await withKey(Array.from({ length: 1000 }, () => pageView()))).json()).toEqual({ accepted: 1000, duplicates: 0 })
  })

  describe('with a site key, from the browser', () => {
    it('answers a preflight from a listed origin with that origin only', async () => {
      const res = await app.inject({
        method: 'OPTIONS', url: `/v1/events?siteKey=${siteKey.publicKey}`,
        headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      })
      expect(res.statusCode).toBe(204)
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
      expect(res.headers['access-control-allow-methods']).toBe('POST')
    })

    it('stores events posted from a listed origin, with the key in the query or the x-site-key header', async () => {
      const viaQuery = await fromSite([pageView()])
      expect(viaQuery.statusCode).toBe(202)
      expect(viaQuery.headers['access-control-allow-origin']).toBe(ORIGIN)
      const e = pageView()
      const viaHeader = await app.inject({ method: 'POST', url: '/v1/events', headers: { origin: ORIGIN, 'x-site-key': siteKey.publicKey }, payload: { events: [e] } })
      expect(viaHeader.json()).toEqual({ accepted: 1, duplicates: 0 })
      await drainJobs(db.current)
      expect(await eventsOf(tenant, `event_id = '${e.id}' and source = 'site'`)).toBe(1)
    })

    it('accepts the text/plain JSON body navigator.sendBeacon posts (no preflight), and refuses other types (415) or bad JSON (400)', async () => {
      const e = pageView()
      const beacon = (payload: string, contentType = 'text/plain;charset=UTF-8') => app.inject({
        method: 'POST', url: `/v1/events?siteKey=${siteKey.publicKey}`, headers: { origin: ORIGIN, 'content-type': contentType }, payload,
      })
      const res = await beacon(JSON.stringify({ events: [e] }))
      expect(res.statusCode).toBe(202)
      expect(res.json()).toEqual({ accepted: 1, duplicates: 0 })
      const before = await storedOf(tenant)
      expect((await beacon('{"events": [', 'text/plain')).statusCode).toBe(400)
      expect((await beacon(JSON.stringify({ events: [pageView()] }), 'application/xml')).statusCode).toBe(415)
      expect((await beacon('{"__proto__": {"x": 1}, "events": []}')).statusCode).toBe(400)
      expect(await storedOf(tenant)).toBe(before)
      await drainJobs(db.current)
      expect(await eventsOf(tenant, `event_id = '${e.id}'`)).toBe(1)
    })

    it('refuses another origin (403) and an unknown site key (404), preflight or not, storing nothing', async () => {
      const before = await storedOf(tenant)
      expect((await fromSite([pageView()], { origin: 'https://evil.example' })).statusCode).toBe(403)
      const preflight = await app.inject({
        method: 'OPTIONS', url: `/v1/events?siteKey=${siteKey.publicKey}`,
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
      })
      expect(preflight.statusCode).toBe(403)
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
      const unknown = await fromSite([pageView()], { origin: ORIGIN }, `ws_${'0'.repeat(32)}`)
      expect(unknown.statusCode).toBe(404)
      expect(unknown.json().error.code).toBe('NOT_FOUND')
      expect((await fromSite([pageView()], { origin: ORIGIN }, 'nonsense')).statusCode).toBe(404)
      expect(await storedOf(tenant)).toBe(before)
    })

    it('refuses a leadId (a public key may not attribute events to a lead) and stores nothing', async () => {
      const before = await storedOf(tenant)
      const res = await fromSite([pageView(), pageView({ leadId: randomUUID() })])
      expect(res.statusCode).toBe(400)
      expect(res.json().error.details).toEqual([expect.objectContaining({ path: 'events.1.leadId' })])
      expect(await storedOf(tenant)).toBe(before)
    })

    it('answers 410 once the key is archived', async () => {
      const archived = await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })
      await withTenant(db.current.sql, tenant.id, (tx) => tx`update analytics.site_keys set status = 'archived' where id = ${archived.id}`)
      expect((await fromSite([pageView()], { origin: ORIGIN }, archived.publicKey)).statusCode).toBe(410)
    })
  })

  describe('security', () => {
    it('refuses a read-only API key (403), no key (401) and a wrong key (401)', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      const before = await storedOf(tenant)
      const res = await withKey([pageView()], readOnly.key)
      expect(res.statusCode).toBe(403)
      expect(res.json().error.message).toMatch(/read-only/)
      expect((await app.inject({ method: 'POST', url: '/v1/events', payload: { events: [pageView()] } })).statusCode).toBe(401)
      expect((await withKey([pageView()], `wak_${'x'.repeat(40)}`)).statusCode).toBe(401)
      expect(await storedOf(tenant)).toBe(before)
    })

    it('refuses a key as soon as it is revoked, although valid keys are cached', async () => {
      const key = await makeApiKey(db.current.sql, tenant, 'admin')
      expect((await withKey([pageView()], key.key)).statusCode).toBe(202)
      expect((await withKey([pageView()], key.key)).statusCode).toBe(202)
      // Revoked by another process (the API): the NOTIFY of migration 0051 reaches this app's cache.
      await db.current.owner`update core.api_keys set revoked_at = now() where id = ${key.id}`
      const deadline = Date.now() + 5_000
      let status = 202
      while (Date.now() < deadline && status !== 401) {
        status = (await withKey([pageView()], key.key)).statusCode
        if (status !== 401) await new Promise((r) => setTimeout(r, 20))
      }
      expect(status).toBe(401)
    })

    it("files another tenant's events under that tenant only, and drops a lead id that is not that tenant's", async () => {
      const [lead] = await withTenant(db.current.sql, tenant.id, (tx) =>
        tx<{ id: string }[]>`insert into marketing.leads (tenant_id, email, source) values (${tenant.id}, 'bea@example.com', 'test') returning id`)
      const e = pageView({ leadId: lead!.id })
      const tenantEventsBefore = await count(db.current, 'analytics.events', `tenant_id = '${tenant.id}'`)
      expect((await withKey([e], other.adminKey)).json()).toEqual({ accepted: 1, duplicates: 0 })
      await drainJobs(db.current)
      const [stored] = await db.current.owner<{ tenantId: string; leadId: string | null }[]>`
        select tenant_id, lead_id from analytics.events where event_id = ${e.id}`
      expect(stored).toEqual({ tenantId: other.id, leadId: null })
      expect(await count(db.current, 'analytics.events', `tenant_id = '${tenant.id}'`)).toBe(tenantEventsBefore)
      // The same id is another event in another tenant: this tenant can still send it.
      expect((await withKey([e])).json()).toEqual({ accepted: 1, duplicates: 0 })
    })
  })
})

describe('POST /v1/events: site-key rate limit', () => {
  const db = useTestDatabase()

  it('limits browser (site-key) requests per client IP with 429 and Retry-After, but not API-key senders', async () => {
    const app = await buildTestWebhooks(db.current, { EVENTS_RATE_LIMIT_PER_IP_PER_MINUTE: '2' })
    const tenant = await makeTenant(db.current.sql)
    const key = await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })
    const send = () => app.inject({ method: 'POST', url: `/v1/events?siteKey=${key.publicKey}`, headers: { origin: ORIGIN }, payload: { events: [pageView()] } })
    const statuses = [(await send()).statusCode, (await send()).statusCode]
    const limited = await send()
    expect([...statuses, limited.statusCode]).toEqual([202, 202, 429])
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
    const api = await app.inject({ method: 'POST', url: '/v1/events', headers: bearer(tenant.adminKey), payload: { events: [pageView()] } })
    expect(api.statusCode).toBe(202)
    expect(await count(db.current, 'analytics.events', `tenant_id = '${tenant.id}'`)).toBe(3)
    await app.close()
  })
})

describe('POST /v1/events: failed API keys', () => {
  const db = useTestDatabase()

  it('answers 429 before any lookup once an address has presented too many wrong keys, however the key is spelled', async () => {
    const app = await buildTestWebhooks(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' })
    const tenant = await makeTenant(db.current.sql)
    const post = (authorization: string) => app.inject({ method: 'POST', url: '/v1/events', headers: { authorization }, payload: { events: [pageView()] } })
    const wrong = []
    for (let i = 0; i < 3; i++) wrong.push((await post(`Bearer wak_${'x'.repeat(30)}${i}`)).statusCode)
    expect(wrong).toEqual([401, 401, 401])
    // Now even the right key, in any spelling, waits: the address was guessing.
    for (const spelling of [`Bearer ${tenant.adminKey}`, `bearer   ${tenant.adminKey}`, `  BEARER\t${tenant.adminKey} `]) {
      const res = await post(spelling)
      expect(res.statusCode).toBe(429)
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
      expect(res.json().error.code).toBe('RATE_LIMITED')
    }
    expect(await count(db.current, 'analytics.event_inbox', `tenant_id = '${tenant.id}'`)).toBe(0)
    expect(await count(db.current, 'analytics.events', `tenant_id = '${tenant.id}'`)).toBe(0)
    await app.close()
  })

  it('accepts a correct key in any spelling of the Bearer scheme', async () => {
    const app = await buildTestWebhooks(db.current)
    const tenant = await makeTenant(db.current.sql)
    const res = await app.inject({ method: 'POST', url: '/v1/events', headers: { authorization: `  bearer\t${tenant.adminKey}  ` }, payload: { events: [pageView()] } })
    expect(res.statusCode).toBe(202)
    await app.close()
  })
})
