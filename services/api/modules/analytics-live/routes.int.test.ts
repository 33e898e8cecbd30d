import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { eventsOf, openSse, type SseClient } from '../../../../test/sse.js'
import { LIVE_DIMENSIONS, LiveFeed } from '../../../../domains/analytics/live.js'
import { recordEvents, type EventRow } from '../../../../domains/analytics/service.js'
import type { Enrichment } from '../../../../domains/analytics/enrichment/schemas.js'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { registry } from '../../../../lib/metrics.js'

const enrichment = (over: Partial<Enrichment> = {}): Enrichment => ({
  browser: { name: 'Chrome', version: '120' }, os: { name: 'Android', version: '14' }, device: 'mobile', isBot: false,
  source: 'google', channel: 'search', referrerHost: 'www.google.com', internal: false,
  utm: { source: null, medium: null, campaign: null, term: null, content: null }, clickId: null,
  country: { code: 'BR', from: 'locale', confidence: 'weak' }, ...over,
})

let seq = 0
const event = (name: string, over: Partial<EventRow> = {}): EventRow =>
  ({ name, occurredAt: new Date(), dedupeKey: `test:live:${++seq}`, source: 'api', ...over })

describe('GET /v1/analytics/live', () => {
  const db = useTestDatabase()
  let app: App
  let feed: LiveFeed
  let base: string
  let tenant: TestTenant
  let other: TestTenant
  const streams: SseClient[] = []

  beforeAll(async () => {
    // The sweep (a reread without notification) runs every LIVE_HEARTBEAT_MS: at its default of 15 s it cannot be
    // what delivers an event within these tests, so they prove the LISTEN/NOTIFY path.
    feed = new LiveFeed(db.current.sql, testLogger(), { resumeMaxEvents: 50, sweepIntervalMs: 15_000 })
    app = await buildTestApi(db.current, { LIVE_RESUME_MAX_EVENTS: '50' }, { liveFeed: feed })
    base = await app.listen({ host: '127.0.0.1', port: 0 })
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(async () => {
    for (const s of streams) s.close()
    await app.close()
  })

  const record = (t: TestTenant, rows: EventRow[]) => withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, rows))
  const live = async (key: string, options: { filters?: unknown; lastEventId?: string; raw?: string } = {}) => {
    const query = options.raw ?? (options.filters === undefined ? '' : `?filters=${encodeURIComponent(JSON.stringify(options.filters))}`)
    const s = await openSse(`${base}/v1/analytics/live${query}`, { ...bearer(key), ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) })
    streams.push(s)
    return s
  }
  /** Open and following: the first cursor has arrived (sent once the subscription is in place). */
  const following = async (key: string, options: Parameters<typeof live>[1] = {}) => {
    const s = await live(key, options)
    expect(s.status).toBe(200)
    await waitUntil(() => s.lastEventId !== '')
    return s
  }
  /**
   * Events sent straight from their notification carry the cursor from before them; the read that follows (within
   * the feed's cursor delay) moves it past them with an id-only block. A client resuming before that is sent them again.
   */
  const cursorPastLastEvent = (s: SseClient) => {
    const before = s.messages.at(-1)!.id
    return waitUntil(() => s.lastEventId !== before)
  }
  const idsOf = async (t: TestTenant, names: string[]) => {
    const rows = await db.current.owner<{ id: string; name: string }[]>`
      select e.id::text as id, e.name from analytics.events e where e.tenant_id = ${t.id} and e.name = any(${names}) order by e.id`
    return rows.map((r) => r.id)
  }

  it('streams events as they commit, with the filters applied, in the contract shape', async () => {
    const all = await following(tenant.adminKey)
    expect(all.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(all.headers['cache-control']).toBe('no-cache, no-transform')
    const leadsFromSearch = await following(tenant.adminKey, { filters: [['is', 'event:name', ['lead.created']], ['is', 'visit:channel', ['search']]] })
    const notWhatsapp = await following(tenant.adminKey, { filters: [['not', ['or', [['is', 'event:producer', ['whatsapp']], ['contains', 'event:form', ['promo']]]]]] })

    await record(tenant, [
      event('lead.created', { enrichment: enrichment(), properties: { leadSource: 'web_form' } }),
      event('lead.created', { enrichment: enrichment({ channel: 'social' }) }),
      event('whatsapp.message_received', { source: 'whatsapp' }),
      event('form.submitted', { properties: { formId: 'spring-promo' } }),
    ])

    const names = ['lead.created', 'whatsapp.message_received', 'form.submitted']
    await all.waitFor((m) => eventsOf(m).length === 4)
    expect(eventsOf(all.messages).map((e) => e.name)).toEqual(['lead.created', 'lead.created', 'whatsapp.message_received', 'form.submitted'])
    const [first] = eventsOf(all.messages)
    expect(first).toEqual({
      id: (await idsOf(tenant, names))[0], name: 'lead.created', occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      source: 'api', channel: 'search', country: 'BR', device: 'mobile', properties: { leadSource: 'web_form' },
    })
    // Every message carries a cursor the client can resume from.
    expect(all.messages.every((m) => m.id.length > 0 && m.event === 'analytics')).toBe(true)

    await leadsFromSearch.waitFor((m) => eventsOf(m).length >= 1)
    await notWhatsapp.waitFor((m) => eventsOf(m).length >= 2)
    // A later event on every stream shows nothing else of the first batch was coming.
    await record(tenant, [event('lead.created', { enrichment: enrichment(), properties: { formId: 'marker' } })])
    await leadsFromSearch.waitFor((m) => eventsOf(m).length >= 2)
    await notWhatsapp.waitFor((m) => eventsOf(m).length >= 3)
    expect(eventsOf(leadsFromSearch.messages).map((e) => [e.name, e.channel])).toEqual([['lead.created', 'search'], ['lead.created', 'search']])
    expect(eventsOf(notWhatsapp.messages).map((e) => e.name)).toEqual(['lead.created', 'lead.created', 'lead.created'])
  })

  it('filters on any event property with event:props:<key>', async () => {
    const s = await following(tenant.adminKey, { filters: [['is', 'event:props:plan', ['pro']]] })
    await record(tenant, [event('props.a', { properties: { plan: 'free' } }), event('props.b', { properties: { plan: 'pro' } }), event('props.c')])
    await record(tenant, [event('props.d', { properties: { plan: 'pro' } })])
    await s.waitFor((m) => eventsOf(m).length >= 2)
    expect(eventsOf(s.messages).map((e) => e.name)).toEqual(['props.b', 'props.d'])
  })

  it('lets a read-only key follow the feed', async () => {
    const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
    const s = await following(readOnly.key)
    await record(tenant, [event('lead.qualified')])
    await s.waitFor((m) => eventsOf(m).some((e) => e.name === 'lead.qualified'))
  })

  it("sends a small statement's events from its notification at once, and a big one's after reading them", async () => {
    // No sweep and no cursor read within the test: what arrives before the big statement came from the notification.
    const direct = new LiveFeed(db.current.sql, testLogger(), { resumeMaxEvents: 50, sweepIntervalMs: 600_000, cursorDelayMs: 600_000 })
    const t = await makeTenant(db.current.sql)
    const got: { cursor: string; name: string }[] = []
    const cursors: string[] = []
    const unsubscribe = await direct.subscribe(t.id, { filters: [], after: null }, {
      events: (ms) => got.push(...ms.map((m) => ({ cursor: m.cursor, name: (JSON.parse(m.data) as { name: string }).name }))),
      cursor: (c) => cursors.push(c),
      reset: () => { throw new Error('no reset expected') },
      close: () => {},
    })
    try {
      expect(cursors).toHaveLength(1)
      const start = cursors[0]!
      await record(t, [event('direct.one'), event('direct.two', { properties: { plan: 'pro' } })])
      await waitUntil(() => got.length === 2)
      // Straight from the notification: no read moved the cursor, so both carry the one the subscriber had.
      expect(got).toEqual([{ cursor: start, name: 'direct.one' }, { cursor: start, name: 'direct.two' }])
      expect(cursors).toHaveLength(1)
      // 25 rows are more than a notification carries: the feed reads them, and does not send the first two again.
      await record(t, Array.from({ length: 25 }, (_, i) => event(`direct.bulk.${i}`)))
      await waitUntil(() => got.length === 27)
      await new Promise((r) => setTimeout(r, 200))
      expect(got.map((g) => g.name)).toEqual(['direct.one', 'direct.two', ...Array.from({ length: 25 }, (_, i) => `direct.bulk.${i}`)])
      // The read's snapshot is the cursor of the batch's last event: past everything sent so far.
      expect(got.at(-1)!.cursor).not.toBe(start)
      const past = await db.current.owner<{ visible: boolean }[]>`
        select bool_and(pg_visible_in_snapshot(xact_id, ${got.at(-1)!.cursor}::pg_snapshot)) as visible from analytics.events where tenant_id = ${t.id}`
      expect(past[0]!.visible).toBe(true)
    } finally {
      unsubscribe()
      await direct.close()
    }
  })

  it('resumes from Last-Event-ID with exactly the events missed while away', async () => {
    const filters = [['contains', 'event:name', ['resume.']]]
    const first = await following(tenant.adminKey, { filters })
    await record(tenant, [event('resume.one')])
    await first.waitFor((m) => eventsOf(m).length === 1)
    await cursorPastLastEvent(first)
    const cursor = first.lastEventId
    first.close()

    // Committed while nobody of this client was connected, in two transactions.
    await record(tenant, [event('resume.two'), event('resume.three')])
    await record(tenant, [event('resume.four')])
    const again = await live(tenant.adminKey, { filters, lastEventId: cursor })
    await again.waitFor((m) => eventsOf(m).length >= 3)
    const ids = await idsOf(tenant, ['resume.one', 'resume.two', 'resume.three', 'resume.four'])
    // Re-sends are allowed (the client dedupes by id) but resume.one's cursor came last in its batch: none here.
    expect(eventsOf(again.messages).map((e) => e.id)).toEqual(ids.slice(1))
    await record(tenant, [event('resume.five')])
    await again.waitFor((m) => eventsOf(m).some((e) => e.name === 'resume.five'))
    expect(eventsOf(again.messages).map((e) => e.name)).toEqual(['resume.two', 'resume.three', 'resume.four', 'resume.five'])
  })

  it('misses nothing when a transaction with a lower id commits after one with a higher id', async () => {
    const filters = [['contains', 'event:name', ['interleave.']]]
    const s = await following(tenant.adminKey, { filters })
    // Two connections: A takes its id first and holds its transaction open while B inserts and commits.
    let commitA!: () => void
    const aHolds = new Promise<void>((resolve) => { commitA = resolve })
    let aInserted!: (id: string) => void
    const aHasId = new Promise<string>((resolve) => { aInserted = resolve })
    const a = withTenant(db.current.sql, tenant.id, async (tx) => {
      await recordEvents(tx, [event('interleave.a')])
      aInserted((await tx<{ id: string }[]>`select id::text from analytics.events where name = 'interleave.a'`)[0]!.id)
      await aHolds
    })
    const idA = await aHasId
    await record(tenant, [event('interleave.b')])
    await s.waitFor((m) => eventsOf(m).length === 1)
    expect(eventsOf(s.messages).map((e) => e.name)).toEqual(['interleave.b'])
    const [idB] = await idsOf(tenant, ['interleave.b'])
    // A holds the lower id although it commits later: "id > last seen" would never send it.
    expect(BigInt(idA)).toBeLessThan(BigInt(idB!))
    await cursorPastLastEvent(s)

    // The client goes away having seen B; A commits while it is away.
    const cursorAfterB = s.lastEventId
    s.close()
    commitA()
    await a
    const again = await live(tenant.adminKey, { filters, lastEventId: cursorAfterB })
    await again.waitFor((m) => eventsOf(m).length >= 1)
    await record(tenant, [event('interleave.c')])
    await again.waitFor((m) => eventsOf(m).some((e) => e.name === 'interleave.c'))
    expect(eventsOf(again.messages).map((e) => e.name)).toEqual(['interleave.a', 'interleave.c'])
  })

  it('sends a connected client the late commit too, as it happens', async () => {
    const filters = [['contains', 'event:name', ['late.']]]
    const s = await following(tenant.adminKey, { filters })
    let commitA!: () => void
    const aHolds = new Promise<void>((resolve) => { commitA = resolve })
    let aInserted!: () => void
    const aHasId = new Promise<void>((resolve) => { aInserted = resolve })
    const a = withTenant(db.current.sql, tenant.id, async (tx) => {
      await recordEvents(tx, [event('late.a')])
      aInserted()
      await aHolds
    })
    await aHasId
    await record(tenant, [event('late.b')])
    await s.waitFor((m) => eventsOf(m).length === 1)
    commitA()
    await a
    await s.waitFor((m) => eventsOf(m).length === 2)
    expect(eventsOf(s.messages).map((e) => e.name)).toEqual(['late.b', 'late.a'])
  })

  it('tells a client that missed more than a resume sends to reload, then follows from now', async () => {
    const filters = [['contains', 'event:name', ['flood.']]]
    const s = await following(tenant.adminKey, { filters })
    const cursor = s.lastEventId
    s.close()
    await record(tenant, Array.from({ length: 60 }, (_, i) => event(`flood.e${i}`)))
    const again = await live(tenant.adminKey, { filters, lastEventId: cursor })
    await again.waitFor((m) => m.some((x) => x.event === 'reset'))
    expect(again.messages.map((m) => m.event)).toEqual(['reset'])
    expect(JSON.parse(again.messages[0]!.data)).toEqual({ missedMoreThan: 50 })
    await record(tenant, [event('flood.after')])
    await again.waitFor((m) => eventsOf(m).length === 1)
    expect(eventsOf(again.messages).map((e) => e.name)).toEqual(['flood.after'])
  })

  it('is described in the OpenAPI document, with Last-Event-ID and filters', async () => {
    const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const op = spec.paths['/v1/analytics/live/'].get
    expect(op.parameters.map((p: { in: string; name: string }) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['query:filters', 'header:last-event-id']))
  })

  describe('bad requests', () => {
    it('answers 401 without a key and with a wrong one', async () => {
      for (const headers of [{}, bearer('wl_live_not-a-key-at-all')]) {
        const s = await openSse(`${base}/v1/analytics/live`, headers)
        await s.waitForEnd()
        expect(s.status).toBe(401)
        expect(JSON.parse(s.body)).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
      }
    })

    it.each<[string, string, RegExp]>([
      ['filters that are not JSON', '?filters=%5B%5Bis', /filters must be JSON/],
      ['an unknown dimension', `?filters=${encodeURIComponent('[["is","visit:planet",["mars"]]]')}`, /unknown dimension "visit:planet"; valid dimensions: event:name, event:producer/],
      ['a time dimension (not a filter of events)', `?filters=${encodeURIComponent('[["is","time:day",["x"]]]')}`, /unknown dimension "time:day"/],
      ['an unknown operator', `?filters=${encodeURIComponent('[["matches_wildcard","event:name",["x"]]]')}`, /filter/],
      ['no values', `?filters=${encodeURIComponent('[["is","event:name",[]]]')}`, /filters/],
      ['a filter that is not a list', `?filters=${encodeURIComponent('{"is":"event:name"}')}`, /filters/],
      ['nesting beyond the limit', `?filters=${encodeURIComponent(JSON.stringify([Array.from({ length: 9 }).reduce<unknown>((f) => ['not', f], ['is', 'event:name', ['x']])]))}`, /filters/],
    ])('answers 400 for %s', async (_, query, message) => {
      const s = await live(tenant.adminKey, { raw: query })
      await s.waitForEnd()
      expect(s.status).toBe(400)
      const body = JSON.parse(s.body)
      expect(body.error.code).toBe('BAD_REQUEST')
      expect([body.error.message, ...body.error.details.map((d: { message: string }) => d.message)].join(' | ')).toMatch(message)
    })

    it.each(['12', 'abc:def:', '10:5:', '5:10:11', `1:2:${'3,'.repeat(2000)}3`])('answers 400 for a Last-Event-ID this feed did not send: %s', async (cursor) => {
      const s = await live(tenant.adminKey, { lastEventId: cursor })
      await s.waitForEnd()
      expect(s.status).toBe(400)
      expect(JSON.parse(s.body).error.details[0]).toMatchObject({ in: 'headers', path: 'last-event-id' })
    })

    it('lists every live dimension in the error', async () => {
      const s = await live(tenant.adminKey, { raw: `?filters=${encodeURIComponent('[["is","lead:planet",["x"]]]')}` })
      await s.waitForEnd()
      for (const d of LIVE_DIMENSIONS) expect(s.body).toContain(d)
    })
  })

  describe('security', () => {
    it("never shows a tenant another tenant's events, live or on resume", async () => {
      const mine = await following(tenant.adminKey)
      const theirs = await following(other.adminKey)
      const theirCursor = theirs.lastEventId
      await record(tenant, [event('secret.mine')])
      await record(other, [event('secret.theirs')])
      await mine.waitFor((m) => eventsOf(m).some((e) => e.name === 'secret.mine'))
      await theirs.waitFor((m) => eventsOf(m).some((e) => e.name === 'secret.theirs'))
      expect(eventsOf(theirs.messages).map((e) => e.name)).toEqual(['secret.theirs'])
      expect(eventsOf(mine.messages).map((e) => e.name)).not.toContain('secret.theirs')
      // A cursor is not a capability: resuming from the other tenant's cursor still reads only one's own events.
      const resumed = await live(tenant.adminKey, { lastEventId: theirCursor })
      await record(tenant, [event('secret.mine2')])
      await resumed.waitFor((m) => eventsOf(m).some((e) => e.name === 'secret.mine2'))
      expect(eventsOf(resumed.messages).map((e) => e.name)).toEqual(['secret.mine', 'secret.mine2'])
    })

    it('refuses the operator key (it is not a tenant)', async () => {
      const { OPERATOR_KEY } = await import('../../../../test/apps.js')
      const s = await openSse(`${base}/v1/analytics/live`, bearer(OPERATOR_KEY))
      await s.waitForEnd()
      expect(s.status).toBe(403)
    })
  })

  describe('resources', () => {
    it('frees the subscription when the client disconnects', async () => {
      const t = await makeTenant(db.current.sql)
      const s = await following(t.adminKey)
      expect(feed.streamsOf(t.id)).toBe(1)
      s.close()
      await waitUntil(() => feed.streamsOf(t.id) === 0)
    })

    it('drops a client that does not read instead of buffering for it', async () => {
      const t = await makeTenant(db.current.sql)
      const dropsBefore = await droppedSlow()
      // A raw socket that sends its request and never reads: the kernel buffers fill, then ours.
      const url = new URL(base)
      const socket = connect(Number(url.port), url.hostname)
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.write(`GET /v1/analytics/live HTTP/1.1\r\nhost: ${url.host}\r\naccept: text/event-stream\r\nauthorization: Bearer ${t.adminKey}\r\n\r\n`)
      socket.pause()
      await waitUntil(() => feed.streamsOf(t.id) === 1)
      const big = 'x'.repeat(7000)
      for (let i = 0; i < 100 && feed.streamsOf(t.id) === 1; i++) {
        await record(t, Array.from({ length: 100 }, () => event('bulk.page_viewed', { properties: { big } })))
      }
      await waitUntil(() => feed.streamsOf(t.id) === 0)
      expect(await droppedSlow()).toBe(dropsBefore + 1)
      socket.destroy()
    })

    it('ends open streams when the app closes', async () => {
      const otherFeed = new LiveFeed(db.current.sql, testLogger(), { resumeMaxEvents: 10, sweepIntervalMs: 15_000 })
      const second = await buildTestApi(db.current, {}, { liveFeed: otherFeed })
      const address = await second.listen({ host: '127.0.0.1', port: 0 })
      const s = await openSse(`${address}/v1/analytics/live`, bearer(tenant.adminKey))
      await waitUntil(() => s.lastEventId !== '')
      await second.close()
      await s.waitForEnd()
      expect(otherFeed.size).toEqual({ tenants: 0, subscribers: 0 })
    })

    it('answers 429 beyond LIVE_MAX_STREAMS_PER_TENANT streams of one tenant, and lets another tenant in', async () => {
      const capped = await buildTestApi(db.current, { LIVE_MAX_STREAMS_PER_TENANT: '1' })
      const address = await capped.listen({ host: '127.0.0.1', port: 0 })
      const t = await makeTenant(db.current.sql)
      const first = await openSse(`${address}/v1/analytics/live`, bearer(t.adminKey))
      await waitUntil(() => first.lastEventId !== '')
      const second = await openSse(`${address}/v1/analytics/live`, bearer(t.adminKey))
      await second.waitForEnd()
      expect(second.status).toBe(429)
      expect(JSON.parse(second.body)).toMatchObject({ error: { code: 'RATE_LIMITED' } })
      const another = await openSse(`${address}/v1/analytics/live`, bearer(other.adminKey))
      expect(another.status).toBe(200)
      first.close()
      another.close()
      await capped.close()
    })

    it('sends heartbeats while nothing happens', async () => {
      const beating = await buildTestApi(db.current, { LIVE_HEARTBEAT_MS: '50' })
      const address = await beating.listen({ host: '127.0.0.1', port: 0 })
      const s = await openSse(`${address}/v1/analytics/live`, bearer(other.adminKey))
      await waitUntil(() => s.comments >= 2)
      s.close()
      await beating.close()
    })
  })
})

async function droppedSlow(): Promise<number> {
  const metric = await registry.getSingleMetric('analytics_live_streams_dropped_total')?.get()
  return metric?.values.find((v) => v.labels.reason === 'slow')?.value ?? 0
}

/** Polls a condition (a stream's state changes asynchronously); fails after 10 s. */
async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 10 s')
    await new Promise((r) => setTimeout(r, 10))
  }
}
