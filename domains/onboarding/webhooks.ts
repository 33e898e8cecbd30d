import { createHmac, timingSafeEqual } from 'node:crypto'
import type { Sql } from '../../lib/db.js'
import * as q from './queries.js'

/**
 * Outbound onboarding events (onboarding.nudge, onboarding.abandoned, onboarding.completed), signed the Standard
 * Webhooks way (standardwebhooks.com): headers `webhook-id` (the event id, stable across retries, for the receiver's
 * dedupe), `webhook-timestamp` (unix seconds of this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
 * "<id>.<timestamp>.<body>">`), keyed by the secret's bytes (`whsec_<base64>`).
 */
export function signStandardWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64')
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/** What a receiver does: any of the space-separated v1 signatures matches, and the timestamp is within tolerance. */
export function verifyStandardWebhook(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string, toleranceSeconds = 300, now = Date.now()): boolean {
  const ts = Number(headers.timestamp)
  if (!Number.isInteger(ts) || Math.abs(now / 1000 - ts) > toleranceSeconds) return false
  const expected = Buffer.from(signStandardWebhook(secret, headers.id, ts, body))
  return headers.signature.split(' ').some((candidate) => {
    const got = Buffer.from(candidate)
    return got.length === expected.length && timingSafeEqual(got, expected)
  })
}

export interface WebhookTarget { url: string; secret: string; timeoutMs: number }

export type DeliveryOutcome = 'delivered' | 'skipped' | 'retry' | 'failed' | 'gone'

/**
 * One delivery attempt of an event. No URL configured: recorded as skipped. A 2xx: delivered. Anything else is
 * recorded with its status and retried by the job (graphile-worker's backoff) until the last attempt, then failed.
 */
export async function deliverWebhookEvent(sql: Sql, target: WebhookTarget | null, eventId: string, sessionId: string, attempt: { number: number; max: number }, fetchImpl: typeof fetch = fetch): Promise<DeliveryOutcome> {
  const found = await q.sessionTenant(sql, sessionId)
  if (!found) return 'gone'
  const event = await sql.begin(async (tx) => {
    await q.scopeToSession(tx, found.id, found.tenantId)
    return q.lockWebhookEvent(tx, eventId)
  })
  if (!event || event.status === 'delivered' || event.status === 'skipped') return 'gone'
  const record = (outcome: Parameters<typeof q.recordWebhookAttempt>[2]) => sql.begin(async (tx) => {
    await q.scopeToSession(tx, found.id, found.tenantId)
    await q.recordWebhookAttempt(tx, eventId, outcome)
  })
  if (!target) {
    await record({ status: 'skipped', httpStatus: null, error: 'ONBOARDING_WEBHOOK_URL is not set' })
    return 'skipped'
  }
  const body = JSON.stringify({ type: event.type, timestamp: event.createdAt.toISOString(), data: event.payload })
  const timestamp = Math.floor(Date.now() / 1000)
  let status: number | null = null
  let error: string | null = null
  try {
    const res = await fetchImpl(target.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': event.id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signStandardWebhook(target.secret, event.id, timestamp, body) },
      body,
      signal: AbortSignal.timeout(target.timeoutMs),
      redirect: 'manual',
    })
    status = res.status
    await res.body?.cancel()
    if (res.ok) {
      await record({ status: 'delivered', httpStatus: status, error: null })
      return 'delivered'
    }
    error = `answered ${status}`
  } catch (err) {
    error = err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 300) : 'request failed'
  }
  const last = attempt.number >= attempt.max
  await record({ status: last ? 'failed' : 'pending', httpStatus: status, error })
  return last ? 'failed' : 'retry'
}
