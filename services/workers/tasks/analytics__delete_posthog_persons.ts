import type { Task } from 'graphile-worker'
import { deletePosthogPersonsDue, deletionOptionsFrom, type DeletionOptions } from '../../../domains/analytics/posthog/deletions.js'
import { DeletePosthogPersonsPayload } from '../../../domains/analytics/posthog/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant: asks PostHog to delete erased persons (and their events) queued in analytics.posthog_person_deletions,
 * until nothing is due or POSTHOG_DRAIN_BUDGET_MS is spent. Enqueued by each erasure and run every 10 minutes for the
 * retries. PostHog failing is recorded on the rows (retried, or parked with its answer); a database error fails the job.
 */
export const deletePosthogPersonsTask = (deps: TaskDeps, overrides: Partial<DeletionOptions> = {}): Task => async (payload, helpers) => {
  DeletePosthogPersonsPayload.parse(payload ?? {})
  const r = await deletePosthogPersonsDue(deps.sql, deletionOptionsFrom(deps.config, overrides), deps.config.POSTHOG_DRAIN_BUDGET_MS)
  if (r.failed > 0) helpers.logger.warn(`posthog person deletions: ${r.failed} failed (${r.parked} parked), ${r.requested} requested, ${r.manual} manual`)
  else if (r.requested + r.manual > 0) helpers.logger.info(`posthog person deletions: ${r.requested} requested, ${r.manual} manual`)
}
