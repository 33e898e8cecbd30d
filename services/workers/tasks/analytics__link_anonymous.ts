import type { Task } from 'graphile-worker'
import { LinkAnonymousPayload } from '../../../domains/analytics/schemas.js'
import { backfillAnonymousEvents } from '../../../domains/analytics/platform-events.js'
import type { TaskDeps } from './task-deps.js'

/**
 * A visitor was just linked to a lead (a form submission, a click-to-WhatsApp, an identify call): their earlier events
 * get the lead, in bounded batches of their own transactions, so the submission that linked them did not wait for it.
 */
export const linkAnonymousTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId, anonymousIds } = LinkAnonymousPayload.parse(payload)
  const linked = await backfillAnonymousEvents(deps.sql, tenantId, anonymousIds)
  if (linked > 0) helpers.logger.info(`linked ${linked} earlier events of ${anonymousIds.length} visitors of tenant ${tenantId}`)
}
