import type { Task } from 'graphile-worker'
import { dispatchBroadcast, type DispatchOptions } from '../../../domains/campaigns/broadcasts/dispatcher.js'
import { DispatchBroadcastPayload } from '../../../domains/campaigns/broadcasts/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Feeds one sending broadcast into the WhatsApp outbox, step by step (domains/campaigns/broadcasts/dispatcher.ts),
 * for a bounded time; a broadcast still sending is handed to a fresh job with the same key. A paused, stopped or
 * finished broadcast ends the job. Idempotent: a retried or crashed run continues from the recipients' states.
 */
export const dispatchBroadcastTask = (deps: TaskDeps, overrides: Partial<DispatchOptions> = {}): Task => {
  const options: DispatchOptions = { sql: deps.sql, ratePerSecond: deps.config.WHATSAPP_SEND_RATE_PER_SECOND, log: deps.log, ...overrides }
  return async (payload, helpers) => {
    const { tenantId, broadcastId } = DispatchBroadcastPayload.parse(payload)
    const result = await dispatchBroadcast(options, tenantId, broadcastId)
    helpers.logger.debug(`broadcast ${broadcastId}: ${result.kind}`)
  }
}
