import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { deriveRuntimeUrl, DEFAULT_RUNTIME_USER } from '../lib/database.js'
import { createSql } from '../lib/db.js'
import { startEmbeddedPostgres, type EmbeddedServer } from '../lib/embedded-postgres.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'
import { OPERATOR_KEY } from './apps.js'
import { makeTenant } from './factories/tenants.js'
import { makePhoneNumber, PLATFORM_APP_SECRET } from './factories/whatsapp.js'
import { freePort } from './free-port.js'
import { isReady, startEntry, waitFor, type Started } from './processes.js'

const DELIVERIES = 300
const CONCURRENCY = 8
const RUNTIME_PASSWORD = 'outage-test-runtime-password'

interface Answer {
  status: number
  retryAfter: string | null
  body: { received?: boolean; deliveryId?: string; error?: { code: string; message: string; requestId: string } } | null
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init)
  const text = await res.text()
  let body: Answer['body'] = null
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: the assertions below will say so
  }
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body }
}

/** What every service must answer for anything that needs the database while it is away. */
function expectUnavailable(answer: Answer) {
  expect(answer.status).toBe(503)
  expect(Number(answer.retryAfter)).toBeGreaterThan(0)
  expect(answer.body?.error).toMatchObject({ code: 'UNAVAILABLE', message: expect.any(String), requestId: expect.any(String) })
}

