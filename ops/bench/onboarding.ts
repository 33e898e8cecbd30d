/**
 * Onboarding, measured (`npm run bench:onboarding`):
 * 1. Session lookup by token with 100,000 sessions: the security-definer lookup timed inside the database (EXPLAIN
 *    ANALYZE of the function's statement, as it runs), target p99 < 5 ms; then GET /onboarding/sessions/:token
 *    over HTTP against a bare route on the same server, same run.
 * 2. The inactivity job firing on time for 10,000 sessions: every session due at the same moment (the worst case),
 *    a real worker (graphile-worker, default concurrency and poll interval), and how late each nudge and each
 *    abandonment lands after it was due.
 *
 * Environment: BENCH_SESSIONS (default 100,000), BENCH_DUE_SESSIONS (default 10,000), BENCH_DATABASE_URL.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { sha256 } from '../../lib/crypto.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { startSession } from '../../domains/onboarding/service.js'
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
console.log(`\nGET /onboarding/sessions/:token over HTTP (20 connections, 8 s, random tokens of ${SESSIONS.toLocaleString('en')}; each view is also an activity: it records a row and moves the session's job):`)
printComparison(results, ['bare route'])
await app.close()

// 2. 10,000 sessions whose nudge is due now, then their abandonment 5 s later; one worker with the product defaults.
const nudgeAfterMs = 5_000
const abandonAfterMs = 10_000
const dueSettings = { ...settings, nudgeAfterMs, abandonAfterMs }
await db.owner`truncate onboarding.sessions cascade`
started = performance.now()
const ids: string[] = []
for (let i = 0; i < DUE; i += 500) {
  const batch = await Promise.all(Array.from({ length: Math.min(500, DUE - i) }, () => startSession({ sql: db.sql, secrets: null as never, graph: null, settings: dueSettings }, { origin: 'signup', createdBy: 'bench' })))
  ids.push(...batch.map((b) => b.session.sessionId))
}
// Make them all due at the same instant, a few seconds ahead: the worst case for the queue.
const dueAt = new Date(Date.now() + 3_000)
await db.owner`update onboarding.sessions set last_activity_at = ${new Date(dueAt.getTime() - nudgeAfterMs)}`
await db.owner`update graphile_worker._private_jobs set run_at = ${dueAt} where key like 'onboarding-idle:%'`
console.log(`\n${DUE.toLocaleString('en')} sessions started in ${((performance.now() - started) / 1000).toFixed(1)} s, all nudges due at the same instant`)
const pollMs = 2_000
const worker = await startWorker({
  config: testConfig({ ONBOARDING_NUDGE_AFTER: `${nudgeAfterMs}ms`, ONBOARDING_ABANDON_AFTER: `${abandonAfterMs}ms`, WORKER_POLL_INTERVAL_MS: String(pollMs), LOG_LEVEL: 'silent' }),
  log: testLogger(), connectionString: db.runtimeUrl,
})
const deadline = Date.now() + 180_000
while (Date.now() < deadline) {
  const n = (await db.owner<{ n: number }[]>`select count(*)::int as n from onboarding.sessions where status = 'abandoned'`)[0]!.n
  if (n >= DUE) break
  await sleep(500)
}
await worker.stop()
const late = await db.owner<{ kind: string; lateMs: number }[]>`
  select a.kind, extract(epoch from (a.created_at - (s.last_activity_at + case a.kind when 'nudged' then ${nudgeAfterMs}::int else ${abandonAfterMs}::int end * interval '1 millisecond'))) * 1000 as late_ms
    from onboarding.step_activities a join onboarding.sessions s on s.id = a.session_id
   where a.kind in ('nudged', 'abandoned')`
for (const kind of ['nudged', 'abandoned']) {
  const ms = late.filter((r) => r.kind === kind).map((r) => Number(r.lateMs)).sort((a, b) => a - b)
  if (ms.length === 0) continue
  console.log(`${kind.padEnd(9)} ${ms.length.toLocaleString('en')} of ${DUE.toLocaleString('en')}: late p50 ${(pct(ms, 50) / 1000).toFixed(2)} s, p99 ${(pct(ms, 99) / 1000).toFixed(2)} s, max ${(ms.at(-1)! / 1000).toFixed(2)} s, early ${ms.filter((m) => m < 0).length} (worker poll interval ${pollMs / 1000} s; LISTEN/NOTIFY does not wake a worker for a future run_at)`)
}
await db.close()
process.exit(0)
