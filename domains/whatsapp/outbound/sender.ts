import { setTimeout as sleep } from 'node:timers/promises'
import { ZodError } from 'zod'
import type { SecretBox } from '../../../lib/crypto.js'
import { type Sql, type Tx, withTenant, withTenantStatement } from '../../../lib/db.js'
import type { Logger } from '../../../lib/logger.js'
import { countSend } from '../../../lib/metrics.js'
import { suppressedRecipients } from '../../privacy/suppression.js'
import { lockWamids, refreshMessageStatuses } from '../apply-items.js'
import { type GraphClient, GraphApiError } from '../graph/client.js'
import * as q from './queries.js'
import { SEND_MESSAGE_TASK } from './schemas.js'
import { isWindowOpen } from './service.js'

/**
 * The send side of the outbox: one recipient's queued messages, sent in order, each at most once.
 *
 * A send goes: queued -> (rules checked, the pair slot reserved, `sending` committed: the claim) -> the number's
 * slot waited for -> `call_began_at` committed (only while the claim is still this runner's) -> Graph call ->
 * accepted with its wamid, or failed with the reason, or queued again with a backoff. Both marks are committed
 * before the call, so a crash leaves one of two states behind:
 * - claimed, the call never began (the worker died while it waited for its slots): nothing reached Meta, so once the
 *   claim is older than a live runner could still be waiting (`unbegunClaimMs`), the next runner claims it again and
 *   sends; the old runner, if it was alive after all, then finds its claim taken and does not call;
 * - the call began: Meta may have the message. The next attempt looks for Meta's status webhooks carrying this
 *   message's idempotency key (biz_opaque_callback_data) and takes the wamid from them instead of sending again.
 *   Only when no status has shown up within the grace period is the message sent again.
 */

export interface SenderOptions {
  sql: Sql
  graph: GraphClient
  secrets: SecretBox
  /** Per business number, shared across processes through PostgreSQL. */
  ratePerSecond: number
  log?: Logger
  /** A `sending` row younger than this may still have its call in flight (call timeout + slot wait + margin). */
  inFlightLeaseMs?: number
  /** How long to wait for status webhooks to prove an ambiguous send went out before sending it again. */
  inDoubtGraceMs?: number
  /**
   * A claim whose call has not begun is left to its runner this long (it may be waiting for its rate slots: at most
   * maxSlotWaitMs each, plus late slots given up); older, another runner claims it again and sends.
   */
  unbegunClaimMs?: number
  /** Graph calls per message before a retryable failure becomes final. */
  maxAttempts?: number
  /** Longest wait for a rate slot inside a job; beyond it the job is rescheduled instead. */
  maxSlotWaitMs?: number
  /** First retry delay; doubles per attempt (with jitter), capped at 10 minutes. */
  retryBaseMs?: number
  /**
   * How late a call may start after its number slot. A later one (a timer or the event loop held up) gives its slot
   * up and takes the next: started late, it would land in the same second as the calls on time after it.
   */
  lateCallToleranceMs?: number
  /** Runs between a slot's wait and the call (tests hold the event loop up here). */
  beforeCall?: () => Promise<void> | void
  now?: () => Date
}

// Meta's pair rate: about one message every 6 s to the same user, with bursts (Meta allows up to ~45 at once).
export const PAIR_INTERVAL_MS = 6_000
export const PAIR_BURST = 45

// A worker sleeps at most a second for a rate slot; a longer queue is better served by rescheduling the job.
const DEFAULTS = { inFlightLeaseMs: 60_000, inDoubtGraceMs: 5 * 60_000, unbegunClaimMs: 10_000, maxAttempts: 8, maxSlotWaitMs: 1_000, retryBaseMs: 1_000, lateCallToleranceMs: 10 }
/** Slots given up in a row for lateness before the claim is handed back (a machine that busy is better served later). */
const MAX_LATE_SLOTS = 5
const IN_DOUBT_POLL_MS = 5_000
/**
 * The call's mark is committed this long before the number's slot, so that its commit does not make the call late;
 * a commit slower than this makes the call late, and the late-call rule then takes the next slot.
 */
const MARK_LEAD_MS = 5

export type DrainResult =
  | { kind: 'idle' }
  /** The head of the queue waits (backoff, slot, or evidence of an ambiguous send); the job is rescheduled. */
  | { kind: 'deferred'; until: Date; reason: string }

type HeadOutcome = { kind: 'empty' } | { kind: 'done'; state: 'accepted' | 'failed' } | { kind: 'deferred'; until: Date; reason: string }

type Decision =
  | HeadOutcome
  /** `pairAt`: when the recipient's reserved pair slot begins (this process's clock). */
  | { kind: 'send'; head: q.OpenSend; phoneNumberId: string; accessToken: string; pairAt: number }

