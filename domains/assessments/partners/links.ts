/**
 * The public side of partner links: a visit of /l/<code> (a click, stored per the privacy rules in privacy.ts, then a
 * redirect to the assessment's web start or to a wa.me chat whose pre-filled text carries ref:<code>), the WhatsApp
 * message that carries that ref back (attributed to the lead and conversation in the inbound transaction), and
 * sessions started through a link (web: POST /assessments/links/<code>/sessions; WhatsApp: the bot's assessment node
 * asks linkOfConversation). Each touch moves the subject's last-touch attribution; the first is kept.
 */
import { randomBytes } from 'node:crypto'
import { isbot } from 'isbot'
import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { linkVisits } from '../../../lib/metrics.js'
import { leadForAnonymous, linkClicked, linkInactiveVisit, linkStarted, recordPlatformEvents } from '../../analytics/platform-events.js'
import type { Demographics } from '../schemas.js'
import { sessionContext, startSession, stateView } from '../service.js'
import * as q from './queries.js'
import { addressHash, clip, truncatedAddress, VISITOR_ID } from './privacy.js'
import { publicBaseUrl } from './service.js'

export const newVisitorId = () => randomBytes(16).toString('base64url')
export const validVisitorId = (v: string | undefined | null): string | null => (v && VISITOR_ID.test(v) ? v : null)

export interface VisitContext {
  ip: string
  userAgent?: string
  referrer?: string
  /** The visitor cookie as sent (validated here); a new one is made when missing or malformed. */
  visitorId?: string | null
  /** Overrides the link's destination (`?to=whatsapp`). */
  to?: 'web' | 'whatsapp'
  at?: Date
}

/** The lead a visitor id is linked to (analytics.identities, a merged lead's survivor), else null. */
const leadOfVisitor = async (tx: Tx, visitorId: string) => (await leadForAnonymous(tx, [visitorId])).get(visitorId) ?? null

export interface VisitOutcome { location: string; visitorId: string; outcome: 'web' | 'whatsapp' }

const notFound = (code: string) => new AppError('NOT_FOUND', `link ${code} not found or not active`)

/** The wa.me deep link: the business number's digits and the pre-filled text with the code. */
export const whatsappLink = (config: Pick<Config, 'LINK_WHATSAPP_TEXT'>, businessNumber: string, code: string) =>
  `https://wa.me/${businessNumber.replace(/\D/g, '')}?text=${encodeURIComponent(config.LINK_WHATSAPP_TEXT.replaceAll('{code}', code))}`

export const webStartUrl = (config: Pick<Config, 'ASSESSMENT_WEB_START_PATH' | 'ASSESSMENTS_PUBLIC_URL' | 'HOST' | 'WEBHOOKS_PORT'>, publicKey: string, code: string) =>
  `${publicBaseUrl(config)}${config.ASSESSMENT_WEB_START_PATH.replaceAll('{publicKey}', encodeURIComponent(publicKey)).replaceAll('{code}', encodeURIComponent(code))}`

const usable = (t: q.LinkTarget) => t.link.active && t.partnerStatus === 'active' && t.assessmentStatus === 'published'

/**
 * A visit of /l/<code>. Unknown code: 404, counted in the metric only (no tenant to store it under). A known link that
 * is off (inactive, its partner not active, its assessment not published): stored as an `inactive` click, then 404.
 * Otherwise the click, the visitor's attribution and link.clicked commit together before the redirect is answered.
 * Crawlers and link-preview fetchers are redirected but stored as bots: not attributed, not in the events.
 */
