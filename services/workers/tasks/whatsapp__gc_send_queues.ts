import type { Task } from 'graphile-worker'
import { z } from 'zod'
import { deleteLegacyBroadcastQueues } from '../../../domains/campaigns/broadcasts/queries.js'
import { deleteLegacyBotQueues } from '../../../domains/conversations/queries.js'
import { deleteLegacySendQueues } from '../../../domains/whatsapp/outbound/queries.js'
import { deleteInBatches } from './in-batches.js'
import type { TaskDeps } from './task-deps.js'

const Payload = z.object({}).loose()
/** Queue rows deleted per statement: a database of many recipients holds one per person ever messaged. */
const CHUNK = 5000

/**
 * Cross-tenant: deletes the empty graphile-worker queue rows that older versions kept one per id: the sender's one per
 * recipient, the bot's one per conversation and the dispatcher's one per broadcast, now shared hashed queues (see
 * deleteEmptyQueues in lib/job-queue.ts: why only those names, and why not graphile's `cleanup`). Every job fetch
 * locks all idle queue rows, so each one left slows every fetch. The task keeps its first name (the crontab id and
 * jobs already queued under it). Logs counts only (the send queues' names carry recipient pseudonyms).
 */
export const gcSendQueuesTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  Payload.parse(payload ?? {})
  const sends = await deleteInBatches(CHUNK, (limit) => deleteLegacySendQueues(deps.sql, limit))
  const bots = await deleteInBatches(CHUNK, (limit) => deleteLegacyBotQueues(deps.sql, limit))
  const broadcasts = await deleteInBatches(CHUNK, (limit) => deleteLegacyBroadcastQueues(deps.sql, limit))
  if (sends + bots + broadcasts > 0) {
    helpers.logger.info(`deleted empty legacy queues: ${sends} send, ${bots} bot, ${broadcasts} broadcast`)
  }
}
