import { z, ZodError } from 'zod'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../../lib/pagination.js'
import { broadcastEvent, recordPlatformEvents } from '../../analytics/platform-events.js'
import { normalizePhone, phoneMatchKey, type CountryCode } from '../../marketing/leads/identity/phone.js'
import { suppressedRecipients } from '../../privacy/suppression.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { templateBody } from '../../whatsapp/graph/bodies.js'
import { cancelQueuedOutbound } from '../../whatsapp/outbound/service.js'
import { checkTemplateParameters } from '../../whatsapp/outbound/template-params.js'
import { experimentPlanFor, problemError, resolveBroadcastExperiment, templateBlock } from './experiment.js'
import { assertTransition, TRANSITIONS } from './lifecycle.js'
import { renderParameters, sampleComponents } from './params.js'
import * as q from './queries.js'
import {
  type AudienceInput, type BroadcastStatus, type BroadcastView, type CreateBroadcastBody, DISPATCH_BROADCAST_TASK, ParameterMapping, type StoredAudience,
  type UpdateBroadcastBody,
} from './schemas.js'

export interface Actor {
  tenantId: string
  actor: string
  requestId?: string
}

type AudienceReport = NonNullable<BroadcastView['audienceReport']>

export function toView(b: q.BroadcastRow, extra: Pick<BroadcastView, 'stats' | 'audienceReport'> = {}): BroadcastView {
  return {
    id: b.id, name: b.name, campaignId: b.campaignId, status: b.status, statusReason: b.statusReason, statusDetail: b.statusDetail,
    allowedTransitions: [...TRANSITIONS[b.status]], phoneNumberId: b.phoneNumberId,
    template: { id: b.templateId, name: b.templateName, language: b.templateLanguage },
    experiment: b.experimentId && b.experimentKey ? { id: b.experimentId, key: b.experimentKey } : null,
    audience: b.audience, parameters: b.parameters, scheduledAt: b.scheduledAt, scheduleTimezone: b.scheduleTimezone,
    failureThreshold: b.failureThreshold, failureMinSample: b.failureMinSample, version: b.version, materialisedAt: b.materialisedAt,
    startedAt: b.startedAt, finishedAt: b.finishedAt, createdAt: b.createdAt, updatedAt: b.updatedAt, ...extra,
  }
}

const tenantSettings = (tx: Tx, tenantId: string) =>
  tx<{ timezone: string; defaultCountry: string }[]>`select timezone, default_country from core.tenants where id = ${tenantId}`.then((r) => r[0]!)

/** Templates may go out only while Meta has them APPROVED and their quality is not RED (also each variation's, experiment.ts). */
export { templateBlock }

/**
 * Can the broadcast's number send? `final`: the number was removed (a broadcast is bound to its number), so a sending
 * broadcast fails; a disabled number or a rejected token can be fixed (enable it, rotate the token), so it pauses.
 */
export function numberBlock(n: q.SendingNumber | undefined): { reason: string; detail: string; final: boolean } | null {
  if (!n) return { reason: 'number_gone', detail: 'the WhatsApp number was removed', final: true }
  if (n.tokenInvalidAt) return { reason: 'number_unavailable', detail: "Meta rejected the number's access token", final: false }
  if (n.status !== 'active') return { reason: 'number_unavailable', detail: 'the WhatsApp number is disabled', final: false }
  return null
}

