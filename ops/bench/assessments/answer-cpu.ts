/**
 * The webhooks process's own CPU per answer (`tsx ops/bench/assessments/answer-cpu.ts`): the group-committed answer
 * route and the bare route under 50 connections, with the load generator (autocannon) in a worker thread so that the
 * main thread's CPU time (Linux: /proc/self/task/<pid>/stat, user + system) is the server's alone: Fastify, the
 * rules, postgres.js and GC, not the client. On a shared, loaded machine requests per second move with the load but
 * CPU time per request much less, so this is the figure to compare code by.
 *
 * Environment: PROFILE_CPU (a file: the answer phase's CPU profile of the main thread only, for DevTools or a script),
 * PROFILE_SECONDS (6), PROFILE_SESSIONS (2,000), PROFILE_ROUNDS (1: bare and answer alternate this many times),
 * PROFILE_FLUSHES (the answer inbox's flushes in flight; a comma-separated list compares them, alternating within each
 * round, each on its own server in this process), BENCH_CONNECTIONS (50).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { groupCommitBatchSize } from '../../../lib/metrics.js'
import { startBenchDatabase } from '../harness.js'
import { ANSWER_SEQUENCE, buildAnswerBenchApp, startSessions } from './answers.js'
import { setUpAssessments } from './context.js'

/** This process's main thread CPU in ms (user + system), from the kernel's per-thread accounting (10 ms ticks). */
function mainThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) * 10
}

// The load generator, in its own thread: request n answers question floor(n / sessions) of session n % sessions.
const CLIENT = `
const { workerData, parentPort } = require('node:worker_threads')
const autocannon = require(workerData.autocannon)
const { url, seconds, connections, tokens, sequence, bareBody } = workerData
let n = 0
const capacity = tokens.length * sequence.length
const requests = tokens.length === 0 ? undefined : [{ method: 'POST', setupRequest: (req) => {
  const i = n++ % capacity
  const [questionId, value] = sequence[Math.floor(i / tokens.length)]
  return { ...req, path: '/assessments/sessions/' + tokens[i % tokens.length] + '/answers', body: JSON.stringify({ questionId, value, responseMs: 1500 }) }
} }]
const opts = { url, method: 'POST', headers: { 'content-type': 'application/json' }, body: bareBody, connections, duration: seconds, requests }
// Off the main thread autocannon hands back its raw histograms (it thinks it is one of its own workers): aggregate them.
autocannon(opts, (err, raw) => {
  if (err) throw err
  const r = autocannon.aggregateResult([raw], opts)
  parentPort.postMessage({ total: r.requests.total, rps: r.requests.total / raw.duration, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors + r.timeouts })
})
`
type ClientResult = { total: number; rps: number; p99: number; non2xx: number; errors: number }
const autocannonPath = createRequire(import.meta.url).resolve('autocannon')
const runClient = (data: { url: string; seconds: number; connections: number; tokens: string[]; sequence: unknown; bareBody: string }) =>
  new Promise<ClientResult>((resolve, reject) => {
    const w = new Worker(CLIENT, { eval: true, workerData: { ...data, autocannon: autocannonPath } })
    w.once('message', (m: ClientResult) => { resolve(m); void w.terminate() })
    w.once('error', reject)
  })

const seconds = Number(process.env.PROFILE_SECONDS ?? 6)
const sessions = Number(process.env.PROFILE_SESSIONS ?? 2000)
const rounds = Number(process.env.PROFILE_ROUNDS ?? 1)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const variants = (process.env.PROFILE_FLUSHES ?? '').split(',').filter(Boolean)
/** Flushes and answers so far per the group commit's histogram (every inbox of this process counts there). */
const flushStats = async () => {
  const v = (await groupCommitBatchSize.get()).values.filter((x) => x.labels.inbox === 'answer')
  return { count: v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0, sum: v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0 }
}
const db = await startBenchDatabase({ poolMax: 20 })
try {
  const ctx = await setUpAssessments(db)
  const servers = []
  for (const flushes of variants.length ? variants : [undefined]) {
    const app = await buildAnswerBenchApp(db.sql, flushes)
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    servers.push({ name: flushes ? `${flushes} in flight` : 'answer', app, base, tokens: await startSessions(base, ctx.healthPublicKey, sessions * rounds) })
  }
  const bareBody = JSON.stringify({ questionId: 'sleep_hours', value: 'h7_8', responseMs: 1500 })
  const common = { seconds, connections, sequence: ANSWER_SEQUENCE, bareBody }
  for (let round = 0; round < rounds; round++) {
    const b0 = mainThreadCpuMs()
    const bare = await runClient({ ...common, url: `${servers[0]!.base}/bench/bare`, tokens: [] })
    const bareCpu = mainThreadCpuMs() - b0
    const us = (ms: number, n: number) => `${((ms * 1000) / n).toFixed(0)} µs`
    console.log(`round ${round + 1}: bare ${bare.rps.toFixed(0)}/s (${us(bareCpu, bare.total)} main-thread CPU each)`)
    for (const { name, base, tokens } of round % 2 === 0 ? servers : [...servers].reverse()) {
    const inspector = process.env.PROFILE_CPU && round === 0 && name === servers[0]!.name ? new Session() : null
    if (inspector) {
      inspector.connect()
      await inspector.post('Profiler.enable')
      await inspector.post('Profiler.start')
    }
    const f0 = await flushStats()
    const a0 = mainThreadCpuMs()
    const answers = await runClient({ ...common, url: `${base}/assessments/sessions/x/answers`, tokens: tokens.slice(round * sessions, (round + 1) * sessions) })
    const answerCpu = mainThreadCpuMs() - a0
    const f1 = await flushStats()
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop')
      writeFileSync(process.env.PROFILE_CPU!, JSON.stringify(profile))
      inspector.disconnect()
    }
    console.log(`  ${name}: ${answers.rps.toFixed(0)}/s, p99 ${answers.p99} ms, non-2xx ${answers.non2xx + answers.errors}, ${us(answerCpu, answers.total)} main-thread CPU each, mean batch ${((f1.sum - f0.sum) / Math.max(1, f1.count - f0.count)).toFixed(1)}; ${(answers.rps / bare.rps).toFixed(2)}× bare`)
    }
  }
  for (const s of servers) await s.app.close()
} finally {
  await db.close()
}
