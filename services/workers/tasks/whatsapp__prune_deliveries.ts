import type { Task } from 'graphile-worker'
import { z } from 'zod'
import { pruneProcessedDeliveries, pruneUnparseableDeliveries } from '../../../domains/whatsapp/queries.js'
import { deleteInBatches } from './in-batches.js'
import type { TaskDeps } from './task-deps.js'

const Payload = z.object({}).loose()
/** Rows deleted per statement: keeps each transaction short on a large backlog. */
const CHUNK = 5000

/**
 * Cross-tenant: deletes raw deliveries processed more than WEBHOOK_RETENTION_DAYS ago. What they carried lives on in
 * the tenant tables; the raw copy is only for replays and audits, and holding leads' messages longer than needed
 * is a privacy cost. Failed, parked and quarantined-item deliveries are kept until an operator deals with them.
 * Raw unparseable deliveries (bytes that could never be stored as jsonb) go after the same retention from receipt.
 */
export const pruneDeliveriesTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  Payload.parse(payload ?? {})
  const total = await deleteInBatches(CHUNK, (limit) => pruneProcessedDeliveries(deps.sql, deps.config.WEBHOOK_RETENTION_DAYS, limit))
  if (total > 0) helpers.logger.info(`pruned ${total} processed deliveries`)
  const unparseable = await pruneUnparseableDeliveries(deps.sql, deps.config.WEBHOOK_RETENTION_DAYS)
  if (unparseable > 0) helpers.logger.info(`pruned ${unparseable} unparseable deliveries`)
}
