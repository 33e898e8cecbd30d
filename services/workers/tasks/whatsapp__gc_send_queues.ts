import type { Task } from 'graphile-worker'
import { z } from 'zod'
import { deleteLegacySendQueues } from '../../../domains/whatsapp/outbound/queries.js'
import { deleteInBatches } from './in-batches.js'
import type { TaskDeps } from './task-deps.js'

const Payload = z.object({}).loose()
/** Queue rows deleted per statement: a database of many recipients holds one per person ever messaged. */
const CHUNK = 5000

/**
 * Cross-tenant: deletes the empty graphile-worker queue rows of the one-queue-per-recipient sender (see
 * deleteLegacySendQueues: why not graphile's `cleanup`). Every job fetch locks all idle queue rows, so each one left
 * slows every fetch. Logs the count only (the names carry recipient pseudonyms).
 */
export const gcSendQueuesTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  Payload.parse(payload ?? {})
  const total = await deleteInBatches(CHUNK, (limit) => deleteLegacySendQueues(deps.sql, limit))
  if (total > 0) helpers.logger.info(`deleted ${total} empty legacy send queue(s)`)
}
