/**
 * Products, purchases, commissions, withdrawals and the ledger.
 *
 * - A purchase (API or the shop's signed webhook) is stored once per shop transaction id and attributed through the
 *   buyer's session, lead, visitor or link code: the commission goes to the last touch, the first is kept beside it.
 * - Its commission is computed by commission-rule.ts and starts `pending`. An admin approves it (the partner's balance
 *   is credited: a ledger entry) or rejects it. Approved commissions become `paid` as completed withdrawals cover them,
 *   oldest first. A refund reverses the commission: pending ones simply end `reversed`; approved or paid ones are
 *   debited from the balance, and what the balance cannot cover (already withdrawn) is owed (`clawback_due`) and
 *   taken from the next credits.
 * - A withdrawal is debited when requested (so the same money cannot be asked for twice), released back if rejected.
 * - Every movement is a row of assessments.ledger_entries; its trigger computes the running balance under the
 *   partner's row lock and refuses one below zero (migration 0035). A withdrawal above the balance is therefore a
 *   failed insert, answered 422, whatever runs concurrently.
 *
 * Locks are always taken commission → partner or withdrawal → partner, never the other way, so concurrent decisions
 * on one partner queue instead of deadlocking.
 */
import { randomBytes } from 'node:crypto'
import type { Config } from '../../../lib/config.js'
import type { SecretBox } from '../../../lib/crypto.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { commissionChanged, leadForAnonymous, linkConverted, linkRefunded, purchaseRecorded, recordPlatformEvents, type PurchaseFact } from '../../analytics/platform-events.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { computeCommission, isPositive, lineAmount, minAmount, subtract } from './commission-rule.js'
import * as q from './queries.js'
import type {
  CommissionView, CreateProductBody, LedgerEntryView, PatchProductBody, ProductView, PurchaseView, RecordPurchaseBody, WithdrawalView,
} from './schemas.js'
import { publicBaseUrl, type Who } from './service.js'

const iso = (d: Date) => d.toISOString()
const isoOrNull = (d: Date | null) => (d === null ? null : d.toISOString())

export const productView = (p: q.ProductRow): ProductView => ({
  id: p.id, sku: p.sku, title: p.title, price: p.price, currency: p.currency, commissionRate: p.commissionRate, active: p.active,
  createdAt: iso(p.createdAt), updatedAt: iso(p.updatedAt),
})

export const commissionView = (c: q.CommissionRow): CommissionView => ({
  id: c.id, purchaseId: c.purchaseId, partnerId: c.partnerId, baseAmount: c.baseAmount, baseRate: c.baseRate, rateSource: c.rateSource,
  tier: c.tier, tierMultiplier: c.tierMultiplier, rate: c.rate, amount: c.amount, currency: c.currency, status: c.status,
  decidedBy: c.decidedBy, reason: c.reason, approvedAt: isoOrNull(c.approvedAt), paidAt: isoOrNull(c.paidAt),
  rejectedAt: isoOrNull(c.rejectedAt), reversedAt: isoOrNull(c.reversedAt), createdAt: iso(c.createdAt),
})

export const purchaseView = (p: q.PurchaseRow, c: q.CommissionRow | null): PurchaseView => ({
  id: p.id, transactionId: p.externalId, source: p.source, productId: p.productId, quantity: p.quantity, amount: p.amount, currency: p.currency,
  leadId: p.leadId, sessionId: p.sessionId, partnerId: p.partnerId, linkId: p.linkId, firstPartnerId: p.firstPartnerId, firstLinkId: p.firstLinkId,
  status: p.status, purchasedAt: iso(p.purchasedAt), refundedAt: isoOrNull(p.refundedAt), commission: c ? commissionView(c) : null,
})

export const withdrawalView = (w: q.WithdrawalRow): WithdrawalView => ({
  id: w.id, partnerId: w.partnerId, amount: w.amount, currency: w.currency, status: w.status, requestedBy: w.requestedBy, decidedBy: w.decidedBy,
  reference: w.reference, reason: w.reason, requestedAt: iso(w.requestedAt), approvedAt: isoOrNull(w.approvedAt),
  completedAt: isoOrNull(w.completedAt), rejectedAt: isoOrNull(w.rejectedAt),
})

export const ledgerView = (e: q.LedgerRow): LedgerEntryView => ({
  id: e.id, kind: e.kind, amount: e.amount, balanceAfter: e.balanceAfter, currency: e.currency, commissionId: e.commissionId,
  withdrawalId: e.withdrawalId, actor: e.actor, createdAt: iso(e.createdAt),
})

