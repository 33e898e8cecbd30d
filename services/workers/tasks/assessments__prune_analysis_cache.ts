import type { Task } from 'graphile-worker'
import { pruneAnalysisCache } from '../../../domains/assessments/ai/service.js'
import { PruneAnalysisCachePayload } from '../../../domains/assessments/ai/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, hourly: AI analysis cache entries past AI_CACHE_TTL, and claims of jobs that died, deleted 1,000 per
 * statement within a minute (the next run carries on). Retried as a whole: deleting twice deletes nothing.
 */
export const pruneAnalysisCacheTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  PruneAnalysisCachePayload.parse(payload ?? {})
  const result = await pruneAnalysisCache(deps.sql, { batch: 1000, budgetMs: 60_000 })
  if (result.deleted > 0 || result.incomplete) {
    helpers.logger.info(`assessments: pruned ${result.deleted} expired AI analysis cache entries${result.incomplete ? ' (budget spent, more left)' : ''}`)
  }
}
