import type { Task } from 'graphile-worker'
import { ApplyRetentionPayload } from '../../../domains/privacy/export-schemas.js'
import { applyRetentionForAllTenants } from '../../../domains/privacy/retention.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, nightly: each active tenant's retention periods applied under that tenant, in bounded batches
 * within PRIVACY_RETENTION_BUDGET_SECONDS, each tenant's run recorded in privacy.retention_runs
 * (domains/privacy/retention.ts). Retried as a whole: deleting what is past its period twice deletes nothing more.
 */
export const applyRetentionTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  ApplyRetentionPayload.parse(payload ?? {})
  const results = await applyRetentionForAllTenants(deps.sql, deps.config)
  const removed = results.reduce((n, r) => n + Object.entries(r.removed).filter(([k]) => !k.endsWith('.unlinked')).reduce((m, [, v]) => m + v, 0), 0)
  const incomplete = results.filter((r) => r.status === 'incomplete').length
  helpers.logger.info(`retention: ${results.length} tenants, ${removed} rows removed${incomplete ? `, ${incomplete} incomplete (budget spent)` : ''}`)
}
