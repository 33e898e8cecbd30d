import { createHash } from 'node:crypto'
import type postgres from 'postgres'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { inferCountry } from './enrichment/country.js'
import { classifyAcquisition } from './enrichment/referrer.js'
import { sourceForHost } from './enrichment/sources.js'
import { parseUrl } from './enrichment/text.js'
import * as iq from './identity-queries.js'
import { type EventRow, recordEvents, recordEventsFrom } from './service.js'
import { type Attribution, type IntakeEvent, LINK_ANONYMOUS_TASK } from './schemas.js'
import { isLinkVisitorId, joinVisitorsToLeads } from '../assessments/partners/visitors.js'

/**
 * Platform events: what the product itself does, as events in analytics.events next to the client events. Every
 * domain builds its events here (name, dedupe key, properties: docs in /work/notes/contracts.md, "Event names") and
 * records them with `recordPlatformEvents` inside the transaction of the fact, so an event commits with its fact or
 * not at all, and a replayed fact (a redelivered webhook, a retried job) adds nothing: its dedupe key is the fact's
 * own stable id.
 *
 * Dedupe keys: `lead:created:<leadId>`, `lead:merged:<mergedId>`, `lead:status:<leadId>:<from>:<to>:<at>`,
 * `lead:qualified:<leadId>` and `lead:converted:<leadId>` (the first time only: the funnel counts leads, not
 * toggles), `wa:sent:<wamid>`, `wa:status:<wamid>:<delivered|read|failed>`, `bot:started:<conversationId>:<eventId>`,
 * `bot:completed:<conversationId>:<eventId>`, `bot:handover:<conversationId>:<handedOverAt>`; form views are client
 * events (`evt:<id>`, the pixel's id derived from form, visitor and day).
 */

/** Records platform events built below: recordEvents, named for what it is. Returns how many were new. */
export const recordPlatformEvents = (tx: Tx, rows: readonly EventRow[]): Promise<number> => recordEvents(tx, rows)

const iso = (at: Date | string) => (at instanceof Date ? at.toISOString() : new Date(at).toISOString())

// ---------------------------------------------------------------------------------------------------------------
// Leads (domains/marketing/leads records these wherever a lead is created, merged or changes status).

export interface LeadCreatedFact {
  leadId: string
  at: Date | string
  /** marketing.leads.source: `web_form`, `whatsapp`, `whatsapp_ad`, `api`, … */
  leadSource: string
  /** marketing.leads.source_details: the form's utm/pageUrl/referrer, or the click-to-WhatsApp referral. */
  sourceDetails: unknown
  phoneE164?: string | null
}

const field = (v: unknown, key: string): unknown => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined)

/** `{ utm_source: … }` (a form's meta) or `{ source: … }` (the event context's shape) as classifyAcquisition reads it. */
const utmOf = (utm: unknown) => {
  if (!utm || typeof utm !== 'object') return undefined
  const u = utm as Record<string, unknown>
  return { source: u.utm_source ?? u.source, medium: u.utm_medium ?? u.medium, campaign: u.utm_campaign ?? u.campaign, term: u.utm_term ?? u.term, content: u.utm_content ?? u.content }
}

/**
 * Where a lead came from, as the acquisition columns of its lead.created event: a click-to-WhatsApp ad (a
 * referral on its first message) is channel `whatsapp` with the ad's network as source (the referral's source URL, or
 * `facebook`: Meta runs them); a plain first WhatsApp message is `whatsapp` / `whatsapp`; a form submission is
 * classified like a page view, from its UTM, landing page and referrer (enrichment/referrer.ts). Country from the phone.
 */