export async function visitLink(sql: Sql, config: Config, code: string, ctx: VisitContext): Promise<VisitOutcome> {
  const found = await q.findPublicLink(sql, code)
  if (!found || found.tenantStatus !== 'active') {
    linkVisits.inc({ outcome: 'unknown' })
    throw notFound(code)
  }
  const at = ctx.at ?? new Date()
  const visitorId = validVisitorId(ctx.visitorId) ?? newVisitorId()
  const bot = isbot(ctx.userAgent ?? '')
  const click = (outcome: 'web' | 'whatsapp' | 'inactive', partnerId: string): q.NewClick => ({
    linkId: found.id, partnerId, outcome, visitorId: bot ? null : visitorId, ipPrefix: truncatedAddress(ctx.ip), ipHash: addressHash(ctx.ip),
    userAgent: clip(ctx.userAgent, 500), referrer: clip(ctx.referrer, 1000), isBot: bot, at,
  })
  const result = await withTenant(sql, found.tenantId, async (tx) => {
    const target = await q.findLinkTarget(tx, found.id)
    if (!target) return null
    if (!usable(target)) {
      const clickId = await q.insertClick(tx, found.tenantId, click('inactive', target.link.partnerId))
      await recordPlatformEvents(tx, [linkInactiveVisit({ clickId, linkId: target.link.id, partnerId: target.link.partnerId, linkCode: target.link.linkCode, at })])
      return null
    }
    // A WhatsApp link of a tenant without an active number cannot open a chat: the web start still works.
    const wanted = ctx.to ?? target.link.destination
    const outcome: 'web' | 'whatsapp' = wanted === 'whatsapp' && target.businessNumber ? 'whatsapp' : 'web'
    // A visitor already known as a lead (linkAnonymousIds joined them): the click and the touch are the lead's.
    const leadId = bot ? null : await leadOfVisitor(tx, visitorId)
    const clickId = await q.insertClick(tx, found.tenantId, { ...click(outcome, target.link.partnerId), leadId })
    if (!bot) {
      await q.touchAttribution(tx, found.tenantId, { partnerId: target.link.partnerId, linkId: target.link.id, channel: outcome, at, visitorId, leadId })
      await recordPlatformEvents(tx, [linkClicked({ clickId, linkId: target.link.id, partnerId: target.link.partnerId, linkCode: target.link.linkCode, outcome, visitorId, leadId, at })])
    }
    const location = outcome === 'whatsapp'
      ? whatsappLink(config, target.businessNumber!, target.link.linkCode)
      : webStartUrl(config, target.assessmentPublicKey, target.link.linkCode)
    return { location, outcome }
  })
  if (!result) {
    linkVisits.inc({ outcome: 'inactive' })
    throw notFound(code)
  }
  linkVisits.inc({ outcome: result.outcome })
  return { ...result, visitorId }
}

// ---------------------------------------------------------------------------------------------------------------
// WhatsApp: the pre-filled text comes back as the lead's message.

