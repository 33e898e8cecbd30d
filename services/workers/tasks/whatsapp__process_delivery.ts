import type { Task } from 'graphile-worker'
import { onNewInboundMessages } from '../../../domains/conversations/inbound-hook.js'
import { processDeliveries, recordDeliveryFailure } from '../../../domains/whatsapp/process-deliveries.js'
import { ProcessDeliveryPayload } from '../../../domains/whatsapp/schemas.js'
import { whatsappDeliveries } from '../../../lib/metrics.js'
import type { TaskDeps } from './task-deps.js'

/**
 * The slow path for one delivery that failed: graphile-worker retries it with exponential backoff; on the last
 * attempt it is parked with its error (status 'parked'), where operators see it and can replay it.
 */
export const processDeliveryTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { deliveryId } = ProcessDeliveryPayload.parse(payload)
  const result = await processDeliveries(deps.sql, [deliveryId], onNewInboundMessages)
  whatsappDeliveries.inc({ outcome: 'processed' }, result.processed.length)
  const failure = result.failed[0]
  if (!failure) return
  const final = helpers.job.attempts >= helpers.job.max_attempts
  await recordDeliveryFailure(deps.sql, deliveryId, failure.error, final)
  if (final) whatsappDeliveries.inc({ outcome: 'parked' })
  if (final) {
    helpers.logger.error(`delivery ${deliveryId} parked after ${helpers.job.attempts} attempts: ${failure.error}`)
    return
  }
  throw new Error(`delivery ${deliveryId} failed (attempt ${helpers.job.attempts} of ${helpers.job.max_attempts}): ${failure.error}`)
}