/** Everything a broadcast needs to be valid, checked and resolved: the number, the campaign, the template, the audience. */
async function prepare(tx: Tx, tenantId: string, input: CreateBroadcastBody) {
  const numbers = await q.findNumber(tx, input.phoneNumberId)
  if (numbers.length === 0) throw new AppError(input.phoneNumberId ? 'NOT_FOUND' : 'UNPROCESSABLE', input.phoneNumberId ? `WhatsApp number ${input.phoneNumberId} not found` : 'no WhatsApp number is connected')
  if (numbers.length > 1) {
    throw new AppError('BAD_REQUEST', 'this tenant has several WhatsApp numbers: say which with phoneNumberId', { details: [{ in: 'body', path: 'phoneNumberId', message: 'required here' }] })
  }
  const number = numbers[0]!
  if (input.campaignId && !(await q.campaignExists(tx, input.campaignId))) throw new AppError('NOT_FOUND', `campaign ${input.campaignId} not found`)
  const { name, language } = input.template
  const template = await q.findTemplateByName(tx, number.businessAccountId, name, language)
  if (!template) throw new AppError('NOT_FOUND', `template ${name} (${language}) not found for this number's business account`)
  if (template.status !== 'APPROVED') throw new AppError('UNPROCESSABLE', `template ${name} (${language}) is ${template.status}; only APPROVED templates can be broadcast`, { details: { templateStatus: template.status } })
  const mapping = ParameterMapping.parse(input.parameters)
  const issues = checkTemplateParameters(template.components, sampleComponents(mapping))
  if (issues.length > 0) {
    throw new AppError('BAD_REQUEST', `the parameters do not fit template ${name}: ${issues.map((i) => i.message).join('; ')}`, {
      details: issues.map((i) => ({ in: 'body', path: 'parameters', message: i.message })),
    })
  }
  const experiment = input.experiment ? await resolveBroadcastExperiment(tx, input.experiment, { name, language }, number.businessAccountId, mapping) : null
  const { audience, report } = await resolveAudience(tx, tenantId, input.audience)
  return { number, template, mapping, experimentId: experiment?.id ?? null, audience, report }
}

/** A filter is kept as is; a list is resolved to lead ids now, and what matched nobody is reported (not stored). */
async function resolveAudience(tx: Tx, tenantId: string, input: AudienceInput): Promise<{ audience: StoredAudience; report?: AudienceReport }> {
  if (input.type === 'filter') return { audience: input }
  const { defaultCountry } = await tenantSettings(tx, tenantId)
  const report: AudienceReport = { unknownPhones: [], invalidPhones: [], unknownLeadIds: [] }
  const ids = new Set<string>()
  const byKey = new Map<string, { index: number; phone: string }[]>()
  ;(input.phones ?? []).forEach((phone, index) => {
    const e164 = normalizePhone(phone, defaultCountry as CountryCode)?.e164
    if (!e164) return report.invalidPhones.push({ index, phone })
    const key = phoneMatchKey(e164)
    byKey.set(key, [...(byKey.get(key) ?? []), { index, phone: e164 }])
  })
  for (let i = 0, keys = [...byKey.keys()]; i < keys.length; i += 5_000) {
    const found = await q.leadsByPhoneKey(tx, keys.slice(i, i + 5_000))
    for (const l of found) {
      ids.add(l.id)
      byKey.delete(l.phoneKey)
    }
  }
  for (const entries of byKey.values()) report.unknownPhones.push(...entries)
  report.unknownPhones.sort((a, b) => a.index - b.index)
  const given = [...new Set(input.leadIds ?? [])]
  for (let i = 0; i < given.length; i += 5_000) {
    const chunk = given.slice(i, i + 5_000)
    const found = await q.resolveLeadIds(tx, chunk)
    const known = new Set(found.map((l) => l.id))
    for (const l of found) ids.add(l.resolved)
    report.unknownLeadIds.push(...chunk.filter((id) => !known.has(id)))
  }
  return { audience: { type: 'list', leadIds: [...ids], unknownPhones: report.unknownPhones.length, invalidPhones: report.invalidPhones.length }, report }
}

export async function createBroadcast(sql: Sql, who: Actor, input: CreateBroadcastBody): Promise<BroadcastView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const p = await prepare(tx, who.tenantId, input)
    const row = await q.insertBroadcast(tx, {
      tenantId: who.tenantId, name: input.name, campaignId: input.campaignId ?? null, phoneNumberId: p.number.id, templateId: p.template.id,
      templateName: p.template.name, templateLanguage: p.template.language, experimentId: p.experimentId, audience: p.audience, parameters: p.mapping,
      failureThreshold: input.failureThreshold ?? 0.2, failureMinSample: input.failureMinSample ?? 50, createdBy: who.actor,
    })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'broadcast.created', targetType: 'broadcast', targetId: row.id, details: { template: p.template.name, ...(input.experiment ? { experiment: input.experiment } : {}) }, requestId: who.requestId })
    return toView(row, p.report ? { audienceReport: p.report } : {})
  })
}