const audit = (tx: Tx, who: Who, action: string, targetType: string, targetId: string, details: unknown = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType, targetId, details, requestId: who.requestId ?? undefined })

// ---------------------------------------------------------------------------------------------------------------
// Products and the shop's webhook endpoint

export const createProduct = (sql: Sql, who: Who, body: CreateProductBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await q.insertProduct(tx, who.tenantId, body)
    await audit(tx, who, 'partner_product.created', 'partner_product', p.id, { sku: p.sku, price: p.price, commissionRate: p.commissionRate })
    return productView(p)
  })

export const listProducts = (sql: Sql, tenantId: string) => withTenant(sql, tenantId, async (tx) => (await q.listProducts(tx)).map(productView))

export const patchProduct = (sql: Sql, who: Who, id: string, body: PatchProductBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await q.updateProduct(tx, id, body)
    if (!p) throw new AppError('NOT_FOUND', `product ${id} not found`)
    await audit(tx, who, 'partner_product.changed', 'partner_product', id, { fields: Object.keys(body) })
    return productView(p)
  })

const shopUrl = (config: Config, publicKey: string) => `${publicBaseUrl(config)}/assessments/shop/${publicKey}/events`

/** Creates or rotates the shop endpoint: a new public key and secret (whsec_…, shown once); the old ones stop working. */
export async function rotateShopEndpoint(sql: Sql, config: Config, secrets: SecretBox, who: Who) {
  const publicKey = `shop_${randomBytes(16).toString('hex')}`
  const secret = `whsec_${randomBytes(32).toString('base64')}`
  return withTenant(sql, who.tenantId, async (tx) => {
    const row = await q.upsertShopEndpoint(tx, who.tenantId, publicKey, secrets.seal(secret))
    await audit(tx, who, 'partner_shop_endpoint.rotated', 'partner_shop_endpoint', who.tenantId)
    return { url: shopUrl(config, row.publicKey), publicKey: row.publicKey, secret, rotatedAt: iso(row.rotatedAt) }
  })
}

export const getShopEndpoint = (sql: Sql, config: Config, tenantId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const row = await q.findShopEndpointOfTenant(tx)
    if (!row) throw new AppError('NOT_FOUND', 'no shop endpoint yet: POST creates one')
    return { url: shopUrl(config, row.publicKey), publicKey: row.publicKey, rotatedAt: iso(row.rotatedAt) }
  })

/** The tenant and secret of a shop endpoint's public key (null: unknown key). */
export async function shopEndpointSecret(sql: Sql, secrets: SecretBox, publicKey: string): Promise<{ tenantId: string; secret: string } | null> {
  const row = await q.findShopEndpoint(sql, publicKey)
  return row ? { tenantId: row.tenantId, secret: secrets.open(row.secretSealed) } : null
}

// ---------------------------------------------------------------------------------------------------------------
// Purchases

interface Attribution { partnerId: string | null; linkId: string | null; firstPartnerId: string | null; firstLinkId: string | null; leadId: string | null }

/**
 * Who gets the purchase: the session's link (last touch) or the lead's, visitor's or code's attribution. A visitor
 * who has become a lead is that lead (their attribution was joined to the lead's; visitors.ts), so the purchase names
 * the lead and is attributed by the lead's row.
 */
async function attributionFor(tx: Tx, c: RecordPurchaseBody['customer']): Promise<Attribution> {
  const session = c.sessionId ? await q.findSessionAttribution(tx, c.sessionId) : null
  if (c.sessionId && !session) throw new AppError('UNPROCESSABLE', `session ${c.sessionId} not found`)
  const visitorLead = !c.leadId && !session?.leadId && c.visitorId ? (await leadForAnonymous(tx, [c.visitorId])).get(c.visitorId) ?? null : null
  const leadId = c.leadId ?? session?.leadId ?? visitorLead
  const stored = leadId ? await q.findAttribution(tx, { leadId }) : null
  const byVisitor = !stored && c.visitorId ? await q.findAttribution(tx, { visitorId: c.visitorId }) : null
  const a = stored ?? byVisitor
  if (session?.linkId && session.partnerId) {
    return { partnerId: session.partnerId, linkId: session.linkId, firstPartnerId: a?.firstPartnerId ?? session.partnerId, firstLinkId: a ? a.firstLinkId : session.linkId, leadId }
  }
  if (a) return { partnerId: a.lastPartnerId, linkId: a.lastLinkId, firstPartnerId: a.firstPartnerId, firstLinkId: a.firstLinkId, leadId }
  if (c.linkCode) {
    const link = await q.findLinkByCode(tx, c.linkCode)
    if (link) return { partnerId: link.partnerId, linkId: link.id, firstPartnerId: link.partnerId, firstLinkId: link.id, leadId }
  }
  return { partnerId: null, linkId: null, firstPartnerId: null, firstLinkId: null, leadId }
}

