import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { graphClientFor } from '../../../domains/whatsapp/outbound/graph.js'
import { SendMessagePayload } from '../../../domains/whatsapp/outbound/schemas.js'
import { drainRecipientOutbox, type SenderOptions } from '../../../domains/whatsapp/outbound/sender.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Sends the outbox of one recipient (the one `messageId` is addressed to), in order. Permanent failures are recorded
 * on the message; a head that must wait (retry backoff, rate slot, an ambiguous send awaiting its status webhooks)
 * is rescheduled by the domain in the same transaction that records why, rather than thrown: the wait belongs to
 * the message, and a thrown job's backoff would be reset by the next message queued for the same recipient.
 * Anything unexpected throws, and graphile-worker retries.
 */
export const sendMessageTask = (deps: TaskDeps, overrides: Partial<SenderOptions> = {}): Task => {
  const options: SenderOptions = {
    sql: deps.sql,
    graph: graphClientFor(deps.config),
    secrets: SecretBox.fromConfig(deps.config.SECRETS_KEY),
    ratePerSecond: deps.config.WHATSAPP_SEND_RATE_PER_SECOND,
    log: deps.log,
    ...overrides,
  }
  return async (payload, helpers) => {
    const { tenantId, messageId } = SendMessagePayload.parse(payload)
    const result = await drainRecipientOutbox(options, tenantId, messageId)
    if (result.kind === 'deferred') helpers.logger.debug(`outbox of message ${messageId} waits until ${result.until.toISOString()}: ${result.reason}`)
  }
}
