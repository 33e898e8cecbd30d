import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWorker, type WorkerHandle } from '../../services/workers/worker.js'
import { buildTestWebhooks, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { verifyStandardWebhook } from './webhooks.js'

const SECRET = `whsec_${Buffer.from('onboarding-webhook-test-secret-0123').toString('base64')}`

interface Received { type: string; sessionId: string; at: number; id: string; valid: boolean }

/**
 * Nudges and abandonment on time, with short intervals (1 s and 3 s): one job per session, moved forward by every
 * activity; the outbound events signed the Standard Webhooks way, checked as a receiver would, and retried.
 */
describe('onboarding inactivity: nudges, abandonment, resume, and the signed webhooks', () => {
  const db = useTestDatabase()
  let webhooks: App
  let worker: WorkerHandle
  let receiver: Server
  let base: string
  const received: Received[] = []
  let failNext = 0
  const settings = { ONBOARDING_NUDGE_AFTER: '1s', ONBOARDING_ABANDON_AFTER: '3s', ONBOARDING_WEBHOOK_SECRET: SECRET }

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (c) => { body += c })
      req.on('end', () => {
        if (failNext > 0) {
          failNext -= 1
          res.writeHead(500).end()
          return
        }
        const headers = { id: String(req.headers['webhook-id']), timestamp: String(req.headers['webhook-timestamp']), signature: String(req.headers['webhook-signature']) }
        const event = JSON.parse(body) as { type: string; data: { sessionId: string } }
        received.push({ type: event.type, sessionId: event.data.sessionId, at: Date.now(), id: headers.id, valid: verifyStandardWebhook(SECRET, headers, body) })
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/onboarding`
    const config = { ...settings, ONBOARDING_WEBHOOK_URL: url }
    webhooks = await buildTestWebhooks(db.current, config)
    base = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    worker = await startWorker({ config: testConfig({ ...config, WORKER_POLL_INTERVAL_MS: '100' }), log: testLogger(), connectionString: db.current.runtimeUrl })
  })
  afterAll(async () => {
    await worker?.stop()
    await webhooks?.close()
    await new Promise((r) => receiver?.close(r))
  })

  const start = async () => {
    // Before the request: the session's last activity is stamped while it is handled.
    const startedAt = Date.now()
    const res = await fetch(`${base}/onboarding/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    const json = (await res.json()) as { session: { sessionId: string }; link: { token: string } }
    return { id: json.session.sessionId, token: json.link.token, startedAt }
  }
  const view = (token: string) => fetch(`${base}/onboarding/sessions/${token}`).then((r) => r.json() as Promise<{ status: string }>)
  const waitFor = async (predicate: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('timed out waiting')
      await sleep(25)
    }
  }
  const of = (sessionId: string, type: string) => received.filter((r) => r.sessionId === sessionId && r.type === type)

  it('nudges once after 1 s idle and abandons after 3 s, each as a signed webhook, never early', async () => {
    const s = await start()
    await waitFor(() => of(s.id, 'onboarding.abandoned').length === 1, 8_000)
    const [nudge] = of(s.id, 'onboarding.nudge')
    const [abandoned] = of(s.id, 'onboarding.abandoned')
    expect(of(s.id, 'onboarding.nudge')).toHaveLength(1)
    expect(nudge!.valid && abandoned!.valid).toBe(true)
    expect(nudge!.at - s.startedAt).toBeGreaterThanOrEqual(1_000)
    expect(abandoned!.at - s.startedAt).toBeGreaterThanOrEqual(3_000)
    const [row] = await db.current.owner`select status, abandoned_step from onboarding.sessions where id = ${s.id}`
    expect(row).toEqual({ status: 'abandoned', abandonedStep: 'business_info' })
  })

  it('resumes an abandoned session on its next activity, and each activity pushes the nudge back', async () => {
    const s = await start()
    await waitFor(() => of(s.id, 'onboarding.abandoned').length === 1, 8_000)
    expect((await view(s.token)).status).toBe('in_progress')
    const kinds = await db.current.owner<{ kind: string }[]>`select kind from onboarding.step_activities where session_id = ${s.id} order by id`
    expect(kinds.map((k) => k.kind)).toEqual(['started', 'nudged', 'abandoned', 'viewed', 'resumed'])
    // Keep the session busy past its nudge time: no nudge while active.
    const busyUntil = Date.now() + 1_800
    let last = Date.now()
    while (Date.now() < busyUntil) {
      last = Date.now()
      await view(s.token)
      await sleep(400)
    }
    expect(of(s.id, 'onboarding.nudge')).toHaveLength(1)
    await waitFor(() => of(s.id, 'onboarding.nudge').length === 2, 5_000)
    expect(of(s.id, 'onboarding.nudge')[1]!.at - last).toBeGreaterThanOrEqual(1_000)
  })

  it('retries a webhook the receiver refused, keeping its id, and records every attempt', async () => {
    failNext = 1
    const s = await start()
    await waitFor(() => of(s.id, 'onboarding.nudge').length === 1, 10_000)
    // The receiver has it; the attempt is recorded just after its answer arrives.
    const eventRow = () => db.current.owner<{ id: string; status: string; attempts: number; lastStatus: number }[]>`
      select id, status, attempts, last_status from onboarding.webhook_events where session_id = ${s.id} and type = 'onboarding.nudge'`.then((r) => r[0])
    await expect.poll(eventRow, { timeout: 5_000, interval: 50 }).toMatchObject({ status: 'delivered', attempts: 2, lastStatus: 204 })
    const event = await eventRow()
    expect(of(s.id, 'onboarding.nudge')[0]!.id).toBe(event!.id)
  })
})