export interface RecordedPurchase { purchase: PurchaseView; created: boolean }

/**
 * Records a purchase and its commission in the caller's transaction (the API's or the webhook's). The same transaction
 * id again returns the stored purchase and commission unchanged (`created: false`), whatever the repeat carries.
 */
export async function recordPurchase(tx: Tx, tenantId: string, body: RecordPurchaseBody, source: 'api' | 'webhook'): Promise<RecordedPurchase> {
  const existing = await q.findPurchaseByExternalId(tx, body.transactionId)
  if (existing) return { purchase: purchaseView(existing, await q.findCommissionOfPurchase(tx, existing.id)), created: false }

  const product = await q.findProductBySku(tx, body.sku)
  if (!product) throw new AppError('UNPROCESSABLE', `product ${body.sku} not found`)
  const currency = body.currency ?? product.currency
  if (currency !== product.currency) throw new AppError('BAD_REQUEST', `product ${body.sku} is sold in ${product.currency}, not ${currency}`)
  const amount = body.amount ?? lineAmount(product.price, body.quantity)
  const attribution = await attributionFor(tx, body.customer)
  const at = body.purchasedAt ? new Date(body.purchasedAt) : new Date()

  const purchase = await q.insertPurchase(tx, tenantId, {
    externalId: body.transactionId, source, productId: product.id, quantity: body.quantity, amount, currency,
    leadId: attribution.leadId, sessionId: body.customer.sessionId ?? null, visitorId: body.customer.visitorId ?? null,
    partnerId: attribution.partnerId, linkId: attribution.linkId, firstPartnerId: attribution.firstPartnerId, firstLinkId: attribution.firstLinkId,
    purchasedAt: at,
  })
  if (!purchase) {
    // A concurrent request with the same transaction id committed first: its purchase is the one.
    const stored = (await q.findPurchaseByExternalId(tx, body.transactionId))!
    return { purchase: purchaseView(stored, await q.findCommissionOfPurchase(tx, stored.id)), created: false }
  }

  const fact: PurchaseFact = {
    purchaseId: purchase.id, leadId: purchase.leadId, at, amount, currency, productId: product.id,
    partnerId: purchase.partnerId, linkId: purchase.linkId, firstPartnerId: purchase.firstPartnerId, firstLinkId: purchase.firstLinkId,
  }
  const events = [purchaseRecorded(fact)]
  let commission: q.CommissionRow | null = null
  const partner = purchase.partnerId ? await q.findPartner(tx, purchase.partnerId) : null
  // A terminated partner earns nothing more; a balance kept in another currency cannot take this sale's commission.
  if (partner && partner.status !== 'terminated' && partner.currency === currency) {
    const parts = computeCommission({ amount, productRate: product.commissionRate, partnerRate: partner.commissionRate, tier: partner.tier })
    commission = await q.insertCommission(tx, tenantId, { purchaseId: purchase.id, partnerId: partner.id, currency, ...parts })
    if (commission) events.push(commissionChanged({ commissionId: commission.id, partnerId: partner.id, purchaseId: purchase.id, linkId: purchase.linkId, status: 'pending', amount: commission.amount, currency, at }))
  }
  if (purchase.linkId && purchase.partnerId) events.push(linkConverted({ ...fact, linkId: purchase.linkId, partnerId: purchase.partnerId }))
  await recordPlatformEvents(tx, events)
  return { purchase: purchaseView(purchase, commission), created: true }
}

export const recordPurchaseByApi = (sql: Sql, who: Who, body: RecordPurchaseBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const r = await recordPurchase(tx, who.tenantId, body, 'api')
    if (r.created) await audit(tx, who, 'partner_purchase.recorded', 'partner_purchase', r.purchase.id, { transactionId: body.transactionId })
    return r
  })

/**
 * A refund: the purchase ends `refunded` and its commission `reversed` (pending: nothing moved; approved or paid: debited,
 * the part the balance cannot cover owed as clawback). A second refund changes nothing.
 */
