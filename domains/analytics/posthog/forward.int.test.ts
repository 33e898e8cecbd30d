import { randomUUID } from 'node:crypto'
import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Pseudonyms } from '../../../lib/crypto.js'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import { startPosthogEmulator, type PosthogEmulator } from '../../../ops/emulators/posthog.js'
import { buildTaskList } from '../../../services/workers/tasks/index.js'
import { workerLogger } from '../../../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { drainJobs } from '../../../test/whatsapp.js'
import { recordEvents } from '../service.js'
import { derivedEventUuid, distinctIdOf, forwardDue, type ForwardOptions } from './forward.js'
import { putPosthogSettings } from './settings.js'

const API_KEY = 'phc_test_project_key'
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1'

// The person whose data must never reach PostHog.
const PERSON = { name: 'Ana Beatriz Souza', email: 'ana.souza@example.com', phone: '+5511987654321' }
const MESSAGE = 'Olá, quero marcar uma consulta amanhã'

/** PostHog's own properties posthog-node adds to every event; everything else must be on the tenant's allow-list. */
const CLIENT_PROPERTIES = ['$lib', '$lib_version', '$is_server', '$geoip_disable', '$groups', '$process_person_profile']

describe('PostHog forwarding: analytics.events → outbox → posthog-node → PostHog (the emulator, over real HTTP)', () => {
  const db = useTestDatabase()
  let posthog: PosthogEmulator
  let api: App
  let tenant: TestTenant
  let quiet: TestTenant
  let leadId: string
  const pseudonyms = Pseudonyms.fromConfig(undefined)

  /** The drain as the task runs it, with a clock `aheadMs` from now (instead of waiting for backoffs). */
  const options = (aheadMs = 0, overrides: Partial<ForwardOptions> = {}): ForwardOptions => ({
    apiKey: API_KEY, host: posthog.url, pseudonyms, batchSize: 100, maxAttempts: 3, retryBaseMs: 60_000, retryMaxMs: 600_000,
    requestTimeoutMs: 2000, now: () => new Date(Date.now() + aheadMs), ...overrides,
  })
  const drain = (aheadMs = 0, overrides: Partial<ForwardOptions> = {}) => forwardDue(db.current.sql, options(aheadMs, overrides), 30_000)
  const record = (t: TestTenant, rows: Parameters<typeof recordEvents>[1]) => withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, rows))
  const outbox = (t: TestTenant) => db.current.owner<{ eventId: string; status: string; attempts: number; lastError: string | null; nextAttemptAt: Date }[]>`
    select event_id, status, attempts, last_error, next_attempt_at from analytics.posthog_outbox where tenant_id = ${t.id} order by event_id`
  const eventIdsOf = (t: TestTenant, name: string) => db.current.owner<{ id: string }[]>`select id from analytics.events where tenant_id = ${t.id} and name = ${name} order by id`.then((r) => r.map((x) => x.id))

  beforeAll(async () => {
    posthog = await startPosthogEmulator({ apiKeys: [API_KEY] })
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    quiet = await makeTenant(db.current.sql)
    leadId = (await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: PERSON.name, email: PERSON.email, phoneE164: PERSON.phone }))).id
    await putPosthogSettings(db.current.sql, testConfig(), { tenantId: tenant.id, actor: 'test', requestId: null }, { enabled: true })
  })
  afterAll(async () => {
    await api?.close()
    await posthog?.stop()
  })
  beforeEach(async () => {
    posthog.reset()
    await drain(10 * 86_400_000)
    await db.current.owner`delete from analytics.posthog_outbox`
    posthog.reset()
  })

  it('sends each event once, with its id as uuid, a pseudonymous distinct_id and only the allowed properties', async () => {
    await record(tenant, [
      { name: 'whatsapp.message_received', leadId, occurredAt: new Date('2026-11-30T10:00:00Z'), source: 'whatsapp', dedupeKey: `wa:msg:${randomUUID()}`,
        properties: { text: MESSAGE, phone: PERSON.phone, profileName: PERSON.name, flowId: 'flow-1', templateName: 'welcome_v2' } },
      { name: 'form.submitted', leadId, occurredAt: new Date('2026-11-30T10:01:00Z'), source: 'web_form',
        properties: { formId: 'form-7', answers: { email: PERSON.email, name: PERSON.name }, note: PERSON.email } },
      { name: 'experiment.exposure', occurredAt: new Date('2026-11-30T10:02:00Z'), source: 'platform', anonymousId: 'anon-visitor-1',
        properties: { experimentKey: 'hero', variationKey: 'b', campaignId: 42, plan: 'pro' } },
    ])
    const ids = [...await eventIdsOf(tenant, 'whatsapp.message_received'), ...await eventIdsOf(tenant, 'form.submitted'), ...await eventIdsOf(tenant, 'experiment.exposure')]
    expect(await outbox(tenant)).toHaveLength(3)

    const result = await drain()
    expect(result).toMatchObject({ sent: 3, failed: 0, parked: 0 })
    expect(await outbox(tenant)).toEqual([])
    expect(posthog.requests.map((r) => [r.path, r.gzip, r.status, r.events])).toEqual([['/batch/', true, 200, 3]])

    const byUuid = new Map(posthog.events.map((e) => [e.uuid, e]))
    const [wa, form, exposure] = ids.map((id) => byUuid.get(derivedEventUuid(tenant.id, id))!)
    const leadDistinct = distinctIdOf(pseudonyms, tenant.id, { leadId, anonymousId: null }).id
    expect(wa).toMatchObject({ event: 'whatsapp.message_received', distinctId: leadDistinct, timestamp: '2026-11-30T10:00:00.000Z', apiKey: API_KEY })
    expect(wa!.properties).toMatchObject({ producer: 'whatsapp', flowId: 'flow-1', templateName: 'welcome_v2', $groups: { tenant: tenant.id } })
    expect(form!.properties).toMatchObject({ producer: 'web_form', formId: 'form-7' })
    expect(form!.distinctId).toBe(leadDistinct)
    expect(exposure!.distinctId).toBe(distinctIdOf(pseudonyms, tenant.id, { leadId: null, anonymousId: 'anon-visitor-1' }).id)
    expect(exposure!.properties).toMatchObject({ experimentKey: 'hero', variationKey: 'b', campaignId: 42 })
    // Not on the allow-list: never sent, whatever the event carried.
    for (const e of [wa!, form!, exposure!]) {
      const extra = Object.keys(e.properties).filter((k) => !CLIENT_PROPERTIES.includes(k) && !['producer', 'source', 'channel', 'country', 'device', 'browser', 'os', 'formId', 'flowId', 'templateName', 'campaignId', 'experimentKey', 'variationKey'].includes(k))
      expect(extra, e.event).toEqual([])
    }
    expect(exposure!.properties.plan).toBeUndefined()

    // Drained again: nothing is sent twice.
    expect(await drain()).toMatchObject({ sent: 0, batches: 0 })
    expect(posthog.requests).toHaveLength(1)
  })

  it('never lets the lead\'s phone, email, name, message text, lead id or visitor id reach PostHog', async () => {
    await record(tenant, [
      { name: 'whatsapp.message_received', leadId, occurredAt: new Date(), source: 'whatsapp', properties: { text: MESSAGE, from: PERSON.phone } },
      { name: 'lead.created', leadId, occurredAt: new Date(), source: 'marketing', properties: { leadSource: 'whatsapp', email: PERSON.email, name: PERSON.name } },
      // A tenant allow-list cannot smuggle an email or a phone in under an innocent name either.
      { name: 'form.submitted', leadId, occurredAt: new Date(), source: 'web_form', properties: { formId: PERSON.email, flowId: PERSON.phone, campaignId: 'spring' } },
      { name: 'page.viewed', occurredAt: new Date(), anonymousId: 'anon-visitor-secret', sessionId: 'session-secret', context: { userAgent: IPHONE } },
    ])
    expect((await drain()).sent).toBe(4)
    const wire = posthog.bodies()
    expect(wire).toContain('"campaignId":"spring"')
    const phoneDigits = PERSON.phone.replace(/\D/g, '')
    for (const needle of [PERSON.phone, phoneDigits, phoneDigits.slice(2), PERSON.email, PERSON.name, 'Ana', 'Souza', MESSAGE, 'consulta', leadId, 'anon-visitor-secret', 'session-secret', 'iPhone OS']) {
      expect(wire, needle).not.toContain(needle)
    }
  })

  it('records only the events of tenants that opted in; opting out drops what is still waiting', async () => {
    await record(quiet, [{ name: 'lead.created', occurredAt: new Date() }])
    expect(await outbox(quiet)).toEqual([])
    await record(tenant, [{ name: 'lead.created', occurredAt: new Date() }, { name: 'lead.qualified', occurredAt: new Date() }])
    expect(await outbox(tenant)).toHaveLength(2)
    await putPosthogSettings(db.current.sql, testConfig(), { tenantId: tenant.id, actor: 'test', requestId: null }, { enabled: false })
    expect(await outbox(tenant)).toEqual([])
    await record(tenant, [{ name: 'lead.converted', occurredAt: new Date() }])
    expect(await outbox(tenant)).toEqual([])
    expect((await drain()).sent).toBe(0)
    expect(posthog.requests).toEqual([])
    await putPosthogSettings(db.current.sql, testConfig(), { tenantId: tenant.id, actor: 'test', requestId: null }, { enabled: true })
  })

  it('with PostHog down, ingestion goes on untouched and the events are forwarded once it is back', async () => {
    posthog.setDown(503)
    const n = 50
    const rows = Array.from({ length: n }, (_, i) => ({ name: 'whatsapp.message_sent', leadId, occurredAt: new Date(), source: 'whatsapp', dedupeKey: `wa:sent:${randomUUID()}`, properties: { messageId: `m${i}` } }))
    // Recording never talks to PostHog: it only writes the outbox rows.
    expect(await record(tenant, rows)).toBe(n)
    expect(posthog.requests).toEqual([])
    expect(await outbox(tenant)).toHaveLength(n)

    const failed = await drain()
    expect(failed).toMatchObject({ sent: 0, failed: n, parked: 0 })
    const waiting = await outbox(tenant)
    expect(waiting.every((r) => r.status === 'pending' && r.attempts === 1)).toBe(true)
    expect(waiting[0]!.lastError).toContain('PostHog answered 503')
    expect(waiting[0]!.lastError).toContain('server_error')
    // Backing off: not due again yet, so no request goes out.
    const before = posthog.requests.length
    expect((await drain()).batches).toBe(0)
    expect(posthog.requests.length).toBe(before)

    // Timing out counts as down too.
    posthog.setDown('timeout')
    expect(await drain(120_000, { requestTimeoutMs: 300 })).toMatchObject({ sent: 0, failed: n })
    expect((await outbox(tenant))[0]).toMatchObject({ attempts: 2, status: 'pending', lastError: expect.stringContaining('timed out') })

    posthog.setDown(null)
    const back = await drain(600_000)
    expect(back).toMatchObject({ sent: n, failed: 0 })
    expect(await outbox(tenant)).toEqual([])
    expect(posthog.events.filter((e) => e.event === 'whatsapp.message_sent')).toHaveLength(n)
    expect(new Set(posthog.events.map((e) => e.uuid)).size).toBe(n)
  })

  it('parks an event after maxAttempts failures with the error, and sends it when requeued', async () => {
    posthog.setDown(500)
    await record(tenant, [{ name: 'lead.status_changed', leadId, occurredAt: new Date(), properties: { from: 'new', to: 'qualified' } }])
    for (const ahead of [0, 3_600_000, 7_200_000]) await drain(ahead)
    const [parked] = await outbox(tenant)
    expect(parked).toMatchObject({ status: 'parked', attempts: 3, lastError: expect.stringContaining('PostHog answered 500') })
    // Parked rows are not retried by the drain.
    posthog.setDown(null)
    expect((await drain(86_400_000)).batches).toBe(0)
    const status = await api.inject({ method: 'GET', url: '/v1/analytics/posthog', headers: bearer(tenant.adminKey) })
    expect(status.json().outbox).toMatchObject({ pending: 0, parked: 1, lastError: expect.stringContaining('500') })

    const requeued = await api.inject({ method: 'POST', url: '/v1/analytics/posthog/requeue-parked', headers: bearer(tenant.adminKey) })
    expect(requeued.json()).toEqual({ requeued: 1 })
    expect((await drain(1000)).sent).toBe(1)
    expect(posthog.events.map((e) => e.event)).toEqual(['lead.status_changed'])
  })

  it('retries a batch PostHog refuses event by event, and PostHog counts a resent event once (same uuid)', async () => {
    await record(tenant, [1, 2, 3].map((i) => ({ name: 'bot.conversation_started', leadId, occurredAt: new Date(), properties: { flowId: `f${i}` } })))
    posthog.failNext(400)
    expect(await drain()).toMatchObject({ sent: 3, failed: 0 })
    expect(posthog.requests.map((r) => [r.status, r.events])).toEqual([[400, 0], [200, 1], [200, 1], [200, 1]])

    // As if PostHog's answer had been lost after it stored the batch: the same rows go again.
    const ids = await eventIdsOf(tenant, 'bot.conversation_started')
    await db.current.owner`
      insert into analytics.posthog_outbox (tenant_id, event_id, occurred_at)
      select tenant_id, id, occurred_at from analytics.events where id = any(${ids}::bigint[])`
    expect((await drain()).sent).toBe(3)
    expect(posthog.events.filter((e) => e.event === 'bot.conversation_started')).toHaveLength(3)
    expect(posthog.duplicates).toBe(3)
  })

  it('sends each event once when several lanes drain the same tenant at once (skip locked gives each other rows)', async () => {
    const n = 300
    await record(tenant, Array.from({ length: n }, (_, i) => ({ name: 'form.viewed', anonymousId: `anon-${i}`, occurredAt: new Date(), properties: { formId: `f${i % 3}` } })))
    const r = await drain(0, { batchSize: 40, concurrency: 3 })
    expect(r).toMatchObject({ sent: n, failed: 0 })
    expect(posthog.events).toHaveLength(n)
    expect(posthog.duplicates).toBe(0)
    expect(posthog.requests.every((q) => q.status === 200 && q.events <= 40)).toBe(true)
    expect(await outbox(tenant)).toEqual([])
  })

  it('drops an outbox row whose event is gone (retention) instead of sending it', async () => {
    await record(tenant, [{ name: 'lead.created', occurredAt: new Date(Date.now() - 100 * 86_400_000) }])
    await db.current.owner`delete from analytics.events where tenant_id = ${tenant.id} and name = 'lead.created'`
    expect(await drain()).toMatchObject({ sent: 0, dropped: 1 })
    expect(await outbox(tenant)).toEqual([])
    expect(posthog.requests).toEqual([])
  })

  it('erasure deletes the person\'s pending outbox rows, even of events linked to the lead after they were recorded', async () => {
    const other = (await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { email: 'someone.else@example.com' }))).id
    await record(tenant, [
      { name: 'lead.created', leadId, occurredAt: new Date() },
      { name: 'page.viewed', anonymousId: 'anon-to-link', occurredAt: new Date() },
      { name: 'lead.created', leadId: other, occurredAt: new Date() },
    ])
    // The visitor turns out to be the lead (platform's anonymousId linking updates the event).
    await db.current.owner`update analytics.events set lead_id = ${leadId} where tenant_id = ${tenant.id} and anonymous_id = 'anon-to-link'`
    expect(await outbox(tenant)).toHaveLength(3)

    const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { leadId } })
    expect(posted.statusCode).toBe(202)
    const deps = { config: testConfig(), sql: db.current.sql, log: testLogger() }
    await runOnce({ connectionString: db.current.runtimeUrl, taskList: { privacy__erase_subject: buildTaskList(deps).privacy__erase_subject! }, logger: workerLogger(deps.log), concurrency: 1 })
    const request = await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${posted.json().id}`, headers: bearer(tenant.adminKey) })
    expect(request.json().status).toBe('completed')

    const left = await outbox(tenant)
    expect(left).toHaveLength(1)
    expect((await drain()).sent).toBe(1)
    expect(posthog.events.map((e) => e.distinctId)).toEqual([distinctIdOf(pseudonyms, tenant.id, { leadId: other, anonymousId: null }).id])
  })

  it('forwards client events from POST /v1/events with the client\'s id as uuid, through the worker\'s task', async () => {
    const webhooks = await buildTestWebhooks(db.current)
    try {
      const events = [1, 2].map(() => ({ id: randomUUID(), name: 'pricing.viewed', type: 'page', occurredAt: new Date().toISOString(), anonymousId: 'anon-web', context: { userAgent: IPHONE, page: { url: 'https://clinic.example/?utm_source=newsletter&utm_medium=email' } } }))
      const res = await webhooks.inject({ method: 'POST', url: '/v1/events', headers: bearer(tenant.adminKey), payload: { events } })
      expect(res.statusCode).toBe(202)
      await drainJobs(db.current)
      expect(await outbox(tenant)).toHaveLength(2)

      const deps = { config: testConfig({ POSTHOG_API_KEY: API_KEY, POSTHOG_HOST: posthog.url }), sql: db.current.sql, log: testLogger() }
      await db.current.owner`select graphile_worker.add_job('analytics__forward_posthog', '{}'::json)`
      await runOnce({ connectionString: db.current.runtimeUrl, taskList: { analytics__forward_posthog: buildTaskList(deps).analytics__forward_posthog! }, logger: workerLogger(deps.log), concurrency: 1 })

      expect(await outbox(tenant)).toEqual([])
      expect(posthog.events.map((e) => e.uuid).sort()).toEqual(events.map((e) => e.id).sort())
      expect(posthog.events[0]!.properties).toMatchObject({ producer: 'api', source: 'newsletter', channel: 'email', device: 'mobile', os: 'iOS' })
    } finally {
      await webhooks.close()
    }
  })

  it('does nothing without POSTHOG_API_KEY: the rows wait', async () => {
    await record(tenant, [{ name: 'lead.created', occurredAt: new Date() }])
    const deps = { config: testConfig({ POSTHOG_HOST: posthog.url }), sql: db.current.sql, log: testLogger() }
    await db.current.owner`select graphile_worker.add_job('analytics__forward_posthog', '{}'::json)`
    await runOnce({ connectionString: db.current.runtimeUrl, taskList: { analytics__forward_posthog: buildTaskList(deps).analytics__forward_posthog! }, logger: workerLogger(deps.log), concurrency: 1 })
    expect(await outbox(tenant)).toHaveLength(1)
    expect(posthog.requests).toEqual([])
  })
})