async function lockOr404(tx: Tx, id: string) {
  const b = await q.lockBroadcast(tx, id)
  if (!b) throw new AppError('NOT_FOUND', `broadcast ${id} not found`)
  return b
}

function checkVersion(b: q.BroadcastRow, version: number | undefined) {
  if (version !== undefined && version !== b.version) {
    throw new AppError('CONFLICT', `broadcast ${b.id} is at version ${b.version}, not ${version}; reload it and apply the change again`, { details: { currentVersion: b.version } })
  }
}

/** Only a draft changes; the result is validated as a whole, exactly like a new one. */
export async function updateBroadcast(sql: Sql, who: Actor, id: string, change: UpdateBroadcastBody): Promise<BroadcastView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const b = await lockOr404(tx, id)
    checkVersion(b, change.version)
    if (b.status !== 'draft') throw new AppError('CONFLICT', `only a draft broadcast can be edited; this one is ${b.status}`, { details: { status: b.status } })
    const stored = b.audience as StoredAudience
    const merged: CreateBroadcastBody = {
      name: change.name ?? b.name,
      campaignId: change.campaignId ?? b.campaignId ?? undefined,
      phoneNumberId: change.phoneNumberId ?? b.phoneNumberId ?? undefined,
      template: change.template ?? { name: b.templateName, language: b.templateLanguage },
      parameters: change.parameters ?? ParameterMapping.parse(b.parameters),
      // null removes the experiment; left out, the broadcast keeps naming it (checked again against the new content).
      experiment: change.experiment === null ? undefined : change.experiment ?? b.experimentKey ?? undefined,
      audience: change.audience ?? (stored.type === 'filter' ? stored : { type: 'list', leadIds: stored.leadIds }),
      failureThreshold: change.failureThreshold ?? b.failureThreshold,
      failureMinSample: change.failureMinSample ?? b.failureMinSample,
    }
    const p = await prepare(tx, who.tenantId, merged)
    const row = await q.updateDraft(tx, id, {
      name: merged.name, campaignId: merged.campaignId ?? null, phoneNumberId: p.number.id, templateId: p.template.id, templateName: p.template.name,
      templateLanguage: p.template.language, experimentId: p.experimentId, audience: p.audience, parameters: p.mapping, failureThreshold: merged.failureThreshold!, failureMinSample: merged.failureMinSample!,
    })
    return toView(row, p.report && change.audience ? { audienceReport: p.report } : {})
  })
}

export async function getBroadcast(sql: Sql, tenantId: string, id: string): Promise<BroadcastView> {
  return withTenant(sql, tenantId, async (tx) => {
    const b = await q.getBroadcast(tx, id)
    if (!b) throw new AppError('NOT_FOUND', `broadcast ${id} not found`)
    return toView(b, { stats: await q.broadcastStats(tx, id, b.experimentId !== null) })
  })
}

const ListCursor = keysetCursor(z.uuid())

export async function listBroadcasts(sql: Sql, tenantId: string, query: { limit: number; cursor?: string; status?: string; campaignId?: string }) {
  const before = query.cursor ? decodeCursor(query.cursor, ListCursor) : null
  return withTenant(sql, tenantId, async (tx) => {
    const rows = await q.listBroadcasts(tx, query, query.limit + 1, before)
    const page = rows.slice(0, query.limit)
    const last = page.at(-1)
    return { data: page.map((b) => toView(b)), nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.createdAt.toISOString(), id: last.id }) : null }
  })
}

