import type { Task } from 'graphile-worker'
import { CreatePartitionsPayload } from '../../../domains/analytics/schemas.js'
import { prepareEventPartitions, PARTITION_DAYS_AHEAD } from '../../../domains/analytics/service.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant: keeps analytics.events' day partitions ready from yesterday through PARTITION_DAYS_AHEAD days ahead,
 * so a day's first events never create one on the hot path, and moves rows that reached the default partition (a
 * producer that could not name its days before its statement) into their day's own. Idempotent: what exists stays.
 */
export const createPartitionsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { daysAhead } = CreatePartitionsPayload.parse(payload ?? {})
  const created = await prepareEventPartitions(deps.sql, daysAhead ?? PARTITION_DAYS_AHEAD)
  if (created > 0) helpers.logger.info(`analytics: created ${created} event partitions`)
}
