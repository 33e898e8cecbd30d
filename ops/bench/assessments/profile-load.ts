/**
 * Where an answer's time goes under load (`tsx ops/bench/assessments/profile-load.ts`, or with `node --cpu-prof
 * --import tsx` for the Node side): the group-committed answer route at 50 connections for a few seconds, with each
 * flush timed (its transaction, from begin to commit) and its statements counted, printed as per-answer figures.
 *
 * Environment: PROFILE_CPU (a file: the answer phase's CPU profile, for DevTools), PROFILE_FLUSHES (flushes in flight),
 * PROFILE_SECONDS (6), PROFILE_SESSIONS (2,000), PROFILE_STATEMENTS (1: count statements through postgres.js's `debug`,
 * which makes every query capture a stack trace: leave it off when the CPU figures matter), BENCH_CONNECTIONS (50),
 * BENCH_DATABASE_URL. For the webhooks process's CPU alone (the load generator in another thread), answer-cpu.ts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import postgres from 'postgres'
import type { Sql } from '../../../lib/db.js'
import { loadTest, startBenchDatabase } from '../harness.js'
import { ANSWER_SEQUENCE, buildAnswerBenchApp, startSessions } from './answers.js'
import { setUpAssessments } from './context.js'

/** CPU seconds (user + system) of this process's descendants: the embedded PostgreSQL and its backends (Linux). */
function descendantsCpuSeconds(): number {
  const stats = new Map<number, { ppid: number; cpu: number }>()
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').slice(readFileSync(`/proc/${d}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ')
      stats.set(Number(d), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / 100 })
    } catch { /* gone */ }
  }
  const mine = new Set([process.pid])
  let total = 0
  for (let grew = true; grew;) {
    grew = false
    for (const [pid, s] of stats) if (!mine.has(pid) && mine.has(s.ppid)) { mine.add(pid); total += s.cpu; grew = true }
  }
  return total
}

const seconds = Number(process.env.PROFILE_SECONDS ?? 6)
const sessions = Number(process.env.PROFILE_SESSIONS ?? 2000)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const db = await startBenchDatabase({ poolMax: 20 })
let statements = 0
const sql = postgres(db.runtimeUrl, {
  max: 20,
  transform: { column: { from: postgres.toCamel, to: postgres.fromCamel }, undefined: null },
  ...(process.env.PROFILE_STATEMENTS === '1' ? { debug: () => { statements++ } } : {}),
}) as unknown as Sql
// Every transaction timed from begin to its end: on this path, one per flush.
const flushes: number[] = []
const begin = sql.begin.bind(sql)
;(sql as unknown as { begin: unknown }).begin = async (fn: never) => {
  const t0 = performance.now()
  try { return await begin(fn) } finally { flushes.push(performance.now() - t0) }
}
try {
  const ctx = await setUpAssessments(db)
  const app = await buildAnswerBenchApp(sql, process.env.PROFILE_FLUSHES)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const tokens = await startSessions(base, ctx.healthPublicKey, sessions)
  let n = 0
  const capacity = tokens.length * ANSWER_SEQUENCE.length
  const setupRequest = (req: Record<string, unknown>) => {
    const i = n++ % capacity
    const [questionId, value] = ANSWER_SEQUENCE[Math.floor(i / tokens.length)]!
    return { ...req, path: `/assessments/sessions/${tokens[i % tokens.length]!}/answers`, body: JSON.stringify({ questionId, value, responseMs: 1500 }) } as never
  }
  {
    const c0 = process.cpuUsage()
    const bare = await loadTest({ name: 'bare', url: `${base}/bench/bare`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ questionId: 'sleep_hours', value: 'h7_8', responseMs: 1500 }), connections, durationSeconds: seconds })
    const c = process.cpuUsage(c0)
    console.log(`bare ${bare.requestsPerSecond.toFixed(0)}/s, process CPU ${((c.user + c.system) / 1000 / bare.total).toFixed(2)} ms per request (${(c.system / 1000 / bare.total).toFixed(2)} system)`)
  }
  flushes.length = 0
  statements = 0
  const inspector = process.env.PROFILE_CPU ? new Session() : null
  if (inspector) {
    inspector.connect()
    await inspector.post('Profiler.enable')
    await inspector.post('Profiler.start')
  }
  const cpu0 = process.cpuUsage()
  const pg0 = descendantsCpuSeconds()
  const r = await loadTest({ name: 'answer', url: `${base}/assessments/sessions/x/answers`, method: 'POST', headers: { 'content-type': 'application/json' }, connections, durationSeconds: seconds, setupRequest: setupRequest as never })
  const cpu = process.cpuUsage(cpu0)
  const pgCpu = descendantsCpuSeconds() - pg0
  if (inspector) {
    const { profile } = await inspector.post('Profiler.stop')
    writeFileSync(process.env.PROFILE_CPU!, JSON.stringify(profile))
    inspector.disconnect()
  }
  const sorted = [...flushes].sort((a, b) => a - b)
  const sum = flushes.reduce((a, b) => a + b, 0)
  console.log(`answers ${r.total} (${r.requestsPerSecond.toFixed(0)}/s, p99 ${r.p99Ms} ms, non-2xx ${r.non2xx}); flushes ${flushes.length} (mean batch ${(r.total / flushes.length).toFixed(1)})`)
  console.log(`flush ms: mean ${(sum / flushes.length).toFixed(1)} p50 ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} p99 ${sorted[Math.floor(sorted.length * 0.99)]?.toFixed(1)}; flush time busy ${(100 * sum / (seconds * 1000)).toFixed(0)}% of the run`)
  console.log(`statements ${process.env.PROFILE_STATEMENTS === '1' ? `${statements} (${(statements / flushes.length).toFixed(1)} per flush)` : 'not counted (PROFILE_STATEMENTS=1)'}; process CPU ${((cpu.user + cpu.system) / 1000 / r.total).toFixed(2)} ms per answer (${(cpu.system / 1000 / r.total).toFixed(2)} system; autocannon included); PostgreSQL CPU ${(pgCpu * 1000 / r.total).toFixed(2)} ms per answer`)
  await app.close()
} finally {
  await (sql as unknown as postgres.Sql).end()
  await db.close()
}