export function backoffMs(attempts: number, baseMs: number): number {
  const exp = Math.min(10 * 60_000, baseMs * 2 ** Math.max(0, attempts - 1))
  return Math.round(exp * (0.8 + Math.random() * 0.4))
}

/**
 * Sends the outbox of the recipient of `messageId`, oldest first, until it is empty or its head must wait. Called by
 * the `whatsapp__send_message` job, which graphile-worker runs one at a time per recipient.
 */
export async function drainRecipientOutbox(options: SenderOptions, tenantId: string, messageId: string): Promise<DrainResult> {
  const o = { ...DEFAULTS, ...options }
  const target: Target = { messageId, pair: null }
  try {
    for (;;) {
      const outcome = await sendHead(o, tenantId, target)
      if (outcome.kind === 'empty') return { kind: 'idle' }
      if (outcome.kind === 'deferred') return outcome
    }
  } finally {
    // Pair-rate rows of idle recipients: cleared now and then, not on every run (it is one more commit).
    if (Math.random() < PRUNE_PROBABILITY) await withTenant(o.sql, tenantId, (tx) => q.pruneSendSlots(tx)).catch(() => {})
  }
}

/** The recipient whose outbox is drained, found from the job's message in the first transaction. */
interface Target {
  messageId: string
  pair: { phoneId: string; waId: string } | null
}
const PRUNE_PROBABILITY = 0.02

type Resolved = SenderOptions & typeof DEFAULTS

async function sendHead(o: Resolved, tenantId: string, target: Target): Promise<HeadOutcome> {
  const decision = await withTenant(o.sql, tenantId, async (tx): Promise<Decision> => {
    target.pair ??= await q.findSendPair(tx, target.messageId)
    return target.pair ? decide(o, tx, tenantId, target.pair.phoneId, target.pair.waId) : { kind: 'empty' }
  })
  if (decision.kind !== 'send') return decision
  const { head } = decision
  // The recipient's pair slot first (reserved with the claim), then the number's, which the call must keep to.
  if (decision.pairAt > Date.now()) await sleep(decision.pairAt - Date.now())
  // The number's slot: in a statement and commit of its own (its row is every send's; see reserveSendSlotQuickly).
  // Waited for until its instant, not for its wait counted from now: a commit in between takes a few milliseconds,
  // more under load, and sleeping the full wait after it would bunch calls up behind the late ones. And a call that
  // still starts more than lateCallToleranceMs after its slot (the timer or the event loop was held up) gives that
  // slot up and takes the next: late calls and the calls on time after them put more than the limit into one second
  // (Meta counts calls per second at its end: 8 × 130429 at 78/s of 80 in a quiet 10,000-recipient run). No slot soon
  // enough, or too many late in a row: the claim is given back and the job comes back later.
  //
  // Just before the first slot's instant the call is marked as begun (committed, and only if the claim is still this
  // runner's): from then on a crash leaves an ambiguous send; before it, a claim that can be sent again at once.
  let begun = false
  for (let late = 0; ; late++) {
    const numberWait = late > MAX_LATE_SLOTS ? null : await withTenantStatement(o.sql, tenantId, (tx) =>
      q.reserveSendSlotQuickly(tx, tenantId, `number:${head.phoneId}`, 1000 / o.ratePerSecond, 1, o.maxSlotWaitMs))
    if (numberWait === null) {
      return withTenant(o.sql, tenantId, async (tx) => {
        const until = new Date(Date.now() + o.maxSlotWaitMs)
        await q.releaseClaim(tx, head, until)
        await q.enqueueSend(tx, tenantId, head.messageId, head.phoneId, head.waId, SEND_MESSAGE_TASK, until)
        return { kind: 'deferred', until, reason: 'rate limit: no slot soon enough' } as const
      })
    }
    const slotAt = Date.now() + numberWait
    if (!begun) {
      if (numberWait > MARK_LEAD_MS) await sleep(numberWait - MARK_LEAD_MS)
      begun = await withTenantStatement(o.sql, tenantId, (tx) => q.markCallBegun(tx, head.messageId, head.attempts + 1))
      // Taken for dead and claimed again by another runner (or settled meanwhile): that one sends, not this one.
      if (!begun) return { kind: 'deferred', until: new Date(), reason: 'the claim was taken over by another runner' }
    }
    const left = slotAt - Date.now()
    if (left > 0) await sleep(left)
    await o.beforeCall?.()
    if (Date.now() - slotAt <= o.lateCallToleranceMs) break
  }

  let wamid: string
  try {
    const result = await o.graph.sendMessage({ phoneNumberId: decision.phoneNumberId, accessToken: decision.accessToken, body: head.body, idempotencyKey: head.idempotencyKey })
    wamid = result.wamid
  } catch (err) {
    if (err instanceof ZodError) {
      return withTenant(o.sql, tenantId, async (tx) => {
        await q.markFailed(tx, head.messageId, { reason: `invalid request: ${err.issues.map((i) => i.message).join('; ')}`, code: null, title: 'Invalid request', error: { issues: err.issues } })
        return { kind: 'done', state: 'failed' } as const
      })
    }
    // Anything else we cannot classify (a bug, the process dying) leaves `sending` behind, exactly like a crash.
    if (!(err instanceof GraphApiError)) throw err
    return withTenant(o.sql, tenantId, (tx) => recordGraphFailure(o, tx, tenantId, head, err))
  }
  countSend('accepted')
  return withTenant(o.sql, tenantId, async (tx) => {
    // Statuses that arrived before the wamid was stored are applied now; the lock makes an inbox transaction storing
    // one of them at this moment wait for this commit (or this one wait for it), so neither misses the other.
    await lockWamids(tx, [wamid])
    await q.markAccepted(tx, head.messageId, wamid)
    await refreshMessageStatuses(tx, [wamid])
    return { kind: 'done', state: 'accepted' } as const
  })
}

