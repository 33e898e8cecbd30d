/**
 * Partners (a tenant's distributors) and their links: the admin side (create, change, list, report). The public side
 * (visits, WhatsApp referrals, sessions through a link) is links.ts; the money is money.ts.
 */
import { randomBytes } from 'node:crypto'
import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { reportRows } from '../../analytics/assessment-rollups.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { metaOf, reportPlan } from '../report.js'
import * as q from './queries.js'
import type {
  CreateLinkBody, CreatePartnerBody, LinkView, PartnerReport, PartnerView, PatchLinkBody, PatchPartnerBody,
} from './schemas.js'

export interface Who { tenantId: string; actor: string; requestId: string | null }

const iso = (d: Date) => d.toISOString()

export const partnerView = (p: q.PartnerRow): PartnerView => ({
  id: p.id, code: p.code, name: p.name, commissionRate: p.commissionRate, tier: p.tier, status: p.status, currency: p.currency,
  balance: p.balance, clawbackDue: p.clawbackDue, createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt),
})

/** Where visitors reach /l/<code>: ASSESSMENTS_PUBLIC_URL, else the webhooks service on this host. */
export const publicBaseUrl = (config: Pick<Config, 'ASSESSMENTS_PUBLIC_URL' | 'HOST' | 'WEBHOOKS_PORT'>) =>
  (config.ASSESSMENTS_PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.WEBHOOKS_PORT}`).replace(/\/$/, '')

export const linkView = (config: Pick<Config, 'ASSESSMENTS_PUBLIC_URL' | 'HOST' | 'WEBHOOKS_PORT'>, l: q.LinkRow): LinkView => ({
  id: l.id, partnerId: l.partnerId, assessmentId: l.assessmentId, linkCode: l.linkCode, campaignName: l.campaignName, type: l.type,
  targetAudience: l.targetAudience, focusArea: l.focusArea, destination: l.destination, phoneNumberId: l.phoneNumberId, active: l.active,
  url: `${publicBaseUrl(config)}/l/${encodeURIComponent(l.linkCode)}`, createdAt: iso(l.createdAt), updatedAt: iso(l.updatedAt),
})

const audit = (tx: Tx, who: Who, action: string, targetType: string, targetId: string, details: unknown = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType, targetId, details, requestId: who.requestId ?? undefined })

export async function createPartner(sql: Sql, who: Who, body: CreatePartnerBody): Promise<PartnerView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const p = await q.insertPartner(tx, who.tenantId, body)
    await audit(tx, who, 'partner.created', 'partner', p.id, { code: p.code, commissionRate: p.commissionRate, tier: p.tier })
    return partnerView(p)
  })
}

export const listPartners = (sql: Sql, tenantId: string) => withTenant(sql, tenantId, async (tx) => (await q.listPartners(tx)).map(partnerView))

export const getPartner = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const p = await q.findPartner(tx, id)
    if (!p) throw new AppError('NOT_FOUND', `partner ${id} not found`)
    return partnerView(p)
  })

export async function patchPartner(sql: Sql, who: Who, id: string, body: PatchPartnerBody): Promise<PartnerView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const before = await q.findPartner(tx, id, true)
    if (!before) throw new AppError('NOT_FOUND', `partner ${id} not found`)
    const after = (await q.updatePartner(tx, id, body))!
    const changes = Object.fromEntries(Object.keys(body).map((k) => [k, { from: before[k as keyof q.PartnerRow], to: after[k as keyof q.PartnerRow] }]))
    await audit(tx, who, 'partner.changed', 'partner', id, { changes })
    return partnerView(after)
  })
}

/** A random code for a link created without one: 12 characters of base64url (72 bits), not guessable from another. */
const randomLinkCode = () => randomBytes(9).toString('base64url')

export async function createLink(sql: Sql, config: Config, who: Who, body: CreateLinkBody): Promise<LinkView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const partner = await q.findPartner(tx, body.partnerId)
    if (!partner) throw new AppError('NOT_FOUND', `partner ${body.partnerId} not found`)
    // The assessment and number must be this tenant's: the foreign keys alone would accept another tenant's ids.
    const refs = await q.visibleReferences(tx, body.assessmentId, body.phoneNumberId)
    if (!refs.assessment) throw new AppError('NOT_FOUND', `assessment ${body.assessmentId} not found`)
    if (!refs.number) throw new AppError('NOT_FOUND', `WhatsApp number ${body.phoneNumberId} not found`)
    const link = await q.insertLink(tx, who.tenantId, { ...body, linkCode: body.linkCode ?? randomLinkCode() })
    await audit(tx, who, 'partner_link.created', 'partner_link', link.id, { partnerId: link.partnerId, linkCode: link.linkCode })
    return linkView(config, link)
  })
}

export const listLinks = (sql: Sql, config: Config, tenantId: string, partnerId: string | null) =>
  withTenant(sql, tenantId, async (tx) => (await q.listLinks(tx, partnerId)).map((l) => linkView(config, l)))

export const getLink = (sql: Sql, config: Config, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const l = await q.findLink(tx, id)
    if (!l) throw new AppError('NOT_FOUND', `link ${id} not found`)
    return linkView(config, l)
  })

export async function patchLink(sql: Sql, config: Config, who: Who, id: string, body: PatchLinkBody): Promise<LinkView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    if (body.phoneNumberId && !(await q.visibleReferences(tx, null, body.phoneNumberId)).number) {
      throw new AppError('NOT_FOUND', `WhatsApp number ${body.phoneNumberId} not found`)
    }
    const l = await q.updateLink(tx, id, body)
    if (!l) throw new AppError('NOT_FOUND', `link ${id} not found`)
    await audit(tx, who, 'partner_link.changed', 'partner_link', id, { fields: Object.keys(body) })
    return linkView(config, l)
  })
}

const DAY = 86_400_000

/**
 * Per link of a partner and in total, over [from, to): clicks (bots and inactive visits apart), visitors (distinct per
 * day, summed over the days), sessions started and completed through the link, conversions and revenue (purchases
 * attributed to the link, last touch, net of refunds in the period), and the commission amounts that entered each
 * status in the period (created: at the purchase's time). Counted by when each thing happened, like the analytics KPIs.
 *
 * Read from the analytics side (domains/analytics/assessment-rollups.ts): the days behind the rollups' watermark from
 * analytics.assessment_rollups, the rest from raw events; `meta` says which. Money is exact: the events carry their
 * amounts as decimal strings and the rollup sums them as numeric. The totals also count what reached the partner
 * without a link (a purchase attributed to the partner by the visitor alone), so they can exceed the links' sum.
 */
export async function partnerReport(sql: Sql, tenantId: string, partnerId: string, range: { from?: string; to?: string; now?: Date; rawOnly?: boolean }): Promise<PartnerReport> {
  const now = range.now ?? new Date()
  const to = range.to ? new Date(range.to) : new Date(now.getTime() + 1000)
  const from = range.from ? new Date(range.from) : new Date(to.getTime() - 30 * DAY)
  if (from >= to) throw new AppError('BAD_REQUEST', '`from` must be before `to`')
  return withTenant(sql, tenantId, async (tx) => {
    const partner = await q.findPartner(tx, partnerId)
    if (!partner) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
    const links = await q.listLinks(tx, partnerId)
    const plan = await reportPlan(tx, from, to, now, range.rawOnly)
    const rows = await reportRows(tx, plan, { partnerId })
    const perLink = links.map((l) => ({ linkId: l.id, linkCode: l.linkCode, ...countsOf(rows.filter((r) => r.linkId === l.id)) }))
    return {
      partnerId, currency: partner.currency, from: from.toISOString(), to: to.toISOString(),
      totals: countsOf(rows), links: perLink, meta: metaOf(plan),
    }
  })
}

/** The report's counts of some rows (one link's, or all of the partner's). */
export function countsOf(rows: { measure: string; events: number; amount: string }[]) {
  const n = (m: string) => rows.filter((r) => r.measure === m).reduce((s, r) => s + r.events, 0)
  const cents = (m: string) => rows.filter((r) => r.measure === m).reduce((s, r) => s + toCents(r.amount), 0n)
  const money = (m: string) => signedCents(cents(m))
  return {
    clicks: n('clicked'), uniqueVisitors: n('visitors'), inactiveClicks: n('inactive'), starts: n('link_started'), completions: n('link_completed'),
    conversions: n('converted') - n('refunded'), revenue: signedCents(cents('converted') - cents('refunded')),
    commissions: {
      created: money('commission_created'), approved: money('commission_approved'), paid: money('commission_paid'),
      rejected: money('commission_rejected'), reversed: money('commission_reversed'),
    },
  }
}

const signedCents = (c: bigint) => (c < 0n ? `-${centsToString(-c)}` : centsToString(c))

/** Exact: money has two decimals (numeric(12, 2)); a sum of them has no more. */
const toCents = (s: string): bigint => {
  const negative = s.startsWith('-')
  const [whole = '0', frac = ''] = (negative ? s.slice(1) : s).split('.')
  const c = BigInt(whole) * 100n + BigInt((frac + '00').slice(0, 2))
  return negative ? -c : c
}
const centsToString = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`