export async function deleteBroadcast(sql: Sql, who: Actor, id: string): Promise<void> {
  await withTenant(sql, who.tenantId, async (tx) => {
    const b = await lockOr404(tx, id)
    if (b.status !== 'draft') throw new AppError('CONFLICT', `only a draft broadcast can be deleted; this one is ${b.status} (stop it instead)`, { details: { status: b.status, allowed: TRANSITIONS[b.status] } })
    await q.deleteDraft(tx, id)
  })
}

export const listRecipients = (sql: Sql, tenantId: string, id: string, query: Parameters<typeof q.listRecipients>[2]) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.getBroadcast(tx, id))) throw new AppError('NOT_FOUND', `broadcast ${id} not found`)
    const data = await q.listRecipients(tx, id, query)
    return { data, nextAfter: data.length === query.limit ? data.at(-1)!.id : null }
  })

// ---------------------------------------------------------------------------------------------------------
// Transitions.

type EventKind = Parameters<typeof broadcastEvent>[0]

/** A transition and its analytics event, in the caller's transaction (which holds the broadcast's row lock). */
export async function transition(tx: Tx, b: q.BroadcastRow, change: q.StatusChange, event: EventKind | null, properties: Record<string, unknown> = {}) {
  assertTransition(b.status, change.status)
  const closed = change.status === 'paused' || change.status === 'stopped' || change.status === 'failed' ? await closeOutbox(tx, b, change.status) : {}
  const row = await q.setStatus(tx, b.id, change)
  if (event) {
    await recordPlatformEvents(tx, [broadcastEvent(event, { broadcastId: row.id, campaignId: row.campaignId, transition: row.transitions, at: new Date(), templateName: row.templateName }, { ...properties, ...closed })])
  }
  return row
}

const NOT_SENT: Record<'stopped' | 'failed', { reason: string; detail: string }> = {
  stopped: { reason: 'stopped', detail: 'the broadcast was stopped before this recipient was sent' },
  failed: { reason: 'broadcast_failed', detail: 'the broadcast failed before this recipient was sent' },
}

/**
 * Pausing, stopping or failing takes the broadcast's messages that no sender has claimed yet back out of the outbox,
 * in the transition's own transaction: after it commits, nothing more of the broadcast goes out except the sends
 * already claimed (`sending`), which finish. The dispatcher holds the same row lock for each step, so no step
 * interleaves; the sender claims under the send row's lock, so each queued message is either cancelled here or
 * claimed there, never both (domains/whatsapp/outbound/queries.ts, cancelQueuedSends). A pause puts those recipients
 * back to pending (resume queues them again, once); a stop or a failure skips them with the reason, and the pending
 * ones with them, so a final broadcast has nobody left pending.
 */
async function closeOutbox(tx: Tx, b: q.BroadcastRow, to: 'paused' | 'stopped' | 'failed') {
  await q.settleQueued(tx, b.id)
  const cancelled = await cancelQueuedOutbound(tx, await q.queuedMessageIds(tx, b.id), `broadcast ${b.id} ${to}`)
  if (to === 'paused') return { cancelled: cancelled.length, requeued: await q.requeueRecipients(tx, b.id, cancelled) }
  return { cancelled: cancelled.length, notSent: await q.skipUnsent(tx, b.id, cancelled, NOT_SENT[to].reason, NOT_SENT[to].detail) }
}

const PAGE = 2_000

/**
 * The audience snapshot: every targeted lead becomes a recipient row, with its rendered parameters, or skipped with
 * the reason (opted out, suppressed, no WhatsApp, a parameter with no value). One transaction, in pages.
 */
