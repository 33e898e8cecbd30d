/**
 * PostHog forwarding: events recorded into analytics.events of a tenant that opted in are sent to PostHog with
 * posthog-node, in batches drained from analytics.posthog_outbox (migration 0025; the outbox row is written by the
 * statement that records the event, so ingestion does nothing more and never waits for PostHog).
 *
 * - Exactly once from our side: a row leaves the outbox only after PostHog accepted its batch, and every event carries
 *   a stable `uuid` (the client's event id, else one derived from the tenant and the event's id), which PostHog
 *   deduplicates on, so a batch resent after a lost answer counts once.
 * - PostHog down (5xx, 408, 429, network, timeout): the batch is retried after base·2^attempts, then parked with its
 *   error after maxAttempts. A batch PostHog refuses (another 4xx) is retried event by event, so only the offender fails.
 * - Privacy: distinct_id is a keyed pseudonym (HMAC under SECRETS_KEY, per tenant) of the lead id, else of the
 *   anonymous id; properties are the tenant's allow-list only, scalar values only, and a value that looks like an
 *   email or a phone number is dropped whatever its name. Names, phones, emails and message text are never read.
 */
import { createHash } from 'node:crypto'
import { PostHog } from 'posthog-node'
import type { Config } from '../../../lib/config.js'
import { Pseudonyms, SecretBox } from '../../../lib/crypto.js'
import { withTenant, type Sql } from '../../../lib/db.js'
import { captureTargetOf, DEFAULT_POSTHOG_HOST, type CaptureTarget } from './projects.js'
import * as q from './queries.js'
import { DEFAULT_POSTHOG_PROPERTIES } from './schemas.js'


export interface ForwardOptions {
  /** The operator's project API key (POSTHOG_API_KEY); null: only tenants with their own project forward. */
  apiKey: string | null
  /** The operator's host, e.g. https://us.i.posthog.com, or the emulator (ops/emulators/posthog.ts). */
  host: string
  /** Opens tenants' sealed project keys; from SECRETS_KEY (the development key when unset). */
  secrets?: SecretBox
  pseudonyms: Pseudonyms
  batchSize: number
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  requestTimeoutMs: number
  /** posthog-node's own quick retries inside one send (fetchRetryCount); our backoff is the real retry. */
  clientRetries?: number
  /** Batches in flight at once (each its own transaction and connection). Default 1. */
  concurrency?: number
  /** The clock the due times are compared with (tests move it instead of waiting). */
  now?: () => Date
}

export interface ForwardResult { sent: number; failed: number; parked: number; dropped: number; batches: number }
const emptyResult = (): ForwardResult => ({ sent: 0, failed: 0, parked: 0, dropped: 0, batches: 0 })
const add = (a: ForwardResult, b: ForwardResult) => {
  a.sent += b.sent; a.failed += b.failed; a.parked += b.parked; a.dropped += b.dropped; a.batches += b.batches
}

/** One event as posthog-node's capture takes it. */
export interface PosthogMessage {
  uuid: string
  event: string
  distinctId: string
  timestamp: Date
  properties: Record<string, string | number | boolean>
  groups: Record<string, string>
}

// ---------------------------------------------------------------------------------------------------------------
// What is sent.

/** A UUID (version 8, RFC 9562: custom) from the tenant and the event's id: the same event gives the same uuid. */
export function derivedEventUuid(tenantId: string, eventId: string): string {
  const b = createHash('sha256').update(`analytics.events:${tenantId}:${eventId}`).digest().subarray(0, 16)
  b[6] = (b[6]! & 0x0f) | 0x80
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The person PostHog sees: a pseudonym nobody can reverse or test a guess against without SECRETS_KEY. */
export function distinctIdOf(p: Pick<Pseudonyms, 'of'>, tenantId: string, row: { leadId: string | null; anonymousId: string | null }): { id: string; person: boolean } {
  if (row.leadId) return { id: `lead_${p.of('posthog:lead', `${tenantId}:${row.leadId}`)}`, person: true }
  if (row.anonymousId) return { id: `anon_${p.of('posthog:anonymous', `${tenantId}:${row.anonymousId}`)}`, person: true }
  // Events about nobody (an erased person's, a tenant's own): one id per tenant, with no person profile.
  return { id: `tenant_${p.of('posthog:tenant', tenantId)}`, person: false }
}

const EMAIL_LIKE = /[^\s@]+@[^\s@]+\.[^\s@]+/
const PHONE_LIKE = /\+?\d[\d\s().-]{7,}\d/
const MAX_VALUE_LENGTH = 200

/** A value PostHog may receive: a scalar, short, and not shaped like an email or a phone number. */
function safeValue(v: unknown): string | number | boolean | undefined {
  if (typeof v === 'boolean') return v
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_VALUE_LENGTH) return undefined
  if (EMAIL_LIKE.test(v) || PHONE_LIKE.test(v)) return undefined
  return v
}

