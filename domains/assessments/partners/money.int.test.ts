import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import { isAppError } from '../../../lib/errors.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeLinkableAssessment, makePartner, makePartnerLink, makeProduct } from '../../../test/factories/assessment-partners-rows.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { decideCommission, decideWithdrawal, recordPurchase, refundPurchase, requestWithdrawal } from './money.js'
import { RecordPurchaseBody } from './schemas.js'
import * as q from './queries.js'

describe('commissions, withdrawals and the ledger', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  const who = () => ({ tenantId: tenant.id, actor: 'api_key:test', requestId: null })
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
  })

  /** A partner with a link, a lead attributed to it, and a product; returns a way to buy. */
  async function setup(o: { tier?: string; partnerRate?: string; productRate?: string | null; price?: string } = {}) {
    return withTenant(db.current.sql, tenant.id, async (tx) => {
      const assessment = await makeLinkableAssessment(tx, tenant.id)
      const partner = await makePartner(tx, tenant.id, { tier: o.tier, commissionRate: o.partnerRate })
      const link = await makePartnerLink(tx, tenant.id, partner.id, assessment.id)
      const product = await makeProduct(tx, tenant.id, { price: o.price ?? '100.00', commissionRate: o.productRate ?? null })
      const lead = await makeLead(tx, tenant.id)
      await q.touchAttribution(tx, tenant.id, { partnerId: partner.id, linkId: link.id, channel: 'web', at: new Date(), leadId: lead.id })
      return { partner, link, product, lead }
    })
  }
  const buy = (s: Awaited<ReturnType<typeof setup>>, transactionId: string, extra: Record<string, unknown> = {}) =>
    withTenant(db.current.sql, tenant.id, (tx) => recordPurchase(tx, tenant.id, RecordPurchaseBody.parse({ transactionId, sku: s.product.sku, customer: { leadId: s.lead.id }, ...extra }), 'api'))
  const partnerOf = (id: string) => withTenant(db.current.sql, tenant.id, (tx) => q.findPartner(tx, id))
  const ledgerOf = (id: string) => withTenant(db.current.sql, tenant.id, (tx) => q.listLedger(tx, id, null, 1000))

  it('records a purchase once per transaction id, with one pending commission for the last-touch partner', async () => {
    const s = await setup({ tier: 'gold', partnerRate: '0.1000' })
    const first = await buy(s, 'order-1001', { quantity: 2 })
    expect(first.created).toBe(true)
    expect(first.purchase).toMatchObject({ amount: '200.00', partnerId: s.partner.id, linkId: s.link.id, firstPartnerId: s.partner.id })
    expect(first.purchase.commission).toMatchObject({ status: 'pending', rate: '0.1250', amount: '25.00', tier: 'gold', rateSource: 'partner' })
    const again = await buy(s, 'order-1001', { quantity: 5 })
    expect(again.created).toBe(false)
    expect(again.purchase.commission!.id).toBe(first.purchase.commission!.id)
    expect(again.purchase.amount).toBe('200.00')
    const [counts] = await db.current.owner<{ purchases: number; commissions: number; events: number }[]>`
      select (select count(*)::int from assessments.purchases where external_id = 'order-1001') as purchases,
             (select count(*)::int from assessments.commissions where purchase_id = ${first.purchase.id}) as commissions,
             (select count(*)::int from analytics.events where tenant_id = ${tenant.id} and properties->>'purchaseId' = ${first.purchase.id}) as events`
    // purchase.recorded, commission.created, link.converted
    expect(counts).toEqual({ purchases: 1, commissions: 1, events: 3 })
  })

  it('keeps the first touch apart from the last', async () => {
    const s = await setup()
    const other = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const partner = await makePartner(tx, tenant.id)
      const assessment = await makeLinkableAssessment(tx, tenant.id)
      const link = await makePartnerLink(tx, tenant.id, partner.id, assessment.id)
      await q.touchAttribution(tx, tenant.id, { partnerId: partner.id, linkId: link.id, channel: 'whatsapp', at: new Date(Date.now() + 1000), leadId: s.lead.id })
      return { partner, link }
    })
    const r = await buy(s, 'order-touch')
    expect(r.purchase).toMatchObject({ partnerId: other.partner.id, linkId: other.link.id, firstPartnerId: s.partner.id, firstLinkId: s.link.id })
    expect(r.purchase.commission!.partnerId).toBe(other.partner.id)
  })

  it('credits the balance on approval, refuses a second decision, and reverses on refund', async () => {
    const s = await setup({ partnerRate: '0.2000' })
    const { purchase } = await buy(s, 'order-2001')
    const approved = await decideCommission(db.current.sql, who(), purchase.commission!.id, 'approve', null)
    expect(approved.status).toBe('approved')
    expect((await partnerOf(s.partner.id))!.balance).toBe('20.00')
    await expect(decideCommission(db.current.sql, who(), purchase.commission!.id, 'reject', null)).rejects.toMatchObject({ code: 'CONFLICT' })

    const refunded = await withTenant(db.current.sql, tenant.id, (tx) => refundPurchase(tx, tenant.id, 'order-2001', new Date(), 'test'))
    expect(refunded).toMatchObject({ status: 'refunded', commission: { status: 'reversed' } })
    expect((await partnerOf(s.partner.id))!.balance).toBe('0.00')
    // A second refund changes nothing.
    await withTenant(db.current.sql, tenant.id, (tx) => refundPurchase(tx, tenant.id, 'order-2001', new Date(), 'test'))
    expect((await ledgerOf(s.partner.id)).map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['commission_approved', '20.00', '20.00'],
      ['commission_reversed', '-20.00', '0.00'],
    ])
  })

  it('owes what a refund cannot take back and settles it from the next approval', async () => {
    const s = await setup({ partnerRate: '0.1000' })
    const a = (await buy(s, 'order-3001')).purchase.commission!
    await decideCommission(db.current.sql, who(), a.id, 'approve', null)
    await requestWithdrawal(db.current.sql, who(), s.partner.id, '8.00')
    await withTenant(db.current.sql, tenant.id, (tx) => refundPurchase(tx, tenant.id, 'order-3001', new Date(), 'test'))
    expect(await partnerOf(s.partner.id)).toMatchObject({ balance: '0.00', clawbackDue: '8.00' })
    const b = (await buy(s, 'order-3002')).purchase.commission!
    await decideCommission(db.current.sql, who(), b.id, 'approve', null)
    expect(await partnerOf(s.partner.id)).toMatchObject({ balance: '2.00', clawbackDue: '0.00' })
    expect((await ledgerOf(s.partner.id)).map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['commission_approved', '10.00', '10.00'],
      ['withdrawal_requested', '-8.00', '2.00'],
      ['commission_reversed', '-2.00', '0.00'],
      ['commission_approved', '10.00', '10.00'],
      ['clawback', '-8.00', '2.00'],
    ])
  })

  it('refuses a withdrawal above the balance with 422 and records nothing', async () => {
    const s = await setup({ partnerRate: '0.1000' })
    const c = (await buy(s, 'order-4001')).purchase.commission!
    await decideCommission(db.current.sql, who(), c.id, 'approve', null)
    const err = await requestWithdrawal(db.current.sql, who(), s.partner.id, '10.01').catch((e) => e)
    expect(isAppError(err) && err.code).toBe('UNPROCESSABLE')
    expect(err.details).toEqual({ balance: '10.00', requested: '10.01' })
    const [w] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.withdrawals where partner_id = ${s.partner.id}`
    expect(w!.n).toBe(0)
  })

  it('releases a rejected withdrawal and marks commissions paid as completed withdrawals cover them, oldest first', async () => {
    const s = await setup({ partnerRate: '0.1000' })
    const c1 = (await buy(s, 'order-5001')).purchase.commission!
    const c2 = (await buy(s, 'order-5002')).purchase.commission!
    await decideCommission(db.current.sql, who(), c1.id, 'approve', null)
    await decideCommission(db.current.sql, who(), c2.id, 'approve', null)
    const rejected = await requestWithdrawal(db.current.sql, who(), s.partner.id, '20.00')
    await decideWithdrawal(db.current.sql, who(), rejected.id, 'reject', { reason: 'bank details missing' })
    expect((await partnerOf(s.partner.id))!.balance).toBe('20.00')

    const w = await requestWithdrawal(db.current.sql, who(), s.partner.id, '15.00')
    await expect(decideWithdrawal(db.current.sql, who(), w.id, 'complete', { reference: 'x' })).rejects.toMatchObject({ code: 'CONFLICT' })
    await decideWithdrawal(db.current.sql, who(), w.id, 'approve', {})
    const done = await decideWithdrawal(db.current.sql, who(), w.id, 'complete', { reference: 'TRF-1' })
    expect(done).toMatchObject({ status: 'completed', reference: 'TRF-1' })
    const statuses = await withTenant(db.current.sql, tenant.id, async (tx) => [(await q.findCommission(tx, c1.id))!.status, (await q.findCommission(tx, c2.id))!.status])
    expect(statuses).toEqual(['paid', 'approved'])
    expect((await partnerOf(s.partner.id))!.balance).toBe('5.00')
  })

  it('keeps the ledger append-only and the balance out of reach of the runtime role', async () => {
    const s = await setup()
    const c = (await buy(s, 'order-6001')).purchase.commission!
    await decideCommission(db.current.sql, who(), c.id, 'approve', null)
    await expect(withTenant(db.current.sql, tenant.id, (tx) => tx`update assessments.ledger_entries set amount = 1000 where partner_id = ${s.partner.id}`)).rejects.toThrow()
    await expect(withTenant(db.current.sql, tenant.id, (tx) => tx`delete from assessments.ledger_entries where partner_id = ${s.partner.id}`)).rejects.toThrow()
    await expect(withTenant(db.current.sql, tenant.id, (tx) => tx`update assessments.partners set balance = 1000 where id = ${s.partner.id}`)).rejects.toThrow(/permission denied/)
    await expect(db.current.owner`update assessments.ledger_entries set amount = 1000 where partner_id = ${s.partner.id}`).rejects.toThrow(/append-only/)
  })

  it('never lets the balance go negative under concurrent approvals and withdrawals, and every balance_after is the running sum', async () => {
    const s = await setup({ partnerRate: '0.1000', price: '10.00' })
    // 30 commissions of 1.00 each; approvals race 40 withdrawal requests of 1.00 (only as many as were credited can pass).
    const commissions = []
    for (let i = 0; i < 30; i++) commissions.push((await buy(s, `order-race-${i}`)).purchase.commission!)
    const approvals = commissions.map((c) => decideCommission(db.current.sql, who(), c.id, 'approve', null))
    const withdrawals = Array.from({ length: 40 }, () => requestWithdrawal(db.current.sql, who(), s.partner.id, '1.00').then(() => 'ok', (e) => (isAppError(e) ? e.code : String(e))))
    const [approved, requested] = await Promise.all([Promise.all(approvals), Promise.all(withdrawals)])
    expect(approved.every((c) => c.status === 'approved')).toBe(true)
    const ok = requested.filter((r) => r === 'ok').length
    expect(requested.every((r) => r === 'ok' || r === 'UNPROCESSABLE')).toBe(true)
    expect(ok).toBeLessThanOrEqual(30)

    const ledger = await ledgerOf(s.partner.id)
    let running = 0
    for (const e of ledger) {
      running += Math.round(Number(e.amount) * 100)
      expect(Math.round(Number(e.balanceAfter) * 100)).toBe(running)
      expect(running).toBeGreaterThanOrEqual(0)
    }
    expect(ledger.filter((e) => e.kind === 'withdrawal_requested')).toHaveLength(ok)
    expect((await partnerOf(s.partner.id))!.balance).toBe(((3000 - ok * 100) / 100).toFixed(2))
    // A second run of all the approvals credits nothing more.
    const repeat = await Promise.all(commissions.map((c) => decideCommission(db.current.sql, who(), c.id, 'approve', null).catch((e) => e.code)))
    expect(repeat.every((r) => r === 'CONFLICT')).toBe(true)
    expect((await ledgerOf(s.partner.id)).length).toBe(ledger.length)
  })

  it('lets exactly one of two concurrent withdrawals through when the balance covers only one', async () => {
    const s = await setup({ partnerRate: '0.1000' })
    const c = (await buy(s, 'order-pair')).purchase.commission!
    await decideCommission(db.current.sql, who(), c.id, 'approve', null)
    const outcomes = await Promise.all([0, 1, 2, 3].map(() => requestWithdrawal(db.current.sql, who(), s.partner.id, '6.00').then(() => 'ok', (e) => e.code)))
    expect(outcomes.sort()).toEqual(['UNPROCESSABLE', 'UNPROCESSABLE', 'UNPROCESSABLE', 'ok'])
    expect((await partnerOf(s.partner.id))!.balance).toBe('4.00')
  })

  it('gives two concurrent deliveries of one transaction one purchase and one commission', async () => {
    const s = await setup()
    const results = await Promise.all(Array.from({ length: 6 }, () => buy(s, 'order-dup')))
    expect(results.filter((r) => r.created)).toHaveLength(1)
    expect(new Set(results.map((r) => r.purchase.commission!.id)).size).toBe(1)
  })
})
