import type { Task } from 'graphile-worker'
import { failRescoring, rescoreRun } from '../../../domains/assessments/rescoring.js'
import { RescorePayload } from '../../../domains/assessments/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Re-scores a run's completed sessions in batches (domains/assessments/rescoring.ts); after its share of batches it
 * enqueues its successor, so one job never runs for long. A version that no longer compiles is a permanent failure,
 * recorded on the run; anything else throws and is retried (a retried batch repeats nothing that committed).
 */
export const rescoreTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const p = RescorePayload.parse(payload)
  try {
    const { batches, done } = await rescoreRun(deps.sql, p, { batchSize: deps.config.ASSESSMENTS_RESCORE_BATCH, batchesPerJob: deps.config.ASSESSMENTS_RESCORE_BATCHES_PER_JOB, patternDetail: deps.config.AI_PATTERN_DETAIL })
    helpers.logger.info(`assessments re-scoring run ${p.runId}: ${batches} batches${done ? ', done' : ', continues'}`)
  } catch (err) {
    if (err instanceof Error && /does not compile|not found/.test(err.message)) {
      await failRescoring(deps.sql, p, err.message)
      helpers.logger.error(`assessments re-scoring run ${p.runId} failed for good: ${err.message}`)
      return
    }
    throw err
  }
}