export function leadAttribution(f: Pick<LeadCreatedFact, 'leadSource' | 'sourceDetails' | 'phoneE164'>): Attribution {
  const country = inferCountry({ phoneE164: f.phoneE164 ?? undefined })
  const countryCols = country ? { country: country.code, countryFrom: country.from } : {}
  const referral = field(f.sourceDetails, 'referral')
  if (referral && typeof referral === 'object') {
    const url = parseUrl(field(referral, 'sourceUrl'))
    const host = url?.hostname.replace(/^www\./, '') ?? null
    return { source: (host && sourceForHost(host)?.name) || 'facebook', channel: 'whatsapp', referrerHost: host, ...countryCols }
  }
  if (f.leadSource === 'whatsapp' || f.leadSource === 'whatsapp_ad') return { source: 'whatsapp', channel: 'whatsapp', referrerHost: null, ...countryCols }
  const a = classifyAcquisition({ referrer: field(f.sourceDetails, 'referrer'), pageUrl: field(f.sourceDetails, 'pageUrl'), utm: utmOf(field(f.sourceDetails, 'utm')) })
  return { source: a.source, channel: a.channel, referrerHost: a.referrerHost, utm: a.utm, ...countryCols }
}

export const leadCreated = (f: LeadCreatedFact): EventRow => ({
  name: 'lead.created', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `lead:created:${f.leadId}`, source: 'marketing',
  properties: { leadSource: f.leadSource, ...(typeof field(f.sourceDetails, 'formId') === 'string' ? { formId: field(f.sourceDetails, 'formId') } : {}) },
  attribution: leadAttribution(f),
})

/** Filed under the survivor (the merged lead's events move there too). A lead is merged at most once. */
export const leadMerged = (f: { survivorId: string; mergedId: string; at: Date | string; reason: string }): EventRow => ({
  name: 'lead.merged', leadId: f.survivorId, occurredAt: iso(f.at), dedupeKey: `lead:merged:${f.mergedId}`, source: 'marketing',
  properties: { mergedLeadId: f.mergedId, reason: f.reason },
})

export interface LeadStatusFact {
  leadId: string; from: string; to: string; at: Date | string; actor?: string
  /**
   * False for a survivor taking the merged lead's status in a merge: the merged lead's own lead.qualified /
   * lead.converted moved to the survivor with its other events, so the person is not counted twice.
   */
  milestones?: boolean
}

/**
 * A real change only (from ≠ to): lead.status_changed, plus lead.qualified / lead.converted the first time the lead
 * reaches that status. `at` is the change's transaction time, so the key is stable within it and a retried job,
 * which finds the status already changed, changes nothing and records nothing.
 */
export function leadStatusChanged(f: LeadStatusFact): EventRow[] {
  if (f.from === f.to) return []
  const at = iso(f.at)
  const rows: EventRow[] = [{
    name: 'lead.status_changed', leadId: f.leadId, occurredAt: at, dedupeKey: `lead:status:${f.leadId}:${f.from}:${f.to}:${at}`, source: 'marketing',
    properties: { from: f.from, to: f.to, ...(f.actor ? { actor: f.actor.split(':')[0] } : {}) },
  }]
  if (f.milestones !== false && (f.to === 'qualified' || f.to === 'converted')) {
    rows.push({ name: `lead.${f.to}`, leadId: f.leadId, occurredAt: at, dedupeKey: `lead:${f.to}:${f.leadId}`, source: 'marketing', properties: { from: f.from } })
  }
  return rows
}

// ---------------------------------------------------------------------------------------------------------------
// WhatsApp.

/** Meta accepted the message (the send call answered with a wamid). */
export const whatsappMessageSent = (f: { messageId: string; wamid: string; leadId: string | null; at: Date | string; templateName?: string | null; source?: string }): EventRow => ({
  name: 'whatsapp.message_sent', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `wa:sent:${f.wamid}`, source: 'whatsapp',
  properties: { messageId: f.messageId, ...(f.templateName ? { templateName: f.templateName } : {}), ...(f.source ? { sentBy: f.source } : {}) },
})

/**
 * The same, in the caller's statement (WhatsApp's markAccepted): `relation` selects message_id, wamid, lead_id,
 * occurred_at, template_name, source (who sent it: bot, api, campaign).
 */
export const whatsappMessageSentFrom = (tx: Tx, relation: postgres.Fragment) =>
  recordEventsFrom(tx, tx`
    select 'whatsapp.message_sent' as name, s.lead_id, s.occurred_at,
           jsonb_strip_nulls(jsonb_build_object('messageId', s.message_id, 'templateName', s.template_name, 'sentBy', s.source)) as properties,
           'wa:sent:' || s.wamid as dedupe_key, 'whatsapp' as source
      from (${relation}) s`)

