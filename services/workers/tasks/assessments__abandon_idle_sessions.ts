import type { Task } from 'graphile-worker'
import { abandonIdleSessions } from '../../../domains/assessments/abandonment.js'
import { AbandonIdleSessionsPayload } from '../../../domains/assessments/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, every 5 minutes: assessment sessions idle for ASSESSMENTS_ABANDON_AFTER marked abandoned, in batches
 * of ASSESSMENTS_ABANDON_BATCH within 30 s (the next run carries on), each with its `assessment.abandoned` event once.
 * Retried as a whole: a session already abandoned is not claimed again.
 */
export const abandonIdleSessionsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  AbandonIdleSessionsPayload.parse(payload ?? {})
  const done = await abandonIdleSessions(deps.sql, { idleMs: deps.config.ASSESSMENTS_ABANDON_AFTER, batch: deps.config.ASSESSMENTS_ABANDON_BATCH })
  if (done.abandoned > 0 || done.incomplete) {
    helpers.logger.info(`assessments: ${done.abandoned} idle sessions abandoned in ${done.batches} batches${done.incomplete ? ' (budget spent, more left)' : ''}`)
  }
}