export async function refundPurchase(tx: Tx, tenantId: string, transactionId: string, at: Date, actor: string): Promise<PurchaseView> {
  const purchase = await q.findPurchaseByExternalId(tx, transactionId, true)
  if (!purchase) throw new AppError('NOT_FOUND', `purchase ${transactionId} not found`)
  const commission = await q.findCommissionOfPurchase(tx, purchase.id, true)
  if (purchase.status === 'refunded') return purchaseView(purchase, commission)
  const refunded = await q.markPurchaseRefunded(tx, purchase.id, at)
  // Commission events carry the row's own status times, so the reports from events and from the tables agree.
  let after = commission
  if (commission && commission.status !== 'rejected' && commission.status !== 'reversed') {
    if (commission.status === 'approved' || commission.status === 'paid') await debit(tx, tenantId, commission, actor)
    after = await q.setCommissionStatus(tx, commission.id, 'reversed', actor, 'purchase refunded')
    await recordPlatformEvents(tx, [commissionChanged({ commissionId: commission.id, partnerId: commission.partnerId, purchaseId: purchase.id, linkId: purchase.linkId, status: 'reversed', amount: commission.amount, currency: commission.currency, at: after!.reversedAt ?? at })])
  }
  // The link's conversion taken back: the partner report's conversions and revenue are net of refunds.
  if (purchase.linkId && purchase.partnerId) {
    await recordPlatformEvents(tx, [linkRefunded({ purchaseId: purchase.id, linkId: purchase.linkId, partnerId: purchase.partnerId, leadId: purchase.leadId, amount: purchase.amount, currency: purchase.currency, at })])
  }
  return purchaseView(refunded, after)
}

/** Takes a reversed commission back: what the balance holds now, the rest owed. */
async function debit(tx: Tx, tenantId: string, c: q.CommissionRow, actor: string) {
  const partner = (await q.findPartner(tx, c.partnerId, true))!
  const take = minAmount(partner.balance, c.amount)
  if (isPositive(take)) {
    await q.insertLedgerEntry(tx, tenantId, { partnerId: c.partnerId, kind: 'commission_reversed', amount: `-${take}`, currency: c.currency, commissionId: c.id, actor })
  }
  const owed = subtract(c.amount, take)
  if (isPositive(owed)) await q.setClawbackDue(tx, c.partnerId, subtract(partner.clawbackDue, `-${owed}`))
}

export const refundPurchaseByApi = (sql: Sql, who: Who, transactionId: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const p = await refundPurchase(tx, who.tenantId, transactionId, new Date(), who.actor)
    await audit(tx, who, 'partner_purchase.refunded', 'partner_purchase', p.id, { transactionId })
    return p
  })

export const listPurchases = (sql: Sql, tenantId: string, partnerId: string | null, limit: number) =>
  withTenant(sql, tenantId, async (tx) => {
    const rows = await q.listPurchases(tx, partnerId, limit)
    return Promise.all(rows.map(async (p) => purchaseView(p, await q.findCommissionOfPurchase(tx, p.id))))
  })

// ---------------------------------------------------------------------------------------------------------------
// Commissions

export const listCommissions = (sql: Sql, tenantId: string, f: { partnerId?: string; status?: string }, limit: number) =>
  withTenant(sql, tenantId, async (tx) => (await q.listCommissions(tx, f, limit)).map(commissionView))

const conflict = (what: string, current: string) => new AppError('CONFLICT', `${what} is ${current}`, { details: { status: current } })

/** pending → approved (the balance is credited, an owed clawback settled from it) or pending → rejected. */
export async function decideCommission(sql: Sql, who: Who, id: string, decision: 'approve' | 'reject', reason: string | null): Promise<CommissionView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const c = await q.findCommission(tx, id, true)
    if (!c) throw new AppError('NOT_FOUND', `commission ${id} not found`)
    if (c.status !== 'pending') throw conflict(`commission ${id}`, c.status)
    const status = decision === 'approve' ? 'approved' : 'rejected'
    const after = await q.setCommissionStatus(tx, id, status, who.actor, reason)
    if (status === 'approved') {
      const credit = await q.insertLedgerEntry(tx, who.tenantId, { partnerId: c.partnerId, kind: 'commission_approved', amount: c.amount, currency: c.currency, commissionId: id, actor: who.actor })
      const partner = (await q.findPartner(tx, c.partnerId, true))!
      const settle = minAmount(credit.balanceAfter, partner.clawbackDue)
      if (isPositive(settle)) {
        await q.insertLedgerEntry(tx, who.tenantId, { partnerId: c.partnerId, kind: 'clawback', amount: `-${settle}`, currency: c.currency, commissionId: id, actor: who.actor })
        await q.setClawbackDue(tx, c.partnerId, subtract(partner.clawbackDue, settle))
      }
    }
    const linkId = (await q.findPurchase(tx, c.purchaseId))?.linkId ?? null
    await recordPlatformEvents(tx, [commissionChanged({ commissionId: id, partnerId: c.partnerId, purchaseId: c.purchaseId, linkId, status, amount: c.amount, currency: c.currency, at: (status === 'approved' ? after.approvedAt : after.rejectedAt) ?? new Date() })])
    await audit(tx, who, `partner_commission.${status}`, 'partner_commission', id, { amount: c.amount, reason })
    return commissionView(after)
  })
}

