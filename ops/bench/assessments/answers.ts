import { readMigrationFiles } from '../../../lib/migrate.js'
import { AnswerInbox } from '../../../domains/assessments/answer-inbox.js'
import { AnswerBody } from '../../../domains/assessments/schemas.js'
import { answerWebSession } from '../../../domains/assessments/service.js'
import { buildWebhooksApp } from '../../../services/webhooks/app.js'
import { testConfig, testLogger } from '../../../test/apps.js'
import type { Sql } from '../../../lib/db.js'
import { loadTest, printComparison, type BenchDatabase } from '../harness.js'
import type { BenchContext } from './context.js'

/** The health check's questions in order, with one answer each (a non-smoker: the conditional question stays hidden). */
export const ANSWER_SEQUENCE: [string, unknown][] = [
  ['sleep_hours', 'h7_8'], ['sleep_quality', 4], ['exercise_days', 'd3_4'], ['activities', ['walking', 'cycling']], ['smoker', false], ['alcohol', 'monthly'],
  ['fruit_veg', 'p4_5'], ['water', 'w4_6'], ['stress', 4], ['mood', 'good'], ['weight_kg', 72.5], ['height_cm', 178], ['goals', 'Sleep better'],
]

/**
 * Answer submission on the web path: POST /assessments/sessions/:token/answers at 50 connections, each request the
 * next answer of one of many sessions in turn (the last one completes the session: the result, the analysis job and
 * the event in the same transaction), against a bare POST route on the same server in the same run. Target ≥ 0.4×.
 * The path before group commit (one transaction per answer) is measured too, on its own sessions, for the gain.
 */
/** The webhooks service as the answer benches run it (limits out of the way), with a bare POST route beside it. */
export async function buildAnswerBenchApp(sql: Sql, flushesInFlight?: string) {
  const config = testConfig({ LOG_LEVEL: 'silent', ASSESSMENTS_RATE_LIMIT_PER_IP_PER_MINUTE: '100000000', ASSESSMENTS_STARTS_PER_IP_PER_HOUR: '100000000' })
  // `3` (flushes in flight) or `3/8` (and the answers a flush beside another needs: minConcurrentBatch).
  const [inFlight, minBatch] = (flushesInFlight ?? '').split('/')
  const flushes = { ...(inFlight ? { maxConcurrentFlushes: Number(inFlight) } : {}), ...(minBatch ? { minConcurrentBatch: Number(minBatch) } : {}) }
  const app = await buildWebhooksApp({ config, sql, log: testLogger(), migrations: await readMigrationFiles(), answers: new AnswerInbox(sql, flushes) })
  app.post('/bench/bare', { config: { access: 'public' } }, async (req) => ({ ok: true, got: typeof req.body }))
  return app
}

/** `count` web sessions of an assessment started over HTTP, 100 at a time: their resume tokens. */
export async function startSessions(base: string, publicKey: string, count: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, () =>
      fetch(`${base}/assessments/${publicKey}/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ demographics: { age: 40 } }) }).then((r) => r.json() as Promise<{ token: string }>)))
    tokens.push(...batch.map((b) => b.token))
  }
  return tokens
}

export async function benchAnswers(db: BenchDatabase, ctx: BenchContext): Promise<void> {
  const sessions = Number(process.env.BENCH_ANSWER_SESSIONS ?? 3000)
  const seconds = Number(process.env.BENCH_SECONDS ?? 8)
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
  // BENCH_ANSWER_FLUSHES: the answer inbox's flushes in flight, to compare (default: the inbox's own).
  const app = await buildAnswerBenchApp(db.sql, process.env.BENCH_ANSWER_FLUSHES)
  // The path before group commit, for comparison in the same run: one transaction per answer (answerWebSession).
  app.post('/bench/direct/:token/answers', { config: { access: 'public' } }, async (req) =>
    answerWebSession(db.sql, (req.params as { token: string }).token, AnswerBody.parse(req.body)))
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  const tokens = await startSessions(base, ctx.healthPublicKey, sessions)
  // Request n answers question floor(n / sessions) of session n % sessions: a session's next answer comes only after
  // every other session's, long after its previous one was answered. Each path answers its own half of the sessions.
  const half = Math.floor(tokens.length / 2)
  const answering = (pool: string[], path: (token: string) => string) => {
    let n = 0
    const capacity = pool.length * ANSWER_SEQUENCE.length
    return (req: Parameters<NonNullable<Parameters<typeof loadTest>[0]['setupRequest']>>[0]) => {
      const i = n++ % capacity
      const [questionId, value] = ANSWER_SEQUENCE[Math.floor(i / pool.length)]!
      return { ...req, path: path(pool[i % pool.length]!), body: JSON.stringify({ questionId, value, responseMs: 1500 }) } as never
    }
  }
  const body = JSON.stringify({ questionId: 'sleep_hours', value: 'h7_8', responseMs: 1500 })
  const json = { 'content-type': 'application/json' }
  const results = [
    await loadTest({ name: 'bare route', url: `${base}/bench/bare`, method: 'POST', headers: json, body, connections, durationSeconds: seconds }),
    await loadTest({
      name: 'answer (one transaction each)', url: `${base}/bench/direct/x/answers`, method: 'POST', headers: json, connections, durationSeconds: seconds,
      setupRequest: answering(tokens.slice(half), (t) => `/bench/direct/${t}/answers`),
    }),
    await loadTest({
      name: 'answer', url: `${base}/assessments/sessions/x/answers`, method: 'POST', headers: json, connections, durationSeconds: seconds,
      setupRequest: answering(tokens.slice(0, half), (t) => `/assessments/sessions/${t}/answers`),
    }),
  ]
  const completed = (await db.owner<{ n: number }[]>`select count(*)::int as n from assessments.results where tenant_id = ${ctx.tenantId}`)[0]!.n
  console.log(`\nAnswer submission, web path (${connections} connections, ${seconds} s each, ${tokens.length.toLocaleString('en')} sessions answered in turn, half by each path; ${completed.toLocaleString('en')} completed during the run, each with its result, analysis job and event; answer = the public route, group-committed):`)
  printComparison(results, ['bare route', 'answer (one transaction each)'])
  const ratio = results[2]!.requestsPerSecond / results[0]!.requestsPerSecond
  console.log(`answer / bare route = ${ratio.toFixed(2)}× (target ≥ 0.40×) ${ratio >= 0.4 ? 'met' : 'NOT met'}`)
  await app.close()
}
