import type { Task } from 'graphile-worker'
import { DeliverWebhookPayload } from '../../../domains/onboarding/schemas.js'
import { deliverWebhookEvent } from '../../../domains/onboarding/webhooks.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Delivers one onboarding webhook event to ONBOARDING_WEBHOOK_URL, signed (Standard Webhooks). A non-2xx or a
 * network error is recorded and thrown, so graphile-worker retries with its exponential backoff; after the last
 * attempt the event is marked failed and the task returns.
 */
export const deliverWebhookTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { eventId, sessionId } = DeliverWebhookPayload.parse(payload)
  const { ONBOARDING_WEBHOOK_URL: url, ONBOARDING_WEBHOOK_SECRET: secret } = deps.config
  const target = url && secret ? { url, secret, timeoutMs: 10_000 } : null
  const outcome = await deliverWebhookEvent(deps.sql, target, eventId, sessionId, { number: helpers.job.attempts, max: helpers.job.max_attempts })
  if (outcome === 'retry') throw new Error(`onboarding webhook ${eventId} not delivered yet`)
  helpers.logger.info(`onboarding webhook ${eventId}: ${outcome}`)
}