export async function materialise(tx: Tx, b: q.BroadcastRow): Promise<{ recipients: number; skipped: number }> {
  if (b.materialisedAt) return { recipients: b.recipientCount, skipped: b.skippedCount }
  const stored = b.audience as StoredAudience
  const mapping = ParameterMapping.parse(b.parameters)
  const source = stored.type === 'filter' ? { filter: stored.filter } : { leadIds: stored.leadIds }
  const seen = new Set<string>()
  let recipients = 0
  let skipped = 0
  for (let after: string | null = null; ;) {
    const leads: q.AudienceLead[] = await q.audiencePage(tx, source, after, PAGE)
    if (leads.length === 0) break
    after = leads.at(-1)!.id
    const waIdOf = (l: q.AudienceLead) => l.waId ?? (l.phoneE164 ? l.phoneE164.replace(/\D/g, '') : null)
    const suppressed = await suppressedRecipients(tx, leads.map(waIdOf).filter((w): w is string => w !== null))
    const rows: q.NewRecipient[] = leads.map((l) => {
      const waId = waIdOf(l)
      const skip = (reason: string, detail: string | null = null): q.NewRecipient => ({ leadId: l.id, waId, state: 'skipped', skipReason: reason, skipDetail: detail, components: null })
      if (!waId) return skip('no_whatsapp', 'the lead has no WhatsApp id or phone number')
      if (l.optedOutAt) return skip('opted_out', `opted out on ${l.optedOutAt.toISOString()}`)
      if (suppressed.has(waId)) return skip('suppressed', 'erased and suppressed (privacy.suppressions)')
      if (seen.has(waId)) return skip('duplicate_recipient', 'another lead of the audience has the same WhatsApp number')
      const rendered = renderParameters(l, mapping)
      if (!rendered.ok) return skip('missing_parameter', rendered.reason)
      try {
        templateBody({ to: waId, name: b.templateName, language: b.templateLanguage, components: rendered.components })
      } catch (err) {
        if (!(err instanceof ZodError)) throw err
        return skip('invalid_parameter', err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ').slice(0, 500))
      }
      seen.add(waId)
      return { leadId: l.id, waId, state: 'pending', skipReason: null, skipDetail: null, components: rendered.components }
    })
    const n = await q.insertRecipients(tx, b.tenantId, b.id, rows)
    recipients += n.pending + n.skipped
    skipped += n.skipped
    if (leads.length < PAGE) break
  }
  await q.recordMaterialised(tx, b.id, { recipients, skipped })
  return { recipients, skipped }
}

async function assertSendable(tx: Tx, b: q.BroadcastRow) {
  const block = templateBlock(b.templateId ? await q.findTemplateById(tx, b.templateId) : null)
  if (block) {
    throw new AppError('UNPROCESSABLE', `${block.detail}; only APPROVED templates with a quality other than RED can be broadcast${block.final ? ' (stop this broadcast)' : ''}`, { details: { reason: block.reason } })
  }
  const [number] = b.phoneNumberId ? await q.findNumber(tx, b.phoneNumberId) : []
  const refused = numberBlock(number)
  if (refused) {
    throw new AppError('UNPROCESSABLE', `${refused.detail}; ${refused.final ? 'stop this broadcast' : 'enable the number or rotate its token first'}`, { details: { reason: refused.reason } })
  }
  const experiment = number ? await experimentPlanFor(tx, b, number.businessAccountId) : null
  if (experiment && !experiment.ok) throw problemError(experiment.problem)
}

export async function scheduleBroadcast(sql: Sql, who: Actor, id: string, scheduledAt: string, version?: number, now = new Date()): Promise<BroadcastView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const b = await lockOr404(tx, id)
    checkVersion(b, version)
    assertTransition(b.status, 'scheduled')
    await assertSendable(tx, b)
    const { timezone } = await tenantSettings(tx, who.tenantId)
    const hasOffset = /(Z|[+-]\d{2}:?\d{2})$/.test(scheduledAt)
    const at = hasOffset ? new Date(scheduledAt) : await q.localToInstant(tx, scheduledAt, timezone)
    if (at.getTime() <= now.getTime()) {
      throw new AppError('BAD_REQUEST', `scheduledAt ${at.toISOString()} (${timezone}) is in the past; start the broadcast instead`, { details: [{ in: 'body', path: 'scheduledAt', message: 'must be in the future' }] })
    }
    const counts = await materialise(tx, b)
    const row = await transition(tx, b, { status: 'scheduled', scheduledAt: at, scheduleTimezone: timezone }, 'scheduled', { scheduledAt: at.toISOString(), ...counts })
    await q.enqueueDispatch(tx, who.tenantId, id, DISPATCH_BROADCAST_TASK, at)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'broadcast.scheduled', targetType: 'broadcast', targetId: id, details: { scheduledAt: at.toISOString() }, requestId: who.requestId })
    return toView(row, { stats: await q.broadcastStats(tx, id, row.experimentId !== null) })
  })
}

