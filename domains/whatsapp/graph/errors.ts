/**
 * What a caller should do after a failed call to Meta's Graph API:
 * - `retry`: transient; the same request may succeed later (throttling, Meta's own outages, network trouble).
 * - `fail`: permanent for this message; record the failure and stop (bad input, no 24h window, recipient
 *   unreachable, template problems).
 * - `token_invalid`: permanent too, and the tenant's access token is dead: flag it so nothing else is sent with it
 *   until someone reconnects the number.
 */
export type GraphErrorDisposition = 'retry' | 'fail' | 'token_invalid'

export interface GraphApiErrorProps {
  /** HTTP status of Meta's answer; null when no answer came (network error, timeout). */
  httpStatus: number | null
  /** Meta's `error.code`; null when there was no Graph error body. */
  code: number | null
  /** Meta's `error.error_subcode`; deprecated since v16.0, still sent for some OAuth errors. */
  subcode: number | null
  /** Meta's message without the `(#code) ` prefix; Meta says titles will be deprecated, so never branch on it. */
  title: string
  message: string
  /** `error.error_data.details`: the most specific explanation Meta gives. */
  details: string | null
  fbtraceId: string | null
  disposition: GraphErrorDisposition
  cause?: unknown
}

export class GraphApiError extends Error {
  readonly httpStatus: number | null
  readonly code: number | null
  readonly subcode: number | null
  readonly title: string
  readonly details: string | null
  readonly fbtraceId: string | null
  readonly disposition: GraphErrorDisposition
  readonly retryable: boolean

  constructor(props: GraphApiErrorProps) {
    super(props.message, { cause: props.cause })
    this.name = 'GraphApiError'
    this.httpStatus = props.httpStatus
    this.code = props.code
    this.subcode = props.subcode
    this.title = props.title
    this.details = props.details
    this.fbtraceId = props.fbtraceId
    this.disposition = props.disposition
    this.retryable = props.disposition === 'retry'
  }
}

export const isGraphApiError = (err: unknown): err is GraphApiError => err instanceof GraphApiError

/**
 * Meta's codes that are worth retrying. Meta asks to branch on `code` (not on HTTP status or subcode), so codes are
 * checked before statuses.
 */
const RETRY_CODES = new Map<number, string>([
  // Throughput of the business number (80 msg/s by default) was exceeded: back off for seconds, then resend.
  [130429, 'throughput limit'],
  // Pair rate limit (one business number to one user, roughly one message every 6 s): resend after a pause.
  [131056, 'pair rate limit'],
  // "Something went wrong" (HTTP 500): Meta's catch-all for failures on its side; usually passes. Retried with
  // backoff and a bounded number of attempts by the caller, because a persistent configuration fault also shows
  // up as 131000 and must not loop forever.
  [131000, 'unknown Meta error'],
  // Graph API "API Unknown" (1) and "API Service" (2): temporary, Meta's own downtime.
  [1, 'Graph API unknown error'],
  [2, 'Graph API service unavailable'],
  // Application-level and WABA-level call limits: throttling, not a verdict on the message.
  [4, 'application request limit'],
  [80007, 'WABA rate limit'],
  // "Service unavailable" (131016) and "server temporarily unavailable" (133004): Meta's outages.
  [131016, 'service unavailable'],
  [133004, 'server temporarily unavailable'],
])

/** Codes that are final for this message whatever the HTTP status says. */
const FAIL_CODES = new Map<number, string>([
  // Invalid parameter: our request is wrong; resending the same body cannot help.
  [100, 'invalid parameter'],
  // Re-engagement: the 24h customer service window is closed; only a template may be sent now. A retry of the same
  // free-form body fails again, so the caller must choose a template instead.
  [131047, '24h window closed'],
  // Undeliverable: not a WhatsApp user, old client, or has not accepted the terms. Permanent for this message.
  [131026, 'undeliverable'],
  // Per-user marketing limit ("healthy ecosystem engagement"): Meta says do not retry soon; it is for a later
  // campaign decision, not for the job's retry loop.
  [131049, 'per-user marketing limit'],
  // Spam rate limit on the number: retrying hurts the quality rating further.
  [131048, 'spam rate limit'],
])

/**
 * Maps Meta's answer to what the caller should do. `httpStatus` null means no answer (network error or timeout).
 */
export function classifyGraphError(httpStatus: number | null, code: number | null): GraphErrorDisposition {
  // 190 is "access token expired or invalid" (HTTP 401). Every further call with this token fails the same way, so
  // it is a failure that also flags the token.
  if (code === 190) return 'token_invalid'
  if (code !== null) {
    if (RETRY_CODES.has(code)) return 'retry'
    if (FAIL_CODES.has(code)) return 'fail'
    // 132000-132999 are template errors (param count mismatch, template missing or paused, format mismatch...):
    // the template or its parameters must change before a send can succeed.
    if (code >= 132000 && code <= 132999) return 'fail'
  }
  // No answer at all: the request may or may not have reached Meta. Retrying can duplicate a message, but losing a
  // reply is worse; `biz_opaque_callback_data` (see client) lets status webhooks reconcile a send we never saw answered.
  if (httpStatus === null) return 'retry'
  // A 401 with no Graph code (or code 0, AuthException) is the same dead-token situation as 190.
  if (httpStatus === 401 && (code === null || code === 0)) return 'token_invalid'
  // Meta's (or a proxy's) server errors and plain throttling statuses: transient.
  if (httpStatus >= 500 || httpStatus === 429 || httpStatus === 408) return 'retry'
  // Every other 4xx is a verdict on this request.
  if (httpStatus >= 400) return 'fail'
  // A 2xx/3xx that still did not carry a usable answer: treat as final rather than risk sending twice.
  return 'fail'
}

/** Meta prefixes messages with the code, `(#131047) Re-engagement message`; the rest is the title. */
export const titleFromMessage = (message: string): string => message.replace(/^\(#\d+\)\s*/, '')
