/**
 * Assessments, measured (`npm run bench:assessments`), one section per file under ops/bench/assessments/:
 * 1. answers.ts: answer submission on the web path at 50 connections against a bare route (target ≥ 0.4×).
 * 2. rescore.ts: re-scoring completed sessions after a rubric change, as the job does it: time and memory.
 * 3. ai-cache.ts: the AI analysis cache over 10,000 simulated participants (hit rate against the seeds' 60–85%), the
 *    real path on a sample against the AI emulator, and the rate limit held exactly (also `npm run bench:assessments-ai`).
 *
 * Environment: BENCH_SECTIONS (comma list of answers, rescore, ai-cache; default all), BENCH_AI_PARTICIPANTS (10,000), BENCH_AI_REAL (300), BENCH_ANSWER_SESSIONS (3,000),
 * BENCH_SECONDS (8), BENCH_CONNECTIONS (50), BENCH_ANSWER_FLUSHES (the answer inbox's flushes in flight; default its own), BENCH_RESCORE_SESSIONS (20,000; the issue's figure is 100,000),
 * BENCH_RESCORE_BATCH (2,000), BENCH_NAIVE_SAMPLE (1,000), BENCH_DATABASE_URL.
 */
import { startBenchDatabase } from './harness.js'
import { benchAnswers } from './assessments/answers.js'
import { setUpAssessments } from './assessments/context.js'
import { benchRescore } from './assessments/rescore.js'
import { runAiCacheBench } from './assessments/ai-cache.js'

const SECTIONS = { answers: benchAnswers, rescore: benchRescore, 'ai-cache': (db: Parameters<typeof benchAnswers>[0]) => runAiCacheBench(db) } as const
const wanted = (process.env.BENCH_SECTIONS ?? Object.keys(SECTIONS).join(',')).split(',').map((s) => s.trim()).filter(Boolean)

const db = await startBenchDatabase({ poolMax: 20 })
try {
  for (const name of wanted) {
    const section = SECTIONS[name as keyof typeof SECTIONS]
    if (!section) throw new Error(`unknown section ${name}: ${Object.keys(SECTIONS).join(', ')}`)
    // Each section on a fresh tenant, so one's data does not skew the next.
    await section(db, await setUpAssessments(db))
  }
} finally {
  await db.close()
}
