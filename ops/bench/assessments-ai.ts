import { startBenchDatabase } from './harness.js'
import { runAiCacheBench } from './assessments/ai-cache.js'

/** `npm run bench:assessments-ai`: the AI analysis cache and rate limit alone (ops/bench/assessments/ai-cache.ts). */
const db = await startBenchDatabase()
try {
  await runAiCacheBench(db)
} finally {
  await db.close()
}
