/**
 * What a partner reads and does with its own key (keys.ts): its profile and balance, links, clicks, commissions,
 * withdrawals, ledger and report, and withdrawal requests. Every function takes the key's principal and names its
 * partner in every query: the partner is never a parameter a caller can choose. Approvals stay with the tenant's admins.
 */
import type { Config } from '../../../lib/config.js'
import { type Sql, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { type PartnerPrincipal, partnerActor } from './keys.js'
import { commissionView, ledgerView, requestWithdrawal, withdrawalView } from './money.js'
import * as q from './queries.js'
import type { PartnerReport } from './schemas.js'
import { linkView, partnerReport, partnerView } from './service.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The key's partner, checked: the list queries treat a missing partner id as "every partner". */
function partnerOf(p: PartnerPrincipal): string {
  if (p.kind !== 'partner' || !UUID.test(p.partnerId)) throw new AppError('FORBIDDEN', 'this route needs a partner key')
  return p.partnerId
}

const inPartner = <T>(sql: Sql, p: PartnerPrincipal, fn: (tx: Parameters<Parameters<typeof withTenant>[2]>[0], partnerId: string) => Promise<T>) => {
  const partnerId = partnerOf(p)
  return withTenant(sql, p.tenantId, (tx) => fn(tx, partnerId))
}

export const portalProfile = (sql: Sql, p: PartnerPrincipal) =>
  inPartner(sql, p, async (tx, partnerId) => {
    const partner = await q.findPartner(tx, partnerId)
    if (!partner) throw new AppError('NOT_FOUND', 'partner not found')
    return partnerView(partner)
  })

export const portalLinks = (sql: Sql, config: Config, p: PartnerPrincipal) =>
  inPartner(sql, p, async (tx, partnerId) => (await q.listLinks(tx, partnerId)).map((l) => linkView(config, l)))

export const portalClicks = (sql: Sql, p: PartnerPrincipal, beforeId: string | null, limit: number) =>
  inPartner(sql, p, async (tx, partnerId) => {
    const rows = await q.listClicksOfPartner(tx, partnerId, beforeId, limit)
    return { data: rows.map((r) => ({ ...r, clickedAt: r.clickedAt.toISOString() })), nextCursor: rows.length === limit ? rows[rows.length - 1]!.id : null }
  })

export const portalCommissions = (sql: Sql, p: PartnerPrincipal, status: string | undefined, limit: number) =>
  inPartner(sql, p, async (tx, partnerId) => (await q.listCommissions(tx, { partnerId, ...(status ? { status } : {}) }, limit)).map(commissionView))

export const portalWithdrawals = (sql: Sql, p: PartnerPrincipal, limit: number) =>
  inPartner(sql, p, async (tx, partnerId) => (await q.listWithdrawals(tx, { partnerId }, limit)).map(withdrawalView))

export const portalLedger = (sql: Sql, p: PartnerPrincipal, afterId: string | null, limit: number) =>
  inPartner(sql, p, async (tx, partnerId) => (await q.listLedger(tx, partnerId, afterId, limit)).map(ledgerView))

export const portalReport = (sql: Sql, p: PartnerPrincipal, range: { from?: string; to?: string }): Promise<PartnerReport> =>
  partnerReport(sql, p.tenantId, partnerOf(p), range)

/** A withdrawal the partner requests itself (debited at once; an admin approves and completes it). */
export const portalRequestWithdrawal = (sql: Sql, p: PartnerPrincipal, amount: string, requestId: string | null) =>
  requestWithdrawal(sql, { tenantId: p.tenantId, actor: partnerActor(p), requestId }, partnerOf(p), amount)
