import { setTimeout as sleep } from 'node:timers/promises'
import { ZodError } from 'zod'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import type { Logger } from '../../../lib/logger.js'
import { type LeadTemplateVariation, recordPendingTemplateExposures, templateVariationsForLeads } from '../../experiments/service.js'
import { suppressedRecipients } from '../../privacy/suppression.js'
import { type TemplateComponent, templateBody } from '../../whatsapp/graph/bodies.js'
import { classifyGraphError } from '../../whatsapp/graph/errors.js'
import { queueOutbound } from '../../whatsapp/outbound/service.js'
import * as q from './queries.js'
import { experimentPlanFor } from './experiment.js'
import { DISPATCH_BROADCAST_TASK } from './schemas.js'
import { numberBlock, templateBlock, transition } from './service.js'
import { tierLimit, tierRemaining } from './tier.js'

/**
 * The broadcast dispatcher: feeds a sending broadcast's recipients into the WhatsApp outbox at the pace the send
 * governor can take, never more than the number's 24-hour messaging limit allows, and pauses it by itself.
 *
 * Each step is one transaction under the broadcast's row lock: settle the recipients whose sends finished, check what
 * ends it for good (the number removed, the template deleted, every settled send refused by Meta for good → failed)
 * and what a person can fix (template PAUSED, DISABLED or quality RED, the number disabled or its token rejected,
 * failures over the threshold → auto-pause), then queue the next few recipients: each one's message, its send job
 * and the recipient's `queued` state commit together. Pausing or failing cancels what is still waiting in the outbox
 * (service.ts, closeOutbox). A crash (kill -9) anywhere leaves either all of it or none of it, so the next run continues with
 * the next pending recipient and nobody is queued twice (the recipient's state is the cursor); the outbox's own
 * rules make each queued message go out at most once (domains/whatsapp/outbound/README.md).
 *
 * Pacing: the outbox holds at most about `lookaheadSeconds` of sends for the broadcast; the send governor (GCRA slots
 * per number, and per recipient) sets the actual rate, so a broadcast never earns 130429 (throughput) or 131056 (pair
 * rate) from Meta; a pause cancels the lookahead still queued, so only sends already claimed go out after it.
 */

export interface DispatchOptions {
  sql: Sql
  /** The number's send rate (WHATSAPP_SEND_RATE_PER_SECOND): the outbox is kept about this many per second ahead. */
  ratePerSecond: number
  log?: Logger
  /** Pause between steps. */
  tickMs?: number
  /** One job runs this long, then hands over to a fresh job (a worker is not held forever). */
  runForMs?: number
  /** How many seconds of sends may wait in the outbox. */
  lookaheadSeconds?: number
}

// A sending broadcast holds one worker slot while it feeds the outbox; runs are short so other work interleaves.
const DEFAULTS = { tickMs: 200, runForMs: 10_000, lookaheadSeconds: 1.5 }

export type StepResult =
  | { kind: 'finished'; status: string }
  | { kind: 'continue'; queued: number }
  | { kind: 'wait'; until: Date; reason: string }

/** Runs steps until the broadcast is done, must wait long, or this run's time is up (then a new job continues). */
export async function dispatchBroadcast(options: DispatchOptions, tenantId: string, broadcastId: string): Promise<StepResult> {
  const o = { ...DEFAULTS, ...options }
  const endAt = Date.now() + o.runForMs
  // Unique recipients of the last 24 h, counted once per run and then kept up to date by what this run queues.
  const budget: { used: number | null; oldest: Date | null } = { used: null, oldest: null }
  for (;;) {
    const result = await withTenant(o.sql, tenantId, (tx) => dispatchStep(o, tx, tenantId, broadcastId, budget))
    if (result.kind === 'finished') return result
    const now = Date.now()
    const next = result.kind === 'wait' ? result.until.getTime() : now + (result.queued > 0 ? o.tickMs / 2 : o.tickMs)
    if (next >= endAt) {
      await withTenant(o.sql, tenantId, (tx) => q.enqueueDispatch(tx, tenantId, broadcastId, DISPATCH_BROADCAST_TASK, new Date(Math.max(next, now))))
      return result
    }
    await sleep(Math.max(0, next - now))
  }
}