/** `ref:<code>` anywhere in a message (the pre-filled text, or the lead typing it): the code, else null. */
export function referralCodeIn(text: string | undefined | null): string | null {
  if (!text) return null
  // Not the analytics visitor token `[ref:<anonymousId>]` (platform-events anonymousIdInText), which is bracketed.
  const m = /(?<!\[)\bref:([A-Za-z0-9_-]{4,64})\b/i.exec(text)
  return m ? m[1]! : null
}

export interface InboundReferral { tenantId: string; leadId: string; phoneId: string; text: string | undefined; at: string }

/**
 * Called from the inbound hook (domains/conversations/inbound-hook.ts) inside the transaction that stored the messages,
 * after their conversations exist: every message naming an active link's code becomes a WhatsApp touch of its lead,
 * with the conversation, in three statements for the whole batch. Codes of links that are off, or not this tenant's,
 * are ignored (the message itself goes on to the bot as usual).
 */
export async function recordWhatsAppReferrals(tx: Tx, messages: readonly InboundReferral[]): Promise<number> {
  const withCode = messages.flatMap((m) => {
    const code = referralCodeIn(m.text)
    return code ? [{ ...m, code }] : []
  })
  if (withCode.length === 0) return 0
  const links = new Map((await q.findLinksByCodes(tx, [...new Set(withCode.map((m) => m.code))]))
    .filter((l) => l.active && l.partnerStatus === 'active').map((l) => [l.linkCode, l]))
  const touches = withCode.filter((m) => links.has(m.code))
  if (touches.length === 0) return 0
  const conversations = await q.conversationsOf(tx, touches.map((m) => ({ lead_id: m.leadId, phone_id: m.phoneId })))
  const conversationOf = new Map(conversations.map((c) => [`${c.leadId}:${c.phoneId}`, c.id]))
  const rows = touches
    .map((m) => ({
      tenant_id: m.tenantId, lead_id: m.leadId, conversation_id: conversationOf.get(`${m.leadId}:${m.phoneId}`) ?? null,
      partner_id: links.get(m.code)!.partnerId, link_id: links.get(m.code)!.id, at: m.at,
    }))
    .sort((a, b) => (a.lead_id < b.lead_id ? -1 : a.lead_id > b.lead_id ? 1 : 0))
  return (await q.touchWhatsAppAttributions(tx, rows)).length
}

/**
 * The link a WhatsApp conversation came through (its last touch), for the assessment node's startSession: null when
 * the conversation was never attributed. Read in the bot's transaction.
 */
export async function linkOfConversation(tx: Tx, conversationId: string): Promise<{ linkId: string; partnerId: string } | null> {
  const a = await q.findAttribution(tx, { conversationId })
  return a && a.lastLinkId ? { linkId: a.lastLinkId, partnerId: a.lastPartnerId } : null
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions through a link.

export interface LinkForStart { tenantId: string; linkId: string; partnerId: string; assessmentId: string; linkCode: string }

/**
 * The link behind POST /assessments/links/<code>/sessions, or 404 (counted as for a visit: an inactive link's attempt
 * is stored as an `inactive` click).
 */
export async function resolveLinkForStart(sql: Sql, code: string, ctx: { ip: string; userAgent?: string }): Promise<LinkForStart> {
  const found = await q.findPublicLink(sql, code)
  if (!found || found.tenantStatus !== 'active') {
    linkVisits.inc({ outcome: 'unknown' })
    throw notFound(code)
  }
  const target = await withTenant(sql, found.tenantId, async (tx) => {
    const t = await q.findLinkTarget(tx, found.id)
    if (t && !usable(t)) {
      await q.insertClick(tx, found.tenantId, {
        linkId: t.link.id, partnerId: t.link.partnerId, outcome: 'inactive', visitorId: null, ipPrefix: truncatedAddress(ctx.ip),
        ipHash: addressHash(ctx.ip), userAgent: clip(ctx.userAgent, 500), referrer: null, isBot: isbot(ctx.userAgent ?? ''), at: new Date(),
      })
    }
    return t && usable(t) ? t : null
  })
  if (!target) {
    linkVisits.inc({ outcome: 'inactive' })
    throw notFound(code)
  }
  return { tenantId: found.tenantId, linkId: target.link.id, partnerId: target.link.partnerId, assessmentId: target.link.assessmentId, linkCode: target.link.linkCode }
}

export interface LinkSessionFact {
  tenantId: string; sessionId: string; linkId: string; partnerId: string; channel: 'web' | 'whatsapp'
  leadId?: string | null; visitorId?: string | null; conversationId?: string | null; at: Date
}

/**
 * In the transaction that started the session: the touch (by lead when known, or when the visitor is already linked
 * to one, else by visitor) and link.started. A visitor who becomes a lead later has the touch joined to the lead then
 * (visitors.ts), and keeps it through the session's link_id too (purchases naming the session).
 */
export async function recordLinkSessionStarted(tx: Tx, f: LinkSessionFact): Promise<void> {
  if (f.leadId || f.visitorId) {
    const leadId = f.leadId ?? (f.visitorId ? await leadOfVisitor(tx, f.visitorId) : null)
    await q.touchAttribution(tx, f.tenantId, {
      partnerId: f.partnerId, linkId: f.linkId, channel: f.channel, at: f.at, leadId, visitorId: f.visitorId ?? null,
      conversationId: f.conversationId ?? null,
    })
  }
  await recordPlatformEvents(tx, [linkStarted({ sessionId: f.sessionId, linkId: f.linkId, partnerId: f.partnerId, leadId: f.leadId ?? null, channel: f.channel, visitorId: f.visitorId ?? null, at: f.at })])
}


/**
 * POST /assessments/links/<code>/sessions: a web session through the link, started by the engine's startSession with
 * the link and partner, the touch (by visitor cookie) and link.started in the same transaction. Answers as the
 * engine's own start does: the resume token (once) and the state.
 */
export async function startLinkWebSession(sql: Sql, code: string, body: { demographics?: Demographics }, ctx: { ip: string; userAgent?: string; visitorId?: string | null }) {
  const link = await resolveLinkForStart(sql, code, ctx)
  const visitorId = validVisitorId(ctx.visitorId)
  return withTenant(sql, link.tenantId, async (tx) => {
    const started = await startSession(tx, {
      assessmentId: link.assessmentId, channel: 'web', linkId: link.linkId, partnerId: link.partnerId,
      ...(body.demographics ? { demographics: body.demographics } : {}),
    })
    await recordLinkSessionStarted(tx, { tenantId: link.tenantId, sessionId: started.session.id, linkId: link.linkId, partnerId: link.partnerId, channel: 'web', visitorId, at: started.session.startedAt })
    return { token: started.token!, state: await stateView(tx, await sessionContext(tx, started.session)) }
  })
}
