import type { WorkerHandle } from '../services/workers/worker.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGraphClient } from '../domains/whatsapp/graph/client.js'
import { textBody } from '../domains/whatsapp/graph/bodies.js'
import { drainRecipientOutbox } from '../domains/whatsapp/outbound/sender.js'
import { queueOutbound } from '../domains/whatsapp/outbound/service.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { withTenant } from '../lib/db.js'
import type { App } from '../lib/http/create-server.js'
import { startMetricsServer } from '../lib/http/metrics.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { startWorker } from '../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig, testLogger } from './apps.js'
import { useTestDatabase } from './db.js'
import { makeWhatsAppLead } from './factories/conversations-rows.js'
import { makeTenant, type TestTenant } from './factories/tenants.js'
import { makePhoneNumber, testSecrets, type TestNumber } from './factories/whatsapp.js'
import { drainJobs, postDelivery } from './whatsapp.js'

/** The value of one sample in Prometheus text format (0 when absent), e.g. `sample(text, 'x_total', { a: 'b' })`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const braces = line.match(/^[^{ ]+\{(.*)\} (\S+)$/)
    const have = Object.fromEntries([...(braces?.[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]))
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) {
      return Number(braces ? braces[2] : line.split(' ')[1])
    }
  }
  return 0
}

const scrape = async (app: App, headers: Record<string, string> = {}) => {
  const res = await app.inject({ method: 'GET', url: '/metrics', headers })
  expect(res.statusCode).toBe(200)
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
  return res.body
}

describe('/metrics', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let tenant: TestTenant
  let number: TestNumber
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    api = await buildTestApi(db.current, { METRICS_TOKEN: 'metrics-token-0123456789' })
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
  })
  afterAll(async () => {
    await Promise.all([webhooks.close(), api.close()])
  })

  it('counts webhook deliveries acknowledged, stored and duplicated, requests by route and status, and group-commit batches', async () => {
    const before = await scrape(webhooks)
    const bodies = [1, 2, 3].map((i) => f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from: '5511900000001', body: `m${i}` })] }))
    for (const body of bodies) expect((await postDelivery(webhooks, body)).statusCode).toBe(200)
    expect((await postDelivery(webhooks, bodies[0])).json()).toMatchObject({ duplicate: true })
    expect((await postDelivery(webhooks, bodies[0], { secret: 'not-the-secret' })).statusCode).toBe(401)
    expect((await webhooks.inject({ method: 'GET', url: '/no/such/route/+5511900000001' })).statusCode).toBe(404)
    const after = await scrape(webhooks)

    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels)
    expect(delta('whatsapp_deliveries_total', { outcome: 'acknowledged' })).toBe(4)
    expect(delta('whatsapp_deliveries_total', { outcome: 'stored' })).toBe(3)
    expect(delta('whatsapp_deliveries_total', { outcome: 'duplicate' })).toBe(1)
    const post = { service: 'webhooks', method: 'POST', route: '/webhooks/whatsapp' }
    expect(delta('http_requests_total', { ...post, status: '200' })).toBe(4)
    expect(delta('http_requests_total', { ...post, status: '401' })).toBe(1)
    expect(delta('http_request_duration_seconds_count', { ...post, status: '200' })).toBe(4)
    expect(delta('http_requests_total', { service: 'webhooks', method: 'GET', route: '(unmatched)', status: '404' })).toBe(1)
    // Posted one after another: four flushes of one delivery each.
    expect(delta('group_commit_batch_size_count', { inbox: 'delivery' })).toBe(4)
    expect(delta('group_commit_batch_size_sum', { inbox: 'delivery' })).toBe(4)
    // Route patterns only: the raw URL (and the number in it) never becomes a label.
    expect(after).not.toContain('5511900000001')
  })

  it('counts form submissions acknowledged and stored, and their group-commit batches', async () => {
    const form = await api.inject({
      method: 'POST', url: '/v1/forms', headers: bearer(tenant.adminKey),
      payload: { name: 'Contact', fields: [{ name: 'phone', label: 'Phone', type: 'phone', required: true }], allowedOrigins: ['https://clinic.example'] },
    })
    expect(form.statusCode).toBe(201)
    const before = await scrape(webhooks)
    for (const phone of ['+5511900000011', '+5511900000012']) {
      const res = await webhooks.inject({ method: 'POST', url: form.json().submitPath, headers: { origin: 'https://clinic.example' }, payload: { phone, started_at: Date.now() - 20_000 } })
      expect(res.statusCode).toBe(201)
    }
    const after = await scrape(webhooks)
    const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels)
    expect(delta('form_submissions_total', { outcome: 'acknowledged' })).toBe(2)
    expect(delta('form_submissions_total', { outcome: 'stored' })).toBe(2)
    expect(delta('group_commit_batch_size_sum', { inbox: 'submission' })).toBe(2)
    expect(delta('http_requests_total', { service: 'webhooks', method: 'POST', route: '/forms/:publicKey/submissions', status: '201' })).toBe(2)
  })

  it('counts API requests by route pattern, not by URL', async () => {
    const before = await scrape(api)
    for (let i = 0; i < 2; i++) expect((await api.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
    const missing = '00000000-0000-4000-8000-00000000dead'
    expect((await api.inject({ method: 'GET', url: `/v1/leads/${missing}`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    const after = await scrape(api)
    const delta = (labels: Record<string, string>) => sample(after, 'http_requests_total', labels) - sample(before, 'http_requests_total', labels)
    expect(delta({ service: 'api', method: 'GET', route: '/v1/me', status: '200' })).toBe(2)
    expect(delta({ service: 'api', method: 'GET', route: '/v1/leads/:leadId', status: '404' })).toBe(1)
    expect(after).not.toContain(missing)
  })

  it('is refused to callers that are not on loopback or came through a proxy, unless they hold METRICS_TOKEN', async () => {
    for (const app of [webhooks, api]) {
      const remote = await app.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9' })
      expect(remote.statusCode).toBe(404)
      expect(remote.json()).toMatchObject({ error: { code: 'NOT_FOUND', requestId: expect.any(String) } })
      expect(remote.body).not.toContain('http_requests_total')
      const proxied = await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-forwarded-for': '203.0.113.9' } })
      expect(proxied.statusCode).toBe(404)
    }
    // The API was configured with a token: with it, a remote scraper is let in; with a wrong one, it is not.
    expect((await api.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9', headers: bearer('metrics-token-0123456789') })).statusCode).toBe(200)
    expect((await api.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9', headers: bearer('metrics-token-wrong-000000') })).statusCode).toBe(404)
    // The webhooks service has no token: a bearer proves nothing there.
    expect((await webhooks.inject({ method: 'GET', url: '/metrics', remoteAddress: '203.0.113.9', headers: bearer('metrics-token-0123456789') })).statusCode).toBe(404)
  })

  describe("the worker's metrics server", () => {
    let worker: WorkerHandle | undefined
    let server: Awaited<ReturnType<typeof startMetricsServer>>
    let wa: WhatsAppEmulator
    beforeAll(async () => {
      server = await startMetricsServer({ config: testConfig(), log: testLogger(), service: 'worker', port: 0 })
      wa = await startWhatsAppEmulator({ wabaId: number.wabaId, autoStatuses: false })
    })
    afterAll(async () => {
      await worker?.stop()
      await server?.close()
      await wa?.stop()
    })
    const scrapeWorker = async () => {
      const res = await fetch(`${server!.url}/metrics`)
      expect(res.status).toBe(200)
      return res.text()
    }

    it('shows queue depth and the oldest job age per task, read from graphile-worker at scrape time', async () => {
      // The worker registers the scrape sources (and would run these jobs: its poll is long, and it knows no such task).
      worker = await startWorker({ config: testConfig(), metricsSql: db.current.sql, log: testLogger(), connectionString: db.current.runtimeUrl, pollInterval: 60_000 })
      await db.current.owner`select graphile_worker.add_job('test__nobody_runs', '{}'::json, run_at := now() - interval '90 seconds')`
      await db.current.owner`select graphile_worker.add_job('test__nobody_runs', '{}'::json, run_at := now() - interval '10 seconds')`
      await db.current.owner`select graphile_worker.add_job('test__nobody_runs', '{}'::json, run_at := now() + interval '1 hour')`
      const text = await scrapeWorker()
      expect(sample(text, 'worker_queue_jobs', { task: 'test__nobody_runs', state: 'ready' })).toBe(2)
      expect(sample(text, 'worker_queue_jobs', { task: 'test__nobody_runs', state: 'scheduled' })).toBe(1)
      const age = sample(text, 'worker_queue_oldest_job_age_seconds', { task: 'test__nobody_runs' })
      expect(age).toBeGreaterThanOrEqual(90)
      expect(age).toBeLessThan(600)
      expect(sample(text, 'whatsapp_parked_deliveries')).toBe(0)
      expect(sample(text, 'metrics_scrape_source_failures_total', { source: 'queue' })).toBe(0)
      await db.current.owner`delete from graphile_worker._private_jobs where task_id = (select id from graphile_worker._private_tasks where identifier = 'test__nobody_runs')`
      await worker?.stop()
      worker = undefined
    })

    it('counts deliveries processed, quarantined items, and send outcomes by Meta error code', async () => {
      await drainJobs(db.current) // what the tests above left
      const before = await scrapeWorker()
      const unknownNumber = f.delivery({ phoneNumberId: '199999999999999', messages: [f.textMessage({ from: '5511900000002', body: 'to nobody' })] })
      for (const body of [
        f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from: '5511900000003', body: 'a' })] }),
        f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from: '5511900000003', body: 'b' })] }),
        unknownNumber,
      ]) expect((await postDelivery(webhooks, body)).statusCode).toBe(200)
      await drainJobs(db.current)

      const lead = await makeWhatsAppLead(db.current.sql, tenant, { number, lastInboundAt: new Date() })
      const queue = (text: string) => withTenant(db.current.sql, tenant.id, (tx) =>
        queueOutbound(tx, { tenantId: tenant.id, phoneId: number.id, leadId: lead.id, waId: lead.waId, body: textBody({ to: lead.waId, text }), source: 'api', requestedBy: 'test' })).then((r) => r.id)
      const options = { sql: db.current.sql, graph: createGraphClient({ baseUrl: wa.url, apiVersion: 'v21.0', timeoutMs: 2_000 }), secrets: testSecrets, ratePerSecond: 1000, retryBaseMs: 10 }
      wa.failNext(131026) // "Message undeliverable": final for this message
      await drainRecipientOutbox(options, tenant.id, await queue('first'))
      wa.failNext(130429) // throughput reached: retried later
      await drainRecipientOutbox(options, tenant.id, await queue('second'))

      const after = await scrapeWorker()
      const delta = (name: string, labels: Record<string, string> = {}) => sample(after, name, labels) - sample(before, name, labels)
      expect(delta('whatsapp_deliveries_total', { outcome: 'processed' })).toBe(3)
      expect(delta('whatsapp_quarantined_items')).toBe(1)
      expect(delta('whatsapp_sends_total', { outcome: 'failed', code: '131026' })).toBe(1)
      expect(delta('whatsapp_sends_total', { outcome: 'retry', code: '130429' })).toBe(1)
      expect(delta('whatsapp_sends_total', { outcome: 'accepted', code: 'none' })).toBe(0)
      // The retried message goes out on its next attempt.
      await new Promise((r) => setTimeout(r, 50))
      const [pending] = await db.current.owner<{ messageId: string }[]>`select message_id from whatsapp.outbound_sends where state = 'queued' and wa_id = ${lead.waId}`
      await drainRecipientOutbox(options, tenant.id, pending!.messageId)
      expect(sample(await scrapeWorker(), 'whatsapp_sends_total', { outcome: 'accepted', code: 'none' }) - sample(before, 'whatsapp_sends_total', { outcome: 'accepted', code: 'none' })).toBe(1)
    })

    it('is refused to a caller that came through a proxy', async () => {
      const res = await fetch(`${server!.url}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } })
      expect(res.status).toBe(404)
      expect((await fetch(`${server!.url}/healthz`)).status).toBe(200)
    })
  })
})
