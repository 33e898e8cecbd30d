import type { Task } from 'graphile-worker'
import { PruneClickDetailsPayload } from '../../../domains/assessments/partners/schemas.js'
import { pruneClickDetails } from '../../../domains/assessments/partners/visitors.js'
import { DEFAULT_LINK_CLICK_DETAILS_DAYS } from '../../../domains/privacy/retention.js'
import { deleteInBatches } from './in-batches.js'
import type { TaskDeps } from './task-deps.js'

/** Clicks pruned per statement (each its own short transaction): a large backlog never holds many row locks at once. */
const CHUNK = 5000

/**
 * Cross-tenant, hourly: partner-link clicks that name no lead, older than their tenant's `linkClickDetailsDays`
 * (privacy retention settings, default 30), lose their network, address hash, user agent and referrer; the rows stay
 * so the partners' click counts do not change. Rows a transaction holds (a visitor joining a lead) are skipped and
 * taken next hour. Retried as a whole: pruning twice prunes nothing more.
 */
export const pruneClickDetailsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  PruneClickDetailsPayload.parse(payload ?? {})
  const total = await deleteInBatches(CHUNK, (limit) => pruneClickDetails(deps.sql, limit, DEFAULT_LINK_CLICK_DETAILS_DAYS))
  if (total > 0) helpers.logger.info(`assessments: pruned the details of ${total} partner-link clicks that name no lead`)
}
