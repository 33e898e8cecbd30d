import type { Task } from 'graphile-worker'
import { ApplyRetentionPayload } from '../../../domains/privacy/export-schemas.js'
import { applyRetention } from '../../../domains/privacy/retention.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, nightly: each active tenant's retention periods applied under that tenant, in bounded batches
 * within PRIVACY_RETENTION_BUDGET_SECONDS, each tenant's run recorded in privacy.retention_runs
 * (domains/privacy/retention.ts); first, the analytics day partitions older than every tenant's period are dropped.
 * Retried as a whole: deleting what is past its period twice deletes nothing more.
 */
export const applyRetentionTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  ApplyRetentionPayload.parse(payload ?? {})
  const { partitions, tenants: results } = await applyRetention(deps.sql, deps.config)
  if (partitions.dropped.length > 0) helpers.logger.info(`retention: dropped ${partitions.dropped.length} analytics partitions older than ${partitions.keepDays} days (${partitions.dropped[0]} to ${partitions.dropped.at(-1)})`)
  const removed = results.reduce((n, r) => n + Object.entries(r.removed).filter(([k]) => !k.endsWith('.unlinked')).reduce((m, [, v]) => m + v, 0), 0)
  const incomplete = results.filter((r) => r.status === 'incomplete').length
  helpers.logger.info(`retention: ${results.length} tenants, ${removed} rows removed${incomplete ? `, ${incomplete} incomplete (budget spent)` : ''}`)
}