describe('a database outage under load', () => {
  // A PostgreSQL of this file's own, to stop and start: the suite's shared server must keep running.
  let server: EmbeddedServer | null = null
  let dir = ''
  const processes: Started[] = []
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')))
    await server?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('answers 503 with Retry-After while PostgreSQL is away, never exits, and resumes without a restart with every acknowledged delivery applied once', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'wa-outage-'))
    await chmod(dir, 0o755) // as root the server runs as `postgres`, which must reach its data folder
    const pgDir = path.join(dir, 'pg')
    const pgPort = await freePort()
    server = await startEmbeddedPostgres({ dir: pgDir, port: pgPort, persistent: true })
    const admin = postgres(server.url('postgres'), { max: 1, onnotice: () => {} })
    await admin`create database wa_outage`
    await admin.end()
    const ownerUrl = server.url('wa_outage')

    const env = {
      DATABASE_URL: ownerUrl,
      DATABASE_RUNTIME_PASSWORD: RUNTIME_PASSWORD,
      OPERATOR_API_KEY: OPERATOR_KEY,
      AUTO_SEED: 'false',
      LOG_LEVEL: 'warn',
      WORKER_POLL_INTERVAL_MS: '100',
      WORKER_HEARTBEAT_TIMEOUT_MS: '3000',
    }
    const webhooksPort = String(await freePort())
    const apiPort = String(await freePort())
    const webhooksUrl = `http://127.0.0.1:${webhooksPort}`
    const apiUrl = `http://127.0.0.1:${apiPort}`
    // The webhooks service migrates first; then the others start on the migrated database.
    const webhooks = startEntry('services/webhooks/main.ts', { ...env, WEBHOOKS_PORT: webhooksPort })
    processes.push(webhooks)
    await waitFor(() => isReady(webhooksUrl), 60_000, 'webhooks ready')
    const api = startEntry('services/api/main.ts', { ...env, API_PORT: apiPort })
    const worker = startEntry('services/workers/main.ts', env)
    processes.push(api, worker)
    const owner = createSql(ownerUrl, { max: 2, quiet: true })
    const runtime = createSql(deriveRuntimeUrl(ownerUrl, DEFAULT_RUNTIME_USER, RUNTIME_PASSWORD), { max: 2, quiet: true })
    try {
      await waitFor(() => isReady(apiUrl), 60_000, 'api ready')
      await waitFor(async () => (await owner`select 1 from ops.worker_heartbeats limit 1`).length > 0, 60_000, 'worker beating')
      const tenant = await makeTenant(runtime)
      const number = await makePhoneNumber(runtime, tenant)
      const pids = processes.map((p) => p.child.pid)

      // Signed deliveries of one message each, as Meta posts them; `answers` keeps the last answer for each.
      const wamids = Array.from({ length: DELIVERIES }, () => f.newWamid())
      const bodies = wamids.map((id, i) =>
        JSON.stringify(f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from: `55119${String(i).padStart(8, '0')}`, body: `m${i}`, id })] })),
      )
      const answers = new Map<number, Answer>()
      const post = (i: number) =>
        call(`${webhooksUrl}/webhooks/whatsapp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(bodies[i]!, PLATFORM_APP_SECRET) },
          body: bodies[i],
        }).then((a) => answers.set(i, a))
      let next = 0
      const sendUntil = async (stop: () => boolean) => {
        await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          while (next < DELIVERIES && !stop()) await post(next++)
        }))
      }

      // A third of the load with the database up; the next sixth is in flight while it stops (a stop waits for
      // sessions to close, so how many of those land depends on the machine), and the sixth after it is sent only
      // once the server is gone: each of those must be refused.
      await sendUntil(() => next >= DELIVERIES / 3)
      const during = sendUntil(() => next >= DELIVERIES / 2)
      await server.stop()
      await during
      const stoppedAt = next
      await sendUntil(() => next >= (2 * DELIVERIES) / 3)

      // While it is away: every service answers, in the error shape, with Retry-After; liveness stays green.
      for (const base of [webhooksUrl, apiUrl]) {
        expectUnavailable(await call(`${base}/readyz`))
        expect((await call(`${base}/healthz`)).status).toBe(200)
      }
      expectUnavailable(await call(`${apiUrl}/v1/me`, { headers: { authorization: `Bearer ${tenant.adminKey}` } }))
      const sentDuringOutage = [...answers].filter(([i]) => i >= stoppedAt)
      expect(sentDuringOutage).toHaveLength(DELIVERIES / 6)
      for (const [, a] of sentDuringOutage) expectUnavailable(a)
      await new Promise((r) => setTimeout(r, 2_000)) // past the worker's fencing point (half its 3 s heartbeat timeout)
      for (const p of processes) expect(p.child.exitCode).toBeNull()

      // Back on the same port and data folder: everything resumes by itself, and the last third is accepted.
      server = await startEmbeddedPostgres({ dir: pgDir, port: pgPort, persistent: true })
      await waitFor(async () => (await isReady(webhooksUrl)) && (await isReady(apiUrl)), 20_000, 'both services ready again')
      expect((await call(`${apiUrl}/v1/me`, { headers: { authorization: `Bearer ${tenant.adminKey}` } })).status).toBe(200)
      const resumedAt = next
      await sendUntil(() => false)
      expect([...answers].filter(([i, a]) => i >= resumedAt && a.status !== 200)).toEqual([])

      // Nothing but 200 or 503 was ever answered; then Meta retries what was refused, and all of it is accepted.
      expect([...answers.values()].filter((a) => a.status !== 200 && a.status !== 503)).toEqual([])
      const acknowledged = [...answers].filter(([, a]) => a.status === 200).map(([i]) => i)
      const refused = [...answers].filter(([, a]) => a.status !== 200).map(([i]) => i)
      expect(acknowledged.length).toBeGreaterThan(DELIVERIES / 3)
      for (const i of refused) await post(i)
      expect([...answers.values()].filter((a) => a.status !== 200)).toEqual([])

      // Every delivery is processed exactly once, by the worker that lived through the outage.
      const applied = async () =>
        Number((await owner`select count(distinct wamid)::int as n from whatsapp.messages where wamid = any(${wamids})`)[0]!.n)
      await waitFor(async () => (await applied()) === DELIVERIES, 30_000, 'every delivery applied')
      const [rows] = await owner<{ messages: number; processed: number }[]>`
        select (select count(*)::int from whatsapp.messages where wamid = any(${wamids})) as messages,
               (select count(*)::int from whatsapp.webhook_deliveries where status = 'processed') as processed`
      expect(rows).toEqual({ messages: DELIVERIES, processed: DELIVERIES })

      // The same processes throughout: none exited, none was restarted, none logged a crash.
      expect(processes.map((p) => p.child.pid)).toEqual(pids)
      for (const p of processes) {
        expect(p.child.exitCode).toBeNull()
        expect(p.output()).not.toMatch(/TypeError|Unhandled|uncaught/i)
      }
    } finally {
      await Promise.all([owner.end({ timeout: 1 }), runtime.end({ timeout: 1 })])
    }
  }, 60_000)
})