/** Everything decided under the head's row lock, so two runners can never both start a call for one message. */
async function decide(o: Resolved, tx: Tx, tenantId: string, phoneId: string, waId: string): Promise<Decision> {
  const head = await q.lockHeadSend(tx, phoneId, waId)
  if (!head) return { kind: 'empty' }
  const now = o.now?.() ?? new Date()
  const defer = async (until: Date, reason: string): Promise<Decision> => {
    await q.deferSend(tx, head.messageId, until)
    await q.enqueueSend(tx, tenantId, head.messageId, phoneId, waId, SEND_MESSAGE_TASK, until)
    return { kind: 'deferred', until, reason }
  }
  const fail = async (reason: string, code: number | null, title: string): Promise<Decision> => {
    await q.markFailed(tx, head.messageId, { reason, code, title, error: { reason } })
    return { kind: 'done', state: 'failed' }
  }

  const startedAt = head.callStartedAt?.getTime() ?? 0
  // Claimed, but its call never began: nothing reached Meta. Its runner may still be waiting for a rate slot; once
  // the claim is older than that could take, it is claimed again below and sent (the old runner's mark then fails).
  const unbegun = head.state === 'sending' && head.callBeganAt === null
  if (unbegun && now.getTime() - startedAt < o.unbegunClaimMs) {
    return defer(new Date(startedAt + o.unbegunClaimMs), 'its runner may still be waiting for a rate slot')
  }
  if (head.state === 'sending' && !unbegun && now.getTime() - startedAt < o.inFlightLeaseMs) {
    // Within the lease nothing is sent, but Meta's statuses may already prove the call went out (a worker killed
    // after it): then the wamid is taken from them now instead of at the lease's end, a minute after the crash. A
    // call younger than the poll interval is left to its own runner, which is most likely still on it.
    if (now.getTime() - startedAt >= IN_DOUBT_POLL_MS) {
      const wamid = await q.findSendEvidence(tx, head.idempotencyKey, new Date(startedAt - 60_000))
      if (wamid) return acceptFromEvidence(o, tx, head, wamid)
    }
    return defer(new Date(Math.min(startedAt + o.inFlightLeaseMs, Math.max(now.getTime(), startedAt) + IN_DOUBT_POLL_MS)), 'a call for this message may still be in flight')
  }
  if (head.state === 'queued' && head.nextAttemptAt && head.nextAttemptAt > now) return defer(head.nextAttemptAt, 'backing off')

  if ((head.state === 'sending' && !unbegun) || head.state === 'in_doubt') {
    // The last call has no recorded answer. Meta echoes our key in the status webhooks of a message it took.
    const since = new Date(startedAt - 60_000)
    const wamid = await q.findSendEvidence(tx, head.idempotencyKey, since)
    if (wamid) return acceptFromEvidence(o, tx, head, wamid)
    const graceEnds = startedAt + o.inDoubtGraceMs
    if (now.getTime() < graceEnds) {
      return defer(new Date(Math.min(graceEnds, now.getTime() + IN_DOUBT_POLL_MS)), 'waiting for status webhooks of an ambiguous send')
    }
    o.log?.warn({ messageId: head.messageId }, 'no sign of an ambiguous send after the grace period; sending again')
  }

  const sender = await q.findSenderCredentials(tx, phoneId)
  if (!sender) return fail('the WhatsApp number is gone', null, 'Number not found')
  if (sender.tokenInvalidAt) return fail(`the number's access token was rejected by Meta (error 190) on ${sender.tokenInvalidAt.toISOString()}; not sent`, 190, 'Access token invalid')
  if (sender.status !== 'active') return fail('the WhatsApp number is disabled; not sent', null, 'Number disabled')
  // privacy: an erased person (privacy.suppressions) gets no template, so no broadcast or business-initiated message;
  // free-form replies need a window only they can open by writing in again (domains/privacy/suppression.ts).
  if (head.kind === 'template' && (await suppressedRecipients(tx, [waId])).size > 0) {
    return fail('the recipient was erased and is suppressed (privacy.suppressions); templates are not sent until the tenant lifts the suppression', null, 'Recipient suppressed')
  }
  if (head.kind !== 'template' && !isWindowOpen(await q.findServiceWindow(tx, phoneId, waId), now)) {
    return fail('the 24-hour customer service window closed before the message could be sent; only templates may be sent now', null, 'Service window closed')
  }

  // The recipient's rate slot last: its row lock is held only until this short transaction commits. The number's
  // slot is taken after the commit, on its own (sendHead).
  const pairWait = await q.reserveSendSlot(tx, tenantId, `pair:${phoneId}:${waId}`, PAIR_INTERVAL_MS, PAIR_BURST, o.maxSlotWaitMs)
  if (pairWait === null) return defer(new Date(now.getTime() + o.maxSlotWaitMs), 'rate limit: no slot soon enough')
  const pairAt = Date.now() + pairWait

  let accessToken: string
  try {
    accessToken = o.secrets.open(sender.accessTokenSealed)
  } catch {
    return fail('the stored access token cannot be decrypted (SECRETS_KEY changed?)', null, 'Access token unreadable')
  }
  await q.markCallStarted(tx, head.messageId)
  return { kind: 'send', head, phoneNumberId: sender.phoneNumberId, accessToken, pairAt }
}

