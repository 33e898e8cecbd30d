/**
 * Partners (a tenant's distributors) and their links: the admin side (create, change, list, report). The public side
 * (visits, WhatsApp referrals, sessions through a link) is links.ts; the money is money.ts.
 */
import { randomBytes } from 'node:crypto'
import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
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
 * Per link of a partner and in total: clicks (bots and inactive visits apart), unique visitors, starts and completions
 * of sessions through the link, conversions and revenue (purchases attributed to the link, last touch), commissions
 * by status. Read from the facts the events are recorded from (clicks, sessions, purchases, commissions): the analytics
 * rollups carry no partner or link dimension (yet), and these tables are indexed by link.
 */
export async function partnerReport(sql: Sql, tenantId: string, partnerId: string, range: { from?: string; to?: string }): Promise<PartnerReport> {
  const to = range.to ?? new Date(Date.now() + 1000).toISOString()
  const from = range.from ?? new Date(new Date(to).getTime() - 30 * DAY).toISOString()
  if (new Date(from) >= new Date(to)) throw new AppError('BAD_REQUEST', '`from` must be before `to`')
  return withTenant(sql, tenantId, async (tx) => {
    const partner = await q.findPartner(tx, partnerId)
    if (!partner) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
    const rows = await q.partnerLinkCounts(tx, partnerId, from, to)
    const links = rows.map(countsView)
    const sum = (f: (c: ReturnType<typeof countsView>) => number) => links.reduce((n, l) => n + f(l), 0)
    const money = (f: (c: ReturnType<typeof countsView>) => string) => centsToString(links.reduce((n, l) => n + toCents(f(l)), 0n))
    return {
      partnerId, currency: partner.currency, from: new Date(from).toISOString(), to: new Date(to).toISOString(), links,
      totals: {
        clicks: sum((l) => l.clicks), uniqueVisitors: sum((l) => l.uniqueVisitors), inactiveClicks: sum((l) => l.inactiveClicks),
        starts: sum((l) => l.starts), completions: sum((l) => l.completions), conversions: sum((l) => l.conversions), revenue: money((l) => l.revenue),
        commissions: {
          pending: money((l) => l.commissions.pending), approved: money((l) => l.commissions.approved), paid: money((l) => l.commissions.paid),
          rejected: money((l) => l.commissions.rejected), reversed: money((l) => l.commissions.reversed),
        },
      },
    }
  })
}

const toCents = (s: string): bigint => {
  const [whole = '0', frac = ''] = s.split('.')
  return BigInt(whole) * 100n + BigInt((frac + '00').slice(0, 2))
}
const centsToString = (c: bigint) => `${c / 100n}.${String(c % 100n).padStart(2, '0')}`
const money2 = (s: string) => centsToString(toCents(s))

const countsView = (r: q.LinkCounts) => ({
  linkId: r.linkId, linkCode: r.linkCode, clicks: r.clicks, uniqueVisitors: r.uniqueVisitors, inactiveClicks: r.inactiveClicks,
  starts: r.starts, completions: r.completions, conversions: r.conversions, revenue: money2(r.revenue),
  commissions: { pending: money2(r.pending), approved: money2(r.approved), paid: money2(r.paid), rejected: money2(r.rejected), reversed: money2(r.reversed) },
})