export async function dispatchStep(
  o: DispatchOptions & typeof DEFAULTS, tx: Tx, tenantId: string, broadcastId: string, budget: { used: number | null; oldest: Date | null },
): Promise<StepResult> {
  let b = await q.lockBroadcast(tx, broadcastId)
  if (!b) return { kind: 'finished', status: 'gone' }
  if (b.status === 'scheduled') {
    if (b.scheduledAt && b.scheduledAt.getTime() > Date.now()) return { kind: 'wait', until: b.scheduledAt, reason: 'scheduled' }
    b = await transition(tx, b, { status: 'sending', started: true }, 'started', { recipients: b.recipientCount, skipped: b.skippedCount, scheduled: true })
  }
  if (b.status !== 'sending') return { kind: 'finished', status: b.status }

  const settled = await q.settleQueued(tx, broadcastId)
  const accepted = b.acceptedCount + settled.accepted
  const failed = b.failedCount + settled.failed
  const pause = async (reason: string, detail: string) => {
    const row = await transition(tx, b!, { status: 'paused', reason, detail }, 'paused', { reason, accepted, failed })
    o.log?.warn({ broadcastId, reason }, 'broadcast paused by itself')
    return { kind: 'finished', status: row.status } as const
  }

  const fail = async (reason: string, detail: string) => {
    const row = await transition(tx, b!, { status: 'failed', reason, detail, finished: true }, 'failed', { reason, accepted, failed })
    o.log?.warn({ broadcastId, reason }, 'broadcast failed')
    return { kind: 'finished', status: row.status } as const
  }

  // Final first (nothing can fix them: failed), then what a person can fix (paused): see lifecycle.ts.
  const [number] = b.phoneNumberId ? await q.findNumber(tx, b.phoneNumberId) : []
  const block = templateBlock(b.templateId ? await q.findTemplateById(tx, b.templateId) : null)
  const numberRefused = numberBlock(number)
  if (numberRefused?.final) return fail(numberRefused.reason, numberRefused.detail)
  if (block?.final) return fail(block.reason, block.detail)
  if (block) return pause(block.reason, block.detail)
  if (numberRefused) return pause(numberRefused.reason, numberRefused.detail)
  const done = accepted + failed
  if (done >= b.failureMinSample && accepted === 0) {
    // Not one send accepted, and every failure is Meta's verdict that resending cannot change (template missing at
    // Meta, parameters refused, recipients unreachable): resuming would only repeat it. Failures that were retried
    // to exhaustion (throttling, Meta's outages, no answer) or refused by our outbox may pass: those pause instead.
    const codes = await q.failureCodes(tx, broadcastId)
    const permanent = codes.filter((c) => c.code !== null && classifyGraphError(400, c.code) === 'fail')
    if (permanent.reduce((n, c) => n + c.n, 0) >= failed) {
      return fail('all_sends_failed', `none of the ${done} settled sends was accepted; Meta refused each for good (${permanent.map((c) => `${c.code}: ${c.n}`).join(', ')})`)
    }
  }
  if (done >= b.failureMinSample && failed / done > b.failureThreshold) {
    return pause('failure_threshold', `${failed} of ${done} settled sends failed (${((100 * failed) / done).toFixed(1)}% > ${(100 * b.failureThreshold).toFixed(1)}%)`)
  }
  if (!number) return { kind: 'finished', status: b.status } // unreachable (numberBlock failed it); narrows the type
  // Every variation's template is checked like the broadcast's own, each step: a new phase can bring new variations.
  const experiment = await experimentPlanFor(tx, b, number.businessAccountId)
  if (experiment && !experiment.ok) return pause(experiment.problem.reason, experiment.problem.message)

  const capacity = Math.ceil(o.ratePerSecond * o.lookaheadSeconds) - settled.inFlight
  if (!(await q.hasPending(tx, broadcastId))) {
    if (settled.inFlight > 0) return { kind: 'wait', until: new Date(Date.now() + o.tickMs), reason: 'last sends in flight' }
    const stats = await q.broadcastStats(tx, broadcastId, b.experimentId !== null)
    const row = await transition(tx, b, { status: 'completed', finished: true }, 'completed', {
      recipients: stats.recipients, sent: stats.sent + stats.delivered + stats.read + stats.replied, failed: stats.failed, skipped: stats.skipped,
    })
    return { kind: 'finished', status: row.status }
  }
  if (capacity <= 0) return { kind: 'wait', until: new Date(Date.now() + o.tickMs), reason: 'outbox full' }

  const limit = tierLimit(number.messagingLimit)
  if (limit !== null && budget.used === null) {
    const usage = await q.templateRecipientsLast24h(tx, number.id)
    budget.used = usage.n
    budget.oldest = usage.oldest
  }
  const remaining = tierRemaining(limit, budget.used ?? 0)
  if (remaining <= 0) {
    // The oldest recipient of the window ages out first; a fresh count then tells how many may go.
    const until = new Date(Math.max(Date.now() + 60_000, (budget.oldest?.getTime() ?? Date.now()) + 24 * 3600_000 + 1_000))
    await q.setStatusDetail(tx, broadcastId, `waiting for the 24-hour messaging limit (${number.messagingLimit ?? 'TIER_250'}: ${limit} unique recipients) until ${until.toISOString()}`)
    budget.used = null
    return { kind: 'wait', until, reason: 'messaging limit' }
  }

  const batch = await q.nextPending(tx, broadcastId, Math.min(capacity, remaining))
  const suppressed = await suppressedRecipients(tx, batch.map((r) => r.waId))
  const ready: { r: q.PendingRecipient; body: ReturnType<typeof templateBody> }[] = []
  for (const r of batch) {
    // Erased after the snapshot: never sent (the outbox would refuse it too, counted as a failure).
    if (suppressed.has(r.waId)) {
      await q.markSkipped(tx, r.id, 'suppressed', 'erased and suppressed after the audience was taken')
      continue
    }
    if (r.optedOutAt) {
      await q.markSkipped(tx, r.id, 'opted_out', `opted out on ${r.optedOutAt.toISOString()}, after the audience was taken`)
      continue
    }
    try {
      ready.push({ r, body: templateBody({ to: r.waId, name: b.templateName, language: b.templateLanguage, components: r.components as TemplateComponent[] }) })
    } catch (err) {
      if (!(err instanceof ZodError)) throw err
      await q.markSkipped(tx, r.id, 'invalid_parameter', err.issues.map((i) => i.message).join('; ').slice(0, 500))
    }
  }
  // Only those about to be sent are assigned, all of the step's in one go (sticky: a lead keeps its variation in the
  // phase, broadcast after broadcast). Whoever the experiment does not take gets the broadcast's own template.
  const plan = experiment?.ok ? experiment.plan : null
  const variations = plan ? await templateVariationsForLeads(tx, plan.experiment, ready.flatMap(({ r }) => (r.leadId ? [r.leadId] : []))) : new Map<string, LeadTemplateVariation>()
  const queued: { id: string; messageId: string; variationKey: string | null; phase: number | null }[] = []
  const exposures: Parameters<typeof recordPendingTemplateExposures>[1][number][] = []
  for (const { r, body: own } of ready) {
    const variation = r.leadId ? variations.get(r.leadId) : undefined
    const template = variation ? plan!.templates.get(variation.variationKey) : undefined
    const body = template ? templateBody({ to: r.waId, name: template.name, language: template.language, components: r.components as TemplateComponent[] }) : own
    const { id: messageId } = await queueOutbound(tx, {
      tenantId, phoneId: number.id, leadId: r.leadId, waId: r.waId, body, templateId: template?.id ?? b.templateId, source: 'broadcast', requestedBy: `broadcast:${broadcastId}`,
    })
    queued.push({ id: r.id, messageId, variationKey: template ? variation!.variationKey : null, phase: template ? variation!.phase : null })
    // Pending until Meta reports it delivered (then an exposure), or failed (never one): the POST /v1/messages path.
    if (template) exposures.push({ messageId, leadId: variation!.personId, variation: variation!, templateName: template.name })
  }
  await recordPendingTemplateExposures(tx, exposures)
  await q.markQueued(tx, queued)
  if (queued.length > 0) await q.bumpDispatched(tx, broadcastId, queued.length)
  if (b.statusDetail) await q.setStatusDetail(tx, broadcastId, null)
  if (budget.used !== null) budget.used += queued.length
  return { kind: 'continue', queued: queued.length }
}