/** Meta's status webhooks carry this message's idempotency key: it went out, with this wamid; nothing is sent again. */
async function acceptFromEvidence(o: Resolved, tx: Tx, head: q.OpenSend, wamid: string): Promise<Decision> {
  await lockWamids(tx, [wamid])
  await q.markAccepted(tx, head.messageId, wamid)
  await refreshMessageStatuses(tx, [wamid])
  o.log?.info({ messageId: head.messageId }, 'ambiguous send resolved from status webhooks; not sending again')
  return { kind: 'done', state: 'accepted' }
}

async function recordGraphFailure(o: Resolved, tx: Tx, tenantId: string, head: q.OpenSend, err: GraphApiError): Promise<HeadOutcome> {
  const error = { httpStatus: err.httpStatus, code: err.code, subcode: err.subcode, title: err.title, message: err.message, details: err.details, fbtraceId: err.fbtraceId }
  const reason = err.code !== null ? `${err.code}: ${err.title}${err.details ? ` (${err.details})` : ''}` : err.message
  const attempts = head.attempts + 1
  const ambiguous = err.httpStatus === null && !refusedConnection(err)
  countSend(err.disposition === 'fail' || err.disposition === 'token_invalid' || attempts >= o.maxAttempts ? 'failed' : ambiguous ? 'in_doubt' : 'retry', err.code)
  if (err.disposition === 'fail' || err.disposition === 'token_invalid') {
    await q.markFailed(tx, head.messageId, { reason, code: err.code, title: err.title, error })
    if (err.disposition === 'token_invalid') await q.flagTokenInvalid(tx, head.phoneId)
    return { kind: 'done', state: 'failed' }
  }
  if (attempts >= o.maxAttempts) {
    // The prefix tells a transient failure retried to exhaustion from Meta's verdict (campaigns/broadcasts failureCodes).
    await q.markFailed(tx, head.messageId, { reason: `gave up after ${attempts} attempts; last error ${reason}`, code: err.code, title: err.title, error })
    return { kind: 'done', state: 'failed' }
  }
  const now = o.now?.() ?? new Date()
  // No answer at all (timeout, connection lost mid-call): Meta may have the message. A refused connection never
  // reached anyone, so it is an ordinary retry.
  const until = new Date(now.getTime() + (ambiguous ? Math.min(IN_DOUBT_POLL_MS, o.inDoubtGraceMs) : backoffMs(attempts, o.retryBaseMs)))
  if (ambiguous) await q.markInDoubt(tx, head.messageId, until, error)
  else await q.markRetry(tx, head.messageId, until, error)
  await q.enqueueSend(tx, tenantId, head.messageId, head.phoneId, head.waId, SEND_MESSAGE_TASK, until)
  return { kind: 'deferred', until, reason }
}

function refusedConnection(err: GraphApiError): boolean {
  for (let cause: unknown = err.cause, depth = 0; cause && depth < 4; cause = (cause as { cause?: unknown }).cause, depth++) {
    if ((cause as { code?: unknown }).code === 'ECONNREFUSED') return true
  }
  return false
}