/**
 * One person's action on a broadcast, in one transaction under its row lock: `change` makes the transition (and its
 * side effects), then the audit entry and the view with fresh stats.
 */
function act(sql: Sql, who: Actor, id: string, action: string, change: (tx: Tx, b: q.BroadcastRow) => Promise<q.BroadcastRow>): Promise<BroadcastView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const row = await change(tx, await lockOr404(tx, id))
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: `broadcast.${action}`, targetType: 'broadcast', targetId: id, requestId: who.requestId })
    return toView(row, { stats: await q.broadcastStats(tx, id, row.experimentId !== null) })
  })
}

/** Starts now (from draft or scheduled): the snapshot is taken if it was not, and the dispatcher is queued. */
export const startBroadcast = (sql: Sql, who: Actor, id: string, version?: number) =>
  act(sql, who, id, 'started', async (tx, b) => {
    checkVersion(b, version)
    assertTransition(b.status, 'sending')
    if (b.status === 'paused') throw new AppError('CONFLICT', 'a paused broadcast is resumed, not started', { details: { allowed: TRANSITIONS.paused } })
    await assertSendable(tx, b)
    const counts = await materialise(tx, b)
    const row = await transition(tx, b, { status: 'sending', started: true }, 'started', counts)
    await q.enqueueDispatch(tx, who.tenantId, id, DISPATCH_BROADCAST_TASK)
    return row
  })

export const pauseBroadcast = (sql: Sql, who: Actor, id: string) =>
  act(sql, who, id, 'paused', (tx, b) => transition(tx, b, { status: 'paused', reason: 'manual', detail: `paused by ${who.actor}` }, 'paused', { reason: 'manual' }))

/** Back to sending where it stopped (the pending recipients); refused while the template still cannot be sent. */
export const resumeBroadcast = (sql: Sql, who: Actor, id: string) =>
  act(sql, who, id, 'resumed', async (tx, b) => {
    assertTransition(b.status, 'sending')
    if (b.status !== 'paused') throw new AppError('CONFLICT', `only a paused broadcast can be resumed; this one is ${b.status}`, { details: { allowed: TRANSITIONS[b.status] } })
    await assertSendable(tx, b)
    const row = await transition(tx, b, { status: 'sending' }, 'resumed', { pausedFor: b.statusReason })
    await q.enqueueDispatch(tx, who.tenantId, id, DISPATCH_BROADCAST_TASK)
    return row
  })

/** Final: nobody else is sent; messages waiting in the outbox are cancelled, only sends already claimed finish. */
export const stopBroadcast = (sql: Sql, who: Actor, id: string) =>
  act(sql, who, id, 'stopped', async (tx, b) => {
    const stats = await q.broadcastStats(tx, id, b.experimentId !== null)
    const row = await transition(tx, b, { status: 'stopped', reason: 'manual', detail: `stopped by ${who.actor}`, finished: true }, 'stopped', { pending: stats.pending })
    await q.removeDispatch(tx, id)
    return row
  })

/** A scheduled broadcast back to draft: its snapshot is dropped (it is taken again when rescheduled). */
export const unscheduleBroadcast = (sql: Sql, who: Actor, id: string) =>
  act(sql, who, id, 'unscheduled', async (tx, b) => {
    assertTransition(b.status, 'draft')
    await q.removeDispatch(tx, id)
    await q.dropSnapshot(tx, id)
    return transition(tx, b, { status: 'draft', scheduledAt: null }, null)
  })

export type { BroadcastStatus }