/**
 * Status events of outbound messages, derived from their status history in the caller's statement (WhatsApp's
 * refresh of message statuses): `relation` selects wamid, status, occurred_at, lead_id, message_id, error_code,
 * template_name, one row per (wamid, status) as first seen. `delivered`, `read` (and `played`, a voice note heard: read)
 * and `failed` each become one event per message, whatever order or how often they arrive: the key is the pair. A
 * `read` also records `delivered` (at the read's time) when that has not come first.
 */
export const whatsappStatusEventsFrom = (tx: Tx, relation: postgres.Fragment) =>
  recordEventsFrom(tx, tx`
    select 'whatsapp.message_' || k.kind as name, s.lead_id, s.occurred_at,
           jsonb_strip_nulls(jsonb_build_object('messageId', s.message_id, 'templateName', s.template_name,
                                                'errorCode', case when k.kind = 'failed' then s.error_code end)) as properties,
           'wa:status:' || s.wamid || ':' || k.kind as dedupe_key, 'whatsapp' as source
      from (${relation}) s
      -- A read message was delivered, even when Meta's 'delivered' is late or never comes: delivery rates stay right.
      cross join lateral unnest(case s.status when 'delivered' then array['delivered'] when 'read' then array['delivered', 'read']
                                              when 'played' then array['delivered', 'read'] when 'failed' then array['failed']
                                              else array[]::text[] end) as k(kind)
     order by s.occurred_at, k.kind`)

// ---------------------------------------------------------------------------------------------------------------
// The bot (domains/conversations).

export interface BotFact { conversationId: string; flowId: string | null; leadId: string; at: Date | string }

export const botConversationStarted = (f: BotFact & { eventId: string }): EventRow => ({
  name: 'bot.conversation_started', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `bot:started:${f.conversationId}:${f.eventId}`, source: 'bot',
  properties: { flowId: f.flowId, conversationId: f.conversationId },
})

export const botConversationCompleted = (f: BotFact & { eventId: string }): EventRow => ({
  name: 'bot.conversation_completed', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `bot:completed:${f.conversationId}:${f.eventId}`, source: 'bot',
  properties: { flowId: f.flowId, conversationId: f.conversationId },
})

/** Once per handover: the key is its time (a conversation already handed over keeps its time). */
export const botConversationHandedOver = (f: BotFact & { by: 'bot' | 'person' }): EventRow => ({
  name: 'bot.conversation_handed_over', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `bot:handover:${f.conversationId}:${iso(f.at)}`, source: 'bot',
  properties: { ...(f.flowId ? { flowId: f.flowId } : {}), conversationId: f.conversationId, by: f.by },
})

// ---------------------------------------------------------------------------------------------------------------
// Forms: a view, from the pixel (GET /forms/:publicKey/view.gif) or from the site's own events (POST /v1/events
// with name form.viewed and properties.formId). Both are client events, enriched like any page view.

export interface FormViewFact {
  tenantId: string
  formId: string
  anonymousId: string
  /** The page's id for this view, when it sends one: each view counts. Without it, one view per visitor, form and UTC day. */
  viewId?: string
  at: Date
  userAgent?: string
  /** The page showing the form (the pixel request's Referer). */
  pageUrl?: string
  locale?: string
}

