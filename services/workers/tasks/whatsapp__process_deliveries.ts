import type { Task } from 'graphile-worker'
import { onNewInboundMessages } from '../../../domains/conversations/inbound-hook.js'
import { handDeliveryToItsOwnJob, processDeliveries } from '../../../domains/whatsapp/process-deliveries.js'
import { ProcessDeliveriesPayload } from '../../../domains/whatsapp/schemas.js'
import { whatsappDeliveries } from '../../../lib/metrics.js'
import type { TaskDeps } from './task-deps.js'

/** Attempts for one delivery on its own before it is parked for an operator (backoff: e^attempt seconds). */
export const DELIVERY_MAX_ATTEMPTS = 8

/**
 * The fast path: applies the deliveries that one group commit stored, in one transaction. A delivery that fails
 * is handed to its own retrying job (whatsapp__process_delivery), recorded and enqueued in one transaction, so
 * the batch job itself completes and nothing is lost.
 */
export const processDeliveriesTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { deliveryIds } = ProcessDeliveriesPayload.parse(payload)
  const result = await processDeliveries(deps.sql, deliveryIds, onNewInboundMessages)
  whatsappDeliveries.inc({ outcome: 'processed' }, result.processed.length)
  for (const failure of result.failed) {
    helpers.logger.warn(`delivery ${failure.deliveryId} failed in batch; retrying alone: ${failure.error}`)
    await handDeliveryToItsOwnJob(deps.sql, failure.deliveryId, failure.error, DELIVERY_MAX_ATTEMPTS)
  }
}
