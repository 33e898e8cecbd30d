/**
 * Onboarding, measured (`npm run bench:onboarding`):
 * 1. Session lookup by token with 100,000 sessions: the security-definer lookup timed inside the database (EXPLAIN
 *    ANALYZE of the function's statement, as it runs), target p99 < 5 ms; then GET /onboarding/sessions/:token
 *    over HTTP against a bare route on the same server, same run.
 *    Then the views those requests appended, folded into step activities, timed (the asynchronous half of a view).
 * 2. The inactivity check firing on time for 10,000 sessions all due at the same moment (the worst case), poll
 *    interval 2 s: the old design (one graphile-worker job per session) and the batch (one recurring job claiming
 *    due sessions with skip locked), in the same run, and how late each nudge and each abandonment lands.
 *
 * Environment: BENCH_SESSIONS (default 100,000), BENCH_DUE_SESSIONS (default 10,000), BENCH_DATABASE_URL.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { sha256 } from '../../lib/crypto.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { Logger as WorkerLogger, run } from 'graphile-worker'
import { foldPendingViews, runInactivityBatch, startSession } from '../../domains/onboarding/service.js'
import { buildWebhooksApp } from '../../services/webhooks/app.js'
import { startWorker } from '../../services/workers/worker.js'
import { testConfig, testLogger } from '../../test/apps.js'
import { loadTest, printComparison, startBenchDatabase } from './harness.js'

const SESSIONS = Math.min(Number(process.env.BENCH_SESSIONS ?? 100_000), 1_000_000)
const DUE = Math.min(Number(process.env.BENCH_DUE_SESSIONS ?? 10_000), 50_000)
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

const db = await startBenchDatabase({ poolMax: 8 })
const settings = { tokenTtlMs: 7 * 86_400_000, nudgeAfterMs: 1_800_000, abandonAfterMs: 7_200_000, publicUrl: 'http://127.0.0.1' }

// 1. 100,000 sessions, a tenth of them with tenants' data shape (fields saved), tokens we keep to look up.
let started = performance.now()
const tokens: string[] = []
for (let from = 0; from < SESSIONS; from += 20_000) {
  const n = Math.min(20_000, SESSIONS - from)
  const batch = Array.from({ length: n }, () => `obt_${randomBytes(32).toString('base64url')}`)
  tokens.push(...batch)
  await db.owner`
    insert into onboarding.sessions (id, token_hash, token_expires_at, steps_version, origin, created_by, fields)
    select gen_random_uuid(), sha256(convert_to(t, 'UTF8')), now() + interval '7 days', 1, 'signup', 'bench',
           '{"business_info": {"businessName": "Bench business", "country": "PT"}}'
      from unnest(${batch}::text[]) t`
}
await db.owner`vacuum analyze onboarding.sessions`
console.log(`\nseeded ${SESSIONS.toLocaleString('en')} onboarding sessions in ${((performance.now() - started) / 1000).toFixed(1)} s`)

type Plan = { 'Execution Time': number; Plan: { 'Node Type': string; 'Index Name'?: string } }
const times: number[] = []
let plan: Plan | undefined
for (let i = 0; i < 2_050; i++) {
  const token = tokens[Math.floor(Math.random() * tokens.length)]!
  // The statement onboarding.session_for_token runs, as its owner runs it (RLS does not apply to it).
  const [row] = await db.owner<{ 'QUERY PLAN': Plan[] }[]>`
    explain (analyze, format json) select s.id, s.tenant_id, s.status from onboarding.sessions s where s.token_hash = ${sha256(token)} and s.token_expires_at > now()`
  if (i >= 50) times.push(row!['QUERY PLAN'][0]!['Execution Time'])
  plan ??= row!['QUERY PLAN'][0]
}
times.sort((a, b) => a - b)
console.log(`token lookup inside the database (2,000 random tokens): p50 ${pct(times, 50).toFixed(3)} ms, p99 ${pct(times, 99).toFixed(3)} ms, max ${times.at(-1)!.toFixed(3)} ms (target p99 < 5 ms); plan: ${plan!.Plan['Node Type']} on ${plan!.Plan['Index Name'] ?? '?'}`)

const config = testConfig({ LOG_LEVEL: 'silent', ONBOARDING_RATE_LIMIT_PER_IP_PER_MINUTE: '100000000' })
const app = await buildWebhooksApp({ config, sql: db.sql, log: testLogger(), migrations: await readMigrationFiles() })
app.get('/bench/bare', { config: { access: 'public' } }, async () => ({ ok: true }))
const base = await app.listen({ host: '127.0.0.1', port: 0 })
let next = 0
const results = [
  await loadTest({ name: 'bare route', url: `${base}/bench/bare`, method: 'GET', connections: 20, durationSeconds: 8 }),
  await loadTest({
    name: 'GET session', url: `${base}/onboarding/sessions/x`, method: 'GET', connections: 20, durationSeconds: 8,
    setupRequest: (req) => ({ ...req, path: `/onboarding/sessions/${tokens[next++ % tokens.length]}` }) as never,
  }),
]
console.log(`\nGET /onboarding/sessions/:token over HTTP (20 connections, 8 s, random tokens of ${SESSIONS.toLocaleString('en')}; each view is one statement: the session read and the view appended, folded later):`)
printComparison(results, ['bare route'])
await app.close()

// 1b. The views those requests appended, folded into step activities (what the inactivity task does every few
// seconds), timed: the asynchronous half of a view's cost.
const pending = (await db.owner<{ n: number }[]>`select count(*)::int as n from onboarding.session_views`)[0]!.n
started = performance.now()
let folded = 0
for (let n = 1; n > 0;) {
  n = await foldPendingViews({ sql: db.sql })
  folded += n
}
const foldSeconds = (performance.now() - started) / 1000
const filed = (await db.owner<{ n: number }[]>`select count(*)::int as n from onboarding.step_activities where kind = 'viewed'`)[0]!.n
console.log(`views folded afterwards: ${pending.toLocaleString('en')} pending views -> ${filed.toLocaleString('en')} step activities in ${foldSeconds.toFixed(1)} s (${Math.round(pending / foldSeconds).toLocaleString('en')} views/s, batches of 2,000, one transaction each)`)

// 2. 10,000 sessions whose nudge is due at the same instant, then their abandonment 5 s later; poll interval 2 s.
// Twice, in the same run: the old design (one graphile-worker job per session, job_key per session, each job one
// session's transaction; emulated here with today's per-session work, so it is if anything kinder than the old code)
// and the batch (one recurring job claiming due sessions with skip locked from the indexed idle_check_at).
const nudgeAfterMs = 5_000
const abandonAfterMs = 10_000
const pollMs = 2_000
const dueSettings = { ...settings, nudgeAfterMs, abandonAfterMs }
const workerConfig = testConfig({ ONBOARDING_NUDGE_AFTER: `${nudgeAfterMs}ms`, ONBOARDING_ABANDON_AFTER: `${abandonAfterMs}ms`, WORKER_POLL_INTERVAL_MS: String(pollMs), LOG_LEVEL: 'silent' })

async function seedDue(): Promise<Date> {
  await db.owner`truncate onboarding.sessions cascade`
  await db.owner`delete from graphile_worker._private_jobs`
  const t0 = performance.now()
  for (let i = 0; i < DUE; i += 500) {
    await Promise.all(Array.from({ length: Math.min(500, DUE - i) }, () => startSession({ sql: db.sql, secrets: null as never, graph: null, settings: dueSettings }, { origin: 'signup', createdBy: 'bench' })))
  }
  // All due at the same instant, a few seconds ahead: the worst case for the queue.
  const dueAt = new Date(Date.now() + 3_000)
  await db.owner`update onboarding.sessions set last_activity_at = ${new Date(dueAt.getTime() - nudgeAfterMs)}, idle_check_at = ${dueAt}`
  console.log(`\n${DUE.toLocaleString('en')} sessions started in ${((performance.now() - t0) / 1000).toFixed(1)} s, all nudges due at the same instant`)
  return dueAt
}

async function waitAbandoned() {
  const deadline = Date.now() + 240_000
  while (Date.now() < deadline) {
    const n = (await db.owner<{ n: number }[]>`select count(*)::int as n from onboarding.sessions where status = 'abandoned'`)[0]!.n
    if (n >= DUE) return
    await sleep(500)
  }
}

async function lateness(design: string) {
  const late = await db.owner<{ kind: string; lateMs: number }[]>`
    select a.kind, extract(epoch from (a.created_at - (s.last_activity_at + case a.kind when 'nudged' then ${nudgeAfterMs}::int else ${abandonAfterMs}::int end * interval '1 millisecond'))) * 1000 as late_ms
      from onboarding.step_activities a join onboarding.sessions s on s.id = a.session_id
     where a.kind in ('nudged', 'abandoned')`
  const out: Record<string, { n: number; p50: number; p99: number }> = {}
  for (const kind of ['nudged', 'abandoned']) {
    const ms = late.filter((r) => r.kind === kind).map((r) => Number(r.lateMs)).sort((a, b) => a - b)
    if (ms.length === 0) {
      console.log(`${design.padEnd(22)} ${kind.padEnd(9)} 0 of ${DUE.toLocaleString('en')} (every one overtaken: its session was abandoned first)`)
      continue
    }
    out[kind] = { n: ms.length, p50: pct(ms, 50), p99: pct(ms, 99) }
    console.log(`${design.padEnd(22)} ${kind.padEnd(9)} ${ms.length.toLocaleString('en')} of ${DUE.toLocaleString('en')}: late p50 ${(pct(ms, 50) / 1000).toFixed(2)} s, p99 ${(pct(ms, 99) / 1000).toFixed(2)} s, max ${(ms.at(-1)! / 1000).toFixed(2)} s, early ${ms.filter((m) => m < 0).length}`)
  }
  return out
}

// 2a. The old design: a job per session, due when the session is, rescheduling itself for the abandonment.
let dueAt = await seedDue()
await db.owner`
  select graphile_worker.add_job('bench_idle_session', json_build_object('sessionId', id), run_at => ${dueAt}, job_key => 'bench-idle:' || id, max_attempts => 10)
    from onboarding.sessions`
const perSession = await run({
  connectionString: db.runtimeUrl, concurrency: workerConfig.WORKER_CONCURRENCY, pollInterval: pollMs, noHandleSignals: true, logger: new WorkerLogger(() => () => {}),
  taskList: {
    bench_idle_session: async (payload) => {
      const { sessionId } = payload as { sessionId: string }
      await runInactivityBatch({ sql: db.sql, settings: dueSettings }, { only: [sessionId], limit: 1 })
      await db.owner`
        select graphile_worker.add_job('bench_idle_session', json_build_object('sessionId', id), run_at => idle_check_at, job_key => 'bench-idle:' || id, max_attempts => 10)
          from onboarding.sessions where id = ${sessionId} and idle_check_at is not null`
    },
    // The product's own jobs these queue run too, as they would in the old design.
    onboarding__deliver_webhook: async () => {},
  },
})
await waitAbandoned()
await perSession.stop()
console.log(`\nhow late nudges and abandonments land (worker concurrency ${workerConfig.WORKER_CONCURRENCY}, poll interval ${pollMs / 1000} s; the target is one poll interval):`)
const old = await lateness('one job per session')

// 2b. The batch: the product's worker as it runs.
dueAt = await seedDue()
const worker = await startWorker({ config: workerConfig, log: testLogger(), connectionString: db.runtimeUrl })
await waitAbandoned()
await worker.stop()
const batch = await lateness('batch (skip locked)')
if (old.abandoned && batch.abandoned) {
  console.log(`abandonment p99 lateness: batch ${(batch.abandoned.p99 / 1000).toFixed(2)} s vs one job per session ${(old.abandoned.p99 / 1000).toFixed(2)} s (${(old.abandoned.p99 / Math.max(1, batch.abandoned.p99)).toFixed(1)}x)`)
}
await db.close()
process.exit(0)