/** A UUID (v8 layout: custom) from a name, so the same view always gets the same event id and the inbox stores it once. */
function nameUuid(name: string): string {
  const h = createHash('sha256').update(name).digest()
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

const pageUrlOf = (v: string | undefined) => (v && v.length <= 2000 && /^https?:\/\//i.test(v) && URL.canParse(v) ? v : undefined)

/** The pixel's view as an intake event (its id derived from form, visitor and day, or the page's view id: dedupe). */
export function formViewedEvent(f: FormViewFact): IntakeEvent {
  const day = f.at.toISOString().slice(0, 10)
  const url = pageUrlOf(f.pageUrl)
  return {
    id: nameUuid(`form.viewed:${f.tenantId}:${f.formId}:${f.viewId ? `view:${f.viewId}` : `${f.anonymousId}:${day}`}`),
    name: 'form.viewed',
    type: 'page',
    occurredAt: f.at.toISOString(),
    anonymousId: f.anonymousId,
    properties: { formId: f.formId, via: 'pixel' },
    context: {
      ...(url ? { page: { url } } : {}),
      ...(f.userAgent ? { userAgent: f.userAgent.slice(0, 1000) } : {}),
      ...(f.locale ? { locale: f.locale.slice(0, 35) } : {}),
    },
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Anonymous visitors → leads.

export interface AnonymousLink { anonymousId: string; leadId: string; via: 'form' | 'whatsapp' | 'api' }

/**
 * Links visitors to leads (the first link of an anonymous id wins; a merged lead's survivor is linked) and enqueues
 * the backfill of their earlier events (analytics__link_anonymous) in the caller's transaction. One statement; none
 * when there is nothing to link. Returns the links made now.
 */
export async function linkAnonymousIds(tx: Tx, links: readonly AnonymousLink[]): Promise<{ anonymousId: string; leadId: string }[]> {
  if (links.length === 0) return []
  const made = await iq.insertIdentities(tx, LINK_ANONYMOUS_TASK, links.map((l) => ({ anonymous_id: l.anonymousId, lead_id: l.leadId, via: l.via })))
  // A partner-link visitor's id is its anonymous id: its clicks and attribution join the lead the id now belongs to
  // (the first link's, like the events), in this transaction. Not only for links made now: clicks recorded while
  // this link was being made still name no lead. Other ids (a site's own) cost nothing here.
  const visitors = links.map((l) => l.anonymousId).filter(isLinkVisitorId)
  if (visitors.length > 0) {
    const owners = await leadForAnonymous(tx, visitors)
    await joinVisitorsToLeads(tx, [...owners].map(([visitorId, leadId]) => ({ visitorId, leadId })))
  }
  return made
}

/** The live lead of each linked anonymous id (ids never linked are absent). For sticky assignment and processing. */
export async function leadForAnonymous(tx: Tx, anonymousIds: readonly string[]): Promise<Map<string, string>> {
  if (anonymousIds.length === 0) return new Map()
  const rows = await iq.findLeadsForAnonymous(tx, [...new Set(anonymousIds)])
  return new Map(rows.map((r) => [r.anonymousId, r.leadId]))
}

/** Every anonymous id linked to the lead (merged leads' links moved to it), oldest link first. */
export const anonymousIdsOfLead = (tx: Tx, leadId: string): Promise<string[]> =>
  iq.findAnonymousIdsOfLead(tx, leadId).then((r) => r.map((x) => x.anonymousId))

/** Rows the backfill updates per transaction: a visitor with many events costs many short transactions, never one long one. */
export const BACKFILL_BATCH = 1000

/** One bounded backfill step (the task loops it, a transaction each): earlier events of these visitors get their lead. */
export const linkEarlierEvents = (tx: Tx, anonymousIds: readonly string[], limit = BACKFILL_BATCH): Promise<number> =>
  iq.linkEventsOfAnonymous(tx, anonymousIds, limit)

/**
 * The backfill of a new link (task analytics__link_anonymous): the visitors' events recorded before the link get its
 * lead, BACKFILL_BATCH at a time, each batch in its own short transaction, until none is left. Idempotent (a retry
 * finds fewer rows, then none). Events recorded after the link get the lead when they are processed
 * (queries.ts lockInboxEvents). Returns how many events were linked.
 */
export async function backfillAnonymousEvents(sql: Sql, tenantId: string, anonymousIds: readonly string[], batch = BACKFILL_BATCH): Promise<number> {
  let total = 0
  for (;;) {
    const n = await withTenant(sql, tenantId, (tx) => linkEarlierEvents(tx, anonymousIds, batch))
    total += n
    if (n < batch) return total
  }
}

/**
 * The anonymous id a click-to-WhatsApp link carries in its prefilled text: the site builds
 * `https://wa.me/<number>?text=<greeting> [ref:<anonymousId>]` (see README, "Linking visitors"), so the first
 * message says who the visitor was. The token is distinctive enough not to occur in what people type.
 */
export function anonymousIdInText(text: unknown): string | null {
  if (typeof text !== 'string' || text.length > 4096) return null
  const m = /\[ref:([A-Za-z0-9._-]{8,200})\]/.exec(text)
  return m ? m[1]! : null
}

// ---------------------------------------------------------------------------------------------------------------
// Assessments (domains/assessments): a session started, a question answered, a session completed. Keys are the
// session's own ids (and the answer's revision), so a retried answer or completion adds nothing.

export interface AssessmentFact {
  assessmentId: string
  sessionId: string
  channel: 'web' | 'whatsapp'
  leadId: string | null
  at: Date | string
  linkId?: string | null
  partnerId?: string | null
}

const assessmentProperties = (f: AssessmentFact) => ({
  assessmentId: f.assessmentId, sessionId: f.sessionId, channel: f.channel,
  ...(f.linkId ? { linkId: f.linkId } : {}), ...(f.partnerId ? { partnerId: f.partnerId } : {}),
})

/** `firstQuestionId`: the question shown first (the report's drop-off counts who reached each question). */
export const assessmentStarted = (f: AssessmentFact & { version: number; firstQuestionId?: string | null }): EventRow => ({
  name: 'assessment.started', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:started:${f.sessionId}`, source: 'assessments',
  properties: { ...assessmentProperties(f), version: f.version, ...(f.firstQuestionId ? { firstQuestionId: f.firstQuestionId } : {}) },
})

/** `nextQuestionId`: the question this answer leads to (null: none left), for the drop-off per question. */
export const assessmentAnswered = (f: AssessmentFact & { questionId: string; revision: number; responseMs: number | null; nextQuestionId?: string | null }): EventRow => ({
  name: 'assessment.answered', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:answered:${f.sessionId}:${f.questionId}:${f.revision}`, source: 'assessments',
  properties: {
    ...assessmentProperties(f), questionId: f.questionId, revision: f.revision, ...(f.responseMs !== null ? { responseMs: f.responseMs } : {}),
    ...(f.nextQuestionId !== undefined ? { nextQuestionId: f.nextQuestionId } : {}),
  },
})

export const assessmentCompleted = (f: AssessmentFact & { resultId: string; totalScore: number; band: string | null }): EventRow => ({
  name: 'assessment.completed', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:completed:${f.sessionId}`, source: 'assessments',
  properties: { ...assessmentProperties(f), resultId: f.resultId, totalScore: f.totalScore, band: f.band },
})

/**
 * A re-scoring run (domains/assessments/rescoring.ts) changed a result's total or band: recorded in the batch's
 * transaction, once per run and result (a retried batch adds nothing). `previousTotalScore`/`previousBand` are the
 * result's score before the run, `totalScore`/`band` after, so the report's score distribution moves the result from
 * the old score to the new one on the day of the re-score (assessment-rollups.ts). Ids and scores only.
 */
export const assessmentRescored = (f: {
  assessmentId: string; sessionId: string; resultId: string; leadId: string | null; runId: string; rubricVersion: number; at: Date | string
  previousTotalScore: number; previousBand: string | null; totalScore: number; band: string | null
}): EventRow => ({
  name: 'assessment.rescored', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:rescored:${f.runId}:${f.resultId}`, source: 'assessments',
  properties: {
    assessmentId: f.assessmentId, sessionId: f.sessionId, resultId: f.resultId, runId: f.runId, rubricVersion: f.rubricVersion,
    previousTotalScore: f.previousTotalScore, previousBand: f.previousBand, totalScore: f.totalScore, band: f.band,
  },
})

/**
 * Marked abandoned by the idle batch (domains/assessments/abandonment.ts). Once per session, the first time: a funnel
 * counts sessions that went idle, not every idle spell of one that came back (`assessment.resumed` counts those).
 */
export const assessmentAbandoned = (f: AssessmentFact & { questionId: string | null; progress: number; idleSeconds: number }): EventRow => ({
  name: 'assessment.abandoned', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:abandoned:${f.sessionId}`, source: 'assessments',
  properties: { ...assessmentProperties(f), ...(f.questionId ? { questionId: f.questionId } : {}), progress: f.progress, idleSeconds: f.idleSeconds },
})

/** An abandoned session taken up again by its participant; `resumedCount` (1, 2, …) keys each return once. */
export const assessmentResumed = (f: AssessmentFact & { resumedCount: number }): EventRow => ({
  name: 'assessment.resumed', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `assessment:resumed:${f.sessionId}:${f.resumedCount}`, source: 'assessments',
  properties: { ...assessmentProperties(f), resumedCount: f.resumedCount },
})

// ---------------------------------------------------------------------------------------------------------------
// Partner links and commissions (domains/assessments/partners). Keys: `link:clicked:<clickId>`,
// `link:started:<sessionId>`, `link:completed:<sessionId>`, `link:converted:<purchaseId>`, `link:refunded:<purchaseId>`,
// `link:inactive:<clickId>`, `purchase:recorded:<purchaseId>`,
// `commission:<status>:<commissionId>`. Every one names the link and partner in properties (linkId, partnerId), so
// per-partner counts can be read from the stream; the purchase's also names the first-touch partner.

export interface LinkFact { linkId: string; partnerId: string; at: Date | string }

export const linkClicked = (f: LinkFact & { clickId: string; linkCode: string; outcome: 'web' | 'whatsapp'; visitorId: string | null; leadId?: string | null }): EventRow => ({
  name: 'link.clicked', leadId: f.leadId ?? null, occurredAt: iso(f.at), dedupeKey: `link:clicked:${f.clickId}`, source: 'partner_link',
  anonymousId: f.visitorId, properties: { linkId: f.linkId, partnerId: f.partnerId, linkCode: f.linkCode, outcome: f.outcome },
})

export const linkStarted = (f: LinkFact & { sessionId: string; leadId: string | null; channel: 'web' | 'whatsapp'; visitorId?: string | null }): EventRow => ({
  name: 'link.started', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `link:started:${f.sessionId}`, source: 'partner_link',
  anonymousId: f.visitorId ?? null, properties: { linkId: f.linkId, partnerId: f.partnerId, sessionId: f.sessionId, channel: f.channel },
})

export const linkCompleted = (f: LinkFact & { sessionId: string; leadId: string | null; channel: 'web' | 'whatsapp' }): EventRow => ({
  name: 'link.completed', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `link:completed:${f.sessionId}`, source: 'partner_link',
  properties: { linkId: f.linkId, partnerId: f.partnerId, sessionId: f.sessionId, channel: f.channel },
})

export interface PurchaseFact {
  purchaseId: string; leadId: string | null; at: Date | string; amount: string; currency: string; productId: string
  partnerId: string | null; linkId: string | null; firstPartnerId: string | null; firstLinkId: string | null
}

export const purchaseRecorded = (f: PurchaseFact): EventRow => ({
  name: 'purchase.recorded', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `purchase:recorded:${f.purchaseId}`, source: 'shop',
  properties: { purchaseId: f.purchaseId, productId: f.productId, amount: f.amount, currency: f.currency, partnerId: f.partnerId, linkId: f.linkId, firstPartnerId: f.firstPartnerId, firstLinkId: f.firstLinkId },
})

/** A purchase attributed to a link: the link's conversion (last touch), with the first touch beside it. */
export const linkConverted = (f: PurchaseFact & { linkId: string; partnerId: string }): EventRow => ({
  name: 'link.converted', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `link:converted:${f.purchaseId}`, source: 'partner_link',
  properties: { linkId: f.linkId, partnerId: f.partnerId, purchaseId: f.purchaseId, amount: f.amount, currency: f.currency, firstPartnerId: f.firstPartnerId, firstLinkId: f.firstLinkId },
})

/** `linkId`: the purchase's (last-touch) link, when it came through one: the partner report splits commissions by link. */
export const commissionChanged = (f: { commissionId: string; partnerId: string; purchaseId: string; linkId?: string | null; status: 'pending' | 'approved' | 'paid' | 'rejected' | 'reversed'; amount: string; currency: string; at: Date | string }): EventRow => ({
  name: `commission.${f.status === 'pending' ? 'created' : f.status}`, leadId: null, occurredAt: iso(f.at), dedupeKey: `commission:${f.status}:${f.commissionId}`, source: 'partner_link',
  properties: { commissionId: f.commissionId, partnerId: f.partnerId, purchaseId: f.purchaseId, ...(f.linkId ? { linkId: f.linkId } : {}), amount: f.amount, currency: f.currency },
})

/** A refund of a purchase attributed to a link: the conversion taken back (the report's revenue is net of it). Once per purchase. */
export const linkRefunded = (f: { purchaseId: string; linkId: string; partnerId: string; leadId: string | null; amount: string; currency: string; at: Date | string }): EventRow => ({
  name: 'link.refunded', leadId: f.leadId, occurredAt: iso(f.at), dedupeKey: `link:refunded:${f.purchaseId}`, source: 'partner_link',
  properties: { linkId: f.linkId, partnerId: f.partnerId, purchaseId: f.purchaseId, amount: f.amount, currency: f.currency },
})

/** A visit to an inactive link (answered 404): counted for the partner report, no visitor kept. */
export const linkInactiveVisit = (f: LinkFact & { clickId: string; linkCode: string }): EventRow => ({
  name: 'link.inactive_visit', leadId: null, occurredAt: iso(f.at), dedupeKey: `link:inactive:${f.clickId}`, source: 'partner_link',
  properties: { linkId: f.linkId, partnerId: f.partnerId, linkCode: f.linkCode },
})

// Campaigns (domains/campaigns records these with the change). `campaignId` fills the rollups' campaign dimension.

export const campaignCreated = (f: { campaignId: string; at: Date | string; type: string; status: string; productId: string | null }): EventRow => ({
  name: 'campaign.created', leadId: null, occurredAt: iso(f.at), dedupeKey: `campaign:created:${f.campaignId}`, source: 'campaigns',
  properties: { campaignId: f.campaignId, type: f.type, status: f.status, ...(f.productId ? { productId: f.productId } : {}) },
})

/** One per real move; the version the move produced makes the key stable within it (a campaign can return to a status). */
export const campaignStatusChanged = (f: { campaignId: string; from: string; to: string; version: number; at: Date | string }): EventRow => ({
  name: 'campaign.status_changed', leadId: null, occurredAt: iso(f.at), dedupeKey: `campaign:status:${f.campaignId}:${f.version}`, source: 'campaigns',
  properties: { campaignId: f.campaignId, from: f.from, to: f.to },
})

// Broadcasts (domains/campaigns/broadcasts records these with each transition, in its transaction).

export interface BroadcastFact {
  broadcastId: string
  campaignId: string | null
  /** The broadcast's transition counter after this one: the key of the event, so a replayed step adds nothing. */
  transition: number
  at: Date | string
  templateName: string
}

/**
 * broadcast.scheduled / started / paused / resumed / completed / stopped / failed: one event per transition, keyed
 * `broadcast:<id>:<n>:<kind>`. Counts (recipients, sent, failed, skipped) and the reason of a pause or failure ride in
 * the properties; `campaignId` is the rollups' campaign dimension.
 */
export const broadcastEvent = (
  kind: 'scheduled' | 'started' | 'paused' | 'resumed' | 'completed' | 'stopped' | 'failed',
  f: BroadcastFact,
  properties: Record<string, unknown> = {},
): EventRow => ({
  name: `broadcast.${kind}`, leadId: null, occurredAt: iso(f.at), dedupeKey: `broadcast:${f.broadcastId}:${f.transition}:${kind}`, source: 'campaigns',
  properties: { broadcastId: f.broadcastId, templateName: f.templateName, ...(f.campaignId ? { campaignId: f.campaignId } : {}), ...properties },
})