// ---------------------------------------------------------------------------------------------------------------
// Withdrawals

const INSUFFICIENT = 'ledger_entries_balance_after_check'
const isInsufficientBalance = (err: unknown) =>
  !!err && typeof err === 'object' && (err as { code?: string }).code === '23514' && (err as { constraint_name?: string }).constraint_name === INSUFFICIENT

/** Requested by the partner (an admin acting for them): debited at once, so the balance shows what may still be asked for. */
export async function requestWithdrawal(sql: Sql, who: Who, partnerId: string, amount: string): Promise<WithdrawalView> {
  try {
    return await withTenant(sql, who.tenantId, async (tx) => {
      const partner = await q.findPartner(tx, partnerId)
      if (!partner) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
      if (partner.status === 'terminated') throw new AppError('CONFLICT', `partner ${partnerId} is terminated`)
      const w = await q.insertWithdrawal(tx, who.tenantId, { partnerId, amount, currency: partner.currency, requestedBy: who.actor })
      await q.insertLedgerEntry(tx, who.tenantId, { partnerId, kind: 'withdrawal_requested', amount: `-${amount}`, currency: partner.currency, withdrawalId: w.id, actor: who.actor })
      await audit(tx, who, 'partner_withdrawal.requested', 'partner_withdrawal', w.id, { partnerId, amount })
      return withdrawalView(w)
    })
  } catch (err) {
    if (!isInsufficientBalance(err)) throw err
    const balance = await withTenant(sql, who.tenantId, async (tx) => (await q.findPartner(tx, partnerId))?.balance ?? '0.00')
    throw new AppError('UNPROCESSABLE', `the withdrawal of ${amount} is above the partner's balance`, { details: { balance, requested: amount } })
  }
}

export async function decideWithdrawal(sql: Sql, who: Who, id: string, action: 'approve' | 'reject' | 'complete', extra: { reason?: string; reference?: string }): Promise<WithdrawalView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const w = await q.findWithdrawal(tx, id, true)
    if (!w) throw new AppError('NOT_FOUND', `withdrawal ${id} not found`)
    const allowed: Record<typeof action, q.WithdrawalRow['status'][]> = { approve: ['requested'], reject: ['requested', 'approved'], complete: ['approved'] }
    if (!allowed[action].includes(w.status)) throw conflict(`withdrawal ${id}`, w.status)
    const status = ({ approve: 'approved', reject: 'rejected', complete: 'completed' } as const)[action]
    const after = await q.setWithdrawalStatus(tx, id, status, who.actor, extra)
    if (status === 'rejected') {
      await q.insertLedgerEntry(tx, who.tenantId, { partnerId: w.partnerId, kind: 'withdrawal_released', amount: w.amount, currency: w.currency, withdrawalId: id, actor: who.actor })
    }
    if (status === 'completed') {
      await q.findPartner(tx, w.partnerId, true)
      const paid = await q.markCoveredCommissionsPaid(tx, w.partnerId)
      const now = new Date()
      const events = await Promise.all(paid.map(async ({ id: commissionId }) => {
        const c = (await q.findCommission(tx, commissionId))!
        const linkId = (await q.findPurchase(tx, c.purchaseId))?.linkId ?? null
        return commissionChanged({ commissionId, partnerId: c.partnerId, purchaseId: c.purchaseId, linkId, status: 'paid', amount: c.amount, currency: c.currency, at: c.paidAt ?? now })
      }))
      await recordPlatformEvents(tx, events)
    }
    await audit(tx, who, `partner_withdrawal.${status}`, 'partner_withdrawal', id, { amount: w.amount, ...extra })
    return withdrawalView(after)
  })
}

export const listWithdrawals = (sql: Sql, tenantId: string, f: { partnerId?: string; status?: string }, limit: number) =>
  withTenant(sql, tenantId, async (tx) => (await q.listWithdrawals(tx, f, limit)).map(withdrawalView))

export const listLedger = (sql: Sql, tenantId: string, partnerId: string, afterId: string | null, limit: number) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findPartner(tx, partnerId))) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
    return (await q.listLedger(tx, partnerId, afterId, limit)).map(ledgerView)
  })