/** The allow-listed properties of one event; column dimensions by their names, the rest from `properties`. */
export function allowedPropertiesOf(row: q.DueOutboxRow, allowed: readonly string[]): Record<string, string | number | boolean> {
  const columns: Record<string, unknown> = {
    producer: row.source, source: row.acqSource, channel: row.acqChannel, country: row.country,
    device: row.device, browser: row.browser, os: row.os,
  }
  const out: Record<string, string | number | boolean> = {}
  for (const name of allowed) {
    const value = safeValue(name in columns ? columns[name] : row.properties?.[name])
    if (value !== undefined) out[name] = value
  }
  return out
}

export const effectiveAllowList = (s: { allowedProperties: string[] | null } | null): readonly string[] => s?.allowedProperties ?? DEFAULT_POSTHOG_PROPERTIES

export function messageOf(p: Pseudonyms, tenantId: string, row: q.DueOutboxRow, allowed: readonly string[], sharedProject = true): PosthogMessage {
  const who = distinctIdOf(p, tenantId, row)
  const properties = allowedPropertiesOf(row, allowed)
  if (!who.person) properties.$process_person_profile = false
  return {
    uuid: row.clientEventId ?? derivedEventUuid(tenantId, row.eventId),
    event: row.name!,
    distinctId: who.id,
    timestamp: row.occurredAt,
    properties,
    // The operator's project holds every tenant's events: a group per tenant keeps them apart in PostHog. A tenant's
    // own project holds only its own.
    groups: sharedProject ? { tenant: tenantId } : {},
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sending, with posthog-node.

export class PosthogSendError extends Error {
  constructor(message: string, readonly retryable: boolean, readonly status: number | null) {
    super(message)
    this.name = 'PosthogSendError'
  }
}

/** posthog-node's errors, as what we store (status, and PostHog's error body, which describes our request, not a person). */
async function describeSendError(err: unknown): Promise<PosthogSendError> {
  const e = err as { name?: string; message?: string; status?: number; response?: { text?: () => Promise<string> } } | null
  if (e?.name === 'PostHogFetchHttpError' && typeof e.status === 'number') {
    const body = await Promise.race([
      e.response?.text?.().catch(() => '') ?? Promise.resolve(''),
      new Promise<string>((r) => setTimeout(r, 1000, '').unref()),
    ])
    const retryable = e.status === 408 || e.status === 429 || e.status >= 500
    return new PosthogSendError(`PostHog answered ${e.status}${body ? `: ${body.slice(0, 500)}` : ''}`, retryable, e.status)
  }
  const cause = (err as { error?: unknown; cause?: unknown } | null)?.error ?? (err as { cause?: unknown } | null)?.cause
  const detail = cause instanceof Error ? `${cause.name}: ${cause.message}` : (e?.message ?? String(err))
  return new PosthogSendError(`PostHog unreachable: ${detail}`.slice(0, 600), true, null)
}

/**
 * One batch through posthog-node as one POST /batch/ (gzipped, as the client sends it). A client per batch: a failed
 * flush leaves nothing queued in a long-lived client to be resent behind our back, and the outbox stays the only
 * queue. flushAt above the batch and flushInterval 0: nothing is sent until flush().
 */
export async function sendBatch(opts: Pick<CaptureTarget, 'apiKey' | 'host'> & Pick<ForwardOptions, 'requestTimeoutMs' | 'clientRetries'>, messages: PosthogMessage[]): Promise<void> {
  if (messages.length === 0) return
  const client = new PostHog(opts.apiKey, {
    host: opts.host,
    flushAt: messages.length + 1,
    maxBatchSize: messages.length + 1,
    maxQueueSize: messages.length + 1,
    flushInterval: 0,
    fetchRetryCount: opts.clientRetries ?? 0,
    fetchRetryDelay: 200,
    requestTimeout: opts.requestTimeoutMs,
    disableGeoip: true,
  })
  let failure: unknown
  client.on('error', (err: unknown) => { failure ??= err })
  for (const m of messages) {
    client.capture({ uuid: m.uuid, event: m.event, distinctId: m.distinctId, timestamp: m.timestamp, properties: m.properties, groups: m.groups, disableGeoip: true })
  }
  try {
    await client.flush()
  } catch (err) {
    failure ??= err
  }
  if (failure !== undefined) throw await describeSendError(failure)
}

// ---------------------------------------------------------------------------------------------------------------
// The drain.

/**
 * One batch of one tenant: lock the due rows, read their events, send, and in the same transaction delete what
 * PostHog accepted or record the failure. The send happens with the rows locked, so an erasure that deletes them
 * waits for it rather than racing it.
 */
export async function forwardTenantBatch(sql: Sql, tenantId: string, opts: ForwardOptions): Promise<ForwardResult & { noTarget?: true }> {
  const now = opts.now?.() ?? new Date()
  return withTenant(sql, tenantId, async (tx) => {
    const result = emptyResult()
    const settings = await q.findPosthogSettings(tx)
    const target = settings?.enabled ? captureTargetOf(settings, opts.secrets ?? SecretBox.fromConfig(undefined), { apiKey: opts.apiKey, host: opts.host }) : null
    // Opted in, but neither its own project nor the operator's: the rows wait (nothing is lost) until one is set.
    if (settings?.enabled && !target) return { ...result, noTarget: true as const }
    const rows = await q.lockDueOutbox(tx, now, opts.batchSize)
    if (rows.length === 0) return result
    result.batches = 1
    // Opted out since, or the event is gone (retention): nothing to send, ever.
    const gone = settings?.enabled ? rows.filter((r) => !r.found) : rows
    if (gone.length > 0) result.dropped += await q.deleteOutboxRows(tx, gone.map((r) => r.eventId))
    const live = target ? rows.filter((r) => r.found) : []
    if (live.length === 0 || !target) return result
    const send = { ...opts, apiKey: target.apiKey, host: target.host }
    const allowed = effectiveAllowList(settings)
    const retry = { maxAttempts: opts.maxAttempts, baseMs: opts.retryBaseMs, maxMs: opts.retryMaxMs }
    const messages = live.map((r) => messageOf(opts.pseudonyms, tenantId, r, allowed, target.operator))
    try {
      await sendBatch(send, messages)
      result.sent += await q.deleteOutboxRows(tx, live.map((r) => r.eventId))
      return result
    } catch (err) {
      const e = err instanceof PosthogSendError ? err : new PosthogSendError(String(err), true, null)
      if (e.retryable || live.length === 1) {
        result.failed += live.length
        result.parked += await q.failOutboxRows(tx, live.map((r) => r.eventId), e.message, now, retry)
        return result
      }
    }
    // PostHog refused the batch as a whole: each event alone, so only the offender is held back.
    for (let i = 0; i < live.length; i++) {
      try {
        await sendBatch(send, [messages[i]!])
        result.sent += await q.deleteOutboxRows(tx, [live[i]!.eventId])
      } catch (err) {
        const e = err instanceof PosthogSendError ? err : new PosthogSendError(String(err), true, null)
        result.failed += 1
        result.parked += await q.failOutboxRows(tx, [live[i]!.eventId], e.message, now, retry)
      }
    }
    return result
  })
}

/**
 * Cross-tenant: drains every tenant's due rows, batch by batch, until nothing is due or `budgetMs` is spent (the
 * next cron run goes on). `concurrency` lanes go through the tenants side by side; `skip locked` gives each lane other
 * rows, so one lane's database work overlaps another's wait for PostHog. A tenant whose batch failed is not tried
 * again in this run.
 */
export async function forwardDue(sql: Sql, opts: ForwardOptions, budgetMs: number): Promise<ForwardResult> {
  const total = emptyResult()
  const started = Date.now()
  const failedTenants = new Set<string>()
  const lanes = Math.max(1, opts.concurrency ?? 1)
  while (Date.now() - started < budgetMs) {
    const tenants = (await q.posthogDueTenants(sql, opts.now?.() ?? new Date(), 100)).filter((t) => !failedTenants.has(t))
    if (tenants.length === 0) break
    let progressed = false
    const lane = async () => {
      for (const tenantId of tenants) {
        if (failedTenants.has(tenantId) || Date.now() - started >= budgetMs) continue
        const r = await forwardTenantBatch(sql, tenantId, opts)
        add(total, r)
        if (r.failed > 0 || r.noTarget) failedTenants.add(tenantId)
        if (r.sent > 0 || r.dropped > 0) progressed = true
      }
    }
    await Promise.all(Array.from({ length: lanes }, lane))
    if (!progressed) break
  }
  return total
}

/**
 * The drain's options from the configuration. Without POSTHOG_API_KEY only tenants that set their own project
 * forward; the others' rows wait in the outbox.
 */
export function forwardOptionsFrom(config: Config, overrides: Partial<ForwardOptions> = {}): ForwardOptions {
  return {
    apiKey: config.POSTHOG_API_KEY ?? null,
    host: config.POSTHOG_HOST ?? DEFAULT_POSTHOG_HOST,
    secrets: SecretBox.fromConfig(config.SECRETS_KEY),
    pseudonyms: Pseudonyms.fromConfig(config.SECRETS_KEY),
    batchSize: config.POSTHOG_BATCH_SIZE,
    maxAttempts: config.POSTHOG_MAX_ATTEMPTS,
    retryBaseMs: config.POSTHOG_RETRY_BASE_MS,
    retryMaxMs: config.POSTHOG_RETRY_MAX_MS,
    requestTimeoutMs: config.POSTHOG_REQUEST_TIMEOUT_MS,
    concurrency: config.POSTHOG_DRAIN_CONCURRENCY,
    ...overrides,
  }
}
