import type { Task } from 'graphile-worker'
import { maintainResults, scheduleResultsFollowUp } from '../../../domains/experiments/service.js'
import { MaintainResultsPayload } from '../../../domains/experiments/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Every minute (cross-tenant), a few seconds after a run that drained something, and at once after a goal change (one
 * tenant): the persons that assignments, exposures
 * and goal events queued recomputed, experiment results' deltas folded into their totals, and experiments whose goals
 * changed rebuilt (domains/experiments/service.ts maintainResults). Results are exact without it (a read adds the
 * deltas not folded yet and recomputes the persons still queued); it keeps those few. Retried as a whole: draining,
 * folding and rebuilding are safe to repeat.
 */
export const maintainResultsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId } = MaintainResultsPayload.parse(payload ?? {})
  const r = await maintainResults(deps.sql, tenantId ? { tenantIds: [tenantId] } : {})
  // Persons were queued since the last run: assignments are coming in, so the next run comes in seconds (reads
  // recompute the persons still queued, and fewer of them is faster).
  if (r.drained > 0) await scheduleResultsFollowUp(deps.sql)
  if (r.rebuilt > 0 || r.incomplete) {
    helpers.logger.info(`experiments: recomputed ${r.drained} queued persons, folded ${r.folded} result deltas of ${r.tenants} tenants, rebuilt ${r.rebuilt} experiments${r.incomplete ? ' (budget spent, more left)' : ''}`)
  }
}
