import type { Task } from 'graphile-worker'
import { isDatabaseUnavailable } from '../../../lib/db.js'
import { ProcessEventsPayload } from '../../../domains/analytics/schemas.js'
import { processEvents } from '../../../domains/analytics/service.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Moves the events one intake group commit stored for a tenant into analytics.events, 1,000 per transaction. An
 * event that fails alone is parked in the inbox with its error, so the job completes and nothing is lost; an
 * unavailable database fails the job, which graphile-worker retries with the events still in the inbox.
 */
export const processEventsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId, eventIds } = ProcessEventsPayload.parse(payload)
  const result = await processEvents(deps.sql, tenantId, eventIds, isDatabaseUnavailable)
  for (const id of result.parked) helpers.logger.warn(`analytics event ${id} of tenant ${tenantId} failed alone; parked in analytics.event_inbox`)
}
