import type { Task } from 'graphile-worker'
import { rollUp } from '../../../domains/analytics/rollups.js'
import { RollUpPayload } from '../../../domains/analytics/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, every minute: rebuilds every closed dirty 5-minute bucket of every tenant from raw (counts, the
 * days' unique leads and visitors, the days' KPIs), each tenant under its own tenant, at most
 * ANALYTICS_ROLLUP_BATCH_BUCKETS per transaction and within ANALYTICS_ROLLUP_BUDGET_SECONDS (the next run carries
 * on). Retried as a whole: rebuilding a bucket twice gives the same rows.
 */
export const rollUpTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  RollUpPayload.parse(payload ?? {})
  const result = await rollUp(deps.sql, {
    batchBuckets: deps.config.ANALYTICS_ROLLUP_BATCH_BUCKETS,
    budgetMs: deps.config.ANALYTICS_ROLLUP_BUDGET_SECONDS * 1000,
  })
  if (result.buckets > 0 || result.incomplete) {
    helpers.logger.info(`analytics: rolled up ${result.buckets} buckets of ${result.tenants} tenants${result.incomplete ? ' (budget spent, more left)' : ''}`)
  }
}
