/**
 * What one web answer costs in PostgreSQL (`tsx ops/bench/assessments/profile-answers.ts`): the statements a request
 * sends and, with auto_explain reporting each plan to the client as a NOTICE, what each executed (nested statements
 * and triggers included). auto_explain is turned on for the bench's own database only (ALTER DATABASE, superuser), so
 * other users of the same server see nothing; the database is dropped at the end. Needs BENCH_DATABASE_URL as a
 * superuser (or the embedded server, whose user is one).
 *
 * Environment: PROFILE_ANSWERS (answers profiled after warm-up, 3), PROFILE_ANALYZE (1: with actual times),
 * PROFILE_BATCH (1: one answer alone, the path before group commit; n > 1: one answer of each of n sessions in one
 * answerBatch, the answer inbox's flush).
 */
import postgres from 'postgres'
import { sha256 } from '../../../lib/crypto.js'
import { answerBatch, answerWebSession, startWebSession } from '../../../domains/assessments/service.js'
import type { Sql } from '../../../lib/db.js'
import { startBenchDatabase } from '../harness.js'
import { ANSWER_SEQUENCE } from './answers.js'
import { setUpAssessments } from './context.js'

const profiled = Number(process.env.PROFILE_ANSWERS ?? 3)
const db = await startBenchDatabase({ poolMax: 2 })
const name = new URL(db.ownerUrl).pathname.slice(1)
const admin = postgres(db.ownerUrl.replace(/\/[^/]*$/, '/postgres'), { max: 1, onnotice: () => {} })
try {
  await admin.unsafe(`alter database "${name}" set session_preload_libraries = 'auto_explain'`)
  for (const [k, v] of [['log_min_duration', '0'], ['log_nested_statements', 'on'], ['log_analyze', process.env.PROFILE_ANALYZE === '0' ? 'off' : 'on'], ['log_level', 'notice'], ['log_triggers', 'on'], ['log_buffers', 'off']]) {
    await admin.unsafe(`alter database "${name}" set auto_explain.${k} = '${v}'`)
  }
  const ctx = await setUpAssessments(db)
  const notices: string[] = []
  const statements: string[] = []
  let capture = false
  const traced = postgres(db.runtimeUrl, {
    max: 1,
    transform: { column: { from: postgres.toCamel, to: postgres.fromCamel }, undefined: null },
    onnotice: (n) => { if (capture) notices.push(String(n.message)) },
    debug: (_conn, query) => { if (capture) statements.push(query.replace(/\s+/g, ' ').trim()) },
  }) as unknown as Sql

  const batchSize = Number(process.env.PROFILE_BATCH ?? 1)
  const tokens = await Promise.all(Array.from({ length: batchSize }, async () => (await startWebSession(traced, ctx.healthPublicKey, { demographics: { age: 40 } })).token))
  const answer = async (questionId: string, value: unknown) => {
    const body = { questionId, value: value as never, responseMs: 1500 }
    if (batchSize === 1) return void await answerWebSession(traced, tokens[0]!, body)
    const out = await answerBatch(traced, tokens.map((t) => ({ tokenHash: sha256(t), body })))
    if (out.some((o) => o instanceof Error)) throw new Error(`batch refused an answer: ${out.find((o) => o instanceof Error)}`)
  }
  // Warm-up: the compiled version cached, partitions known, plans prepared.
  for (const [questionId, value] of ANSWER_SEQUENCE.slice(0, 2)) await answer(questionId, value)
  for (const [questionId, value] of ANSWER_SEQUENCE.slice(2, 2 + profiled)) {
    notices.length = 0
    statements.length = 0
    capture = true
    const t0 = performance.now()
    await answer(questionId, value)
    const ms = performance.now() - t0
    capture = false
    console.log(`\n=== answer ${questionId}: ${ms.toFixed(1)} ms wall, ${statements.length} statements sent (begin/commit included)`)
    for (const s of statements) console.log(`  > ${s.slice(0, 220)}`)
    for (const n of notices) console.log(n.split('\n').map((l) => `    ${l}`).join('\n'))
  }
  await (traced as unknown as postgres.Sql).end()
} finally {
  await admin.end()
  await db.close()
}
