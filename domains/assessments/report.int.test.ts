import { beforeAll, describe, expect, it } from 'vitest'
import { type Sql, withTenant } from '../../lib/db.js'
import { testConfig } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeLinkableAssessment, makePartner, makePartnerLink, makeProduct } from '../../test/factories/assessment-partners-rows.js'
import { HEALTHY_ANSWERS, makeAssessment } from '../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { assessmentStarted, recordPlatformEvents } from '../analytics/platform-events.js'
import { rollUp } from '../analytics/rollups.js'
import { recordLinkSessionStarted, visitLink } from './partners/links.js'
import { decideCommission, recordPurchase, refundPurchase } from './partners/money.js'
import { partnerFactsFromTables } from './report-queries.js'
import { partnerReport } from './partners/service.js'
import { assessmentReport, assessmentReportFromTables, histogramMedian } from './report.js'
import { answerQuestion, saveProfile, sessionContext, startSession } from './service.js'

const DAY = 86_400_000
/** A visitor id as the cookie carries it (22 characters). */
const vid = (s: string) => s.padEnd(22, 'x')
const startOfUtcDay = (d: Date) => new Date(Math.floor(d.getTime() / DAY) * DAY)

/**
 * The reports from the analytics rollups against the same reports computed from the assessments tables, on sessions
 * spread over several days, with duplicated facts (a replayed event, a repeated purchase webhook, a retried answer)
 * and late ones (sessions, clicks, purchases and refunds landing in days already rolled up).
 */
describe('assessment and partner reports from the analytics rollups', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let assessmentId: string
  let partner: { id: string }
  let link: { id: string; linkCode: string }
  let otherLink: { id: string; linkCode: string }
  let product: { sku: string }
  const today = startOfUtcDay(new Date())
  const from = new Date(today.getTime() - 6 * DAY)
  const to = new Date(today.getTime() + DAY)
  const LATER = new Date(to.getTime() + DAY)
  const config = testConfig()

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
    await withTenant(db.current.sql, tenant.id, async (tx) => {
      partner = await makePartner(tx, tenant.id)
      link = await makePartnerLink(tx, tenant.id, partner.id, assessmentId)
      otherLink = await makePartnerLink(tx, tenant.id, partner.id, assessmentId, { active: false })
      product = await makeProduct(tx, tenant.id, { price: '99.90', commissionRate: '0.1500' })
      // Another assessment's activity must not leak into this one's report.
      await makeLinkableAssessment(tx, tenant.id)
    })
  })

  /** A session run through the engine: answers with response times, through the link or not, stopped after `stopAfter` answers. */
  async function runSession(o: { channel?: 'web' | 'whatsapp'; viaLink?: boolean; answers?: Record<string, unknown>; stopAfter?: number; ms?: number }) {
    return withTenant(db.current.sql, tenant.id, async (tx) => {
      const channel = o.channel ?? 'web'
      const started = await startSession(tx, { assessmentId, channel, ...(o.viaLink ? { linkId: link.id, partnerId: partner.id } : {}) })
      if (o.viaLink) await recordLinkSessionStarted(tx, { tenantId: tenant.id, sessionId: started.session.id, linkId: link.id, partnerId: partner.id, channel, visitorId: 'visitor-abcdefgh', at: started.session.startedAt })
      let ctx = await sessionContext(tx, started.session)
      let answered = 0
      const answers = o.answers ?? HEALTHY_ANSWERS
      while (ctx.session.currentQuestionId && answered < (o.stopAfter ?? Infinity)) {
        const id = ctx.session.currentQuestionId
        const body = { questionId: id, value: (answers[id] ?? null) as never, responseMs: (o.ms ?? 1200) + answered * 730 }
        ctx = await answerQuestion(tx, ctx, body)
        // A retried answer (the same answer to the question just answered) changes nothing.
        if (answered === 0) ctx = await answerQuestion(tx, ctx, body)
        answered++
      }
      if (!ctx.session.currentQuestionId && ctx.session.status !== 'completed') ctx = await saveProfile(tx, ctx, { age: 37 })
      // A replayed start event (a retried job): its dedupe key keeps it out.
      const again = await recordPlatformEvents(tx, [assessmentStarted({ assessmentId, sessionId: started.session.id, channel, leadId: null, at: started.session.startedAt, version: 1 })])
      expect(again).toBe(0)
      return started.session.id
    })
  }

  /**
   * Moves a session, its rows and its events `days` back, as if it had happened then and arrived now: the events'
   * update dirties the buckets it leaves and enters, like a late insert.
   */
  async function moveBack(sql: Sql, sessionId: string, days: number, tookMs: number) {
    const by = `${days * 86_400_000} milliseconds`
    // The session ran in one transaction (its start and completion share now()): its start moves `tookMs` earlier still.
    const took = `${tookMs} milliseconds`
    await sql.begin(async (o) => {
      await o`update assessments.sessions set started_at = started_at - ${by}::interval - ${took}::interval, completed_at = completed_at - ${by}::interval,
                     last_activity_at = last_activity_at - ${by}::interval where id = ${sessionId}`
      await o`update assessments.responses set answered_at = answered_at - ${by}::interval where session_id = ${sessionId}`
      await o`update analytics.events set occurred_at = occurred_at - ${by}::interval
                                              - case when name in ('assessment.started', 'link.started') then ${took}::interval else interval '0' end
               where properties ->> 'sessionId' = ${sessionId}`
      await o`update analytics.event_keys set occurred_at = occurred_at - ${by}::interval
                                              - case when dedupe_key like '%:started:%' then ${took}::interval else interval '0' end
               where dedupe_key like ${`%:${sessionId}%`}`
    })
  }

  const click = (code: string, at: Date, visitorId: string) =>
    visitLink(db.current.sql, config, code, { ip: '203.0.113.9', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0', visitorId, at }).catch(() => null)

  const purchase = (transactionId: string, at: Date, sessionId: string) =>
    withTenant(db.current.sql, tenant.id, (tx) => recordPurchase(tx, tenant.id, { transactionId, sku: product.sku, quantity: 1, purchasedAt: at.toISOString(), customer: { sessionId } }, 'webhook'))

  const noMeta = <T extends { meta?: unknown }>(r: T) => {
    const { meta: _m, ...rest } = r
    return rest
  }
  const report = (o: { from?: Date; to?: Date; rawOnly?: boolean } = {}) =>
    assessmentReport(db.current.sql, tenant.id, assessmentId, { from: o.from ?? from, to: o.to ?? to, bucketWidth: 5, now: LATER, rawOnly: o.rawOnly ?? false })
  const fromTables = (o: { from?: Date; to?: Date } = {}) =>
    assessmentReportFromTables(db.current.sql, tenant.id, assessmentId, { from: o.from ?? from, to: o.to ?? to, bucketWidth: 5 })
  const partnerFromRollups = (o: { rawOnly?: boolean; from?: Date; to?: Date } = {}) =>
    partnerReport(db.current.sql, tenant.id, partner.id, { from: (o.from ?? from).toISOString(), to: (o.to ?? to).toISOString(), now: LATER, rawOnly: o.rawOnly ?? false })
  const partnerFromTables = async (o: { from?: Date; to?: Date } = {}) => {
    const rows = await withTenant(db.current.sql, tenant.id, (tx) => partnerFactsFromTables(tx, partner.id, o.from ?? from, o.to ?? to))
    return rows.map(({ created, approved, paid, rejected, reversed, ...r }) => ({ ...r, commissions: { created, approved, paid, rejected, reversed } }))
  }
  const money = (s: string) => Number(s).toFixed(2)
  const partnerLinks = async (o: { rawOnly?: boolean; from?: Date; to?: Date } = {}) =>
    (await partnerFromRollups(o)).links.map(({ linkCode: _c, ...l }) => l).sort((a, b) => a.linkId.localeCompare(b.linkId))
  const tableLinks = async (o: { from?: Date; to?: Date } = {}) =>
    (await partnerFromTables(o)).map((l) => ({
      ...l, revenue: money(l.revenue),
      commissions: Object.fromEntries(Object.entries(l.commissions).map(([k, v]) => [k, money(v)])),
    })).sort((a, b) => a.linkId.localeCompare(b.linkId))

  it('computes a median from a histogram as percentile_cont does', () => {
    expect(histogramMedian([])).toBeNull()
    expect(histogramMedian([{ value: 7, count: 1 }])).toBe(7)
    expect(histogramMedian([{ value: 3, count: 2 }, { value: 1, count: 1 }, { value: 10, count: 1 }])).toBe(3)
    expect(histogramMedian([{ value: 1, count: 1 }, { value: 4, count: 1 }])).toBe(2.5)
  })

  it('equals the tables on history spread over days, rolled up, then after late and duplicated facts arrive', async () => {
    // History: sessions over five days, both channels, some through the link, some stopped part way.
    const sessions: string[] = []
    const plan: { days: number; o: Parameters<typeof runSession>[0] }[] = [
      { days: 5, o: { viaLink: true } }, { days: 5, o: { answers: { ...HEALTHY_ANSWERS, sleep_hours: 'lt5', mood: 'low' }, ms: 900 } },
      { days: 4, o: { channel: 'whatsapp', stopAfter: 2 } }, { days: 3, o: { viaLink: true, stopAfter: 1 } },
      { days: 3, o: { ms: 4100 } }, { days: 2, o: { channel: 'whatsapp', viaLink: true, ms: 2500 } }, { days: 1, o: { stopAfter: 3 } },
    ]
    for (const [i, p] of plan.entries()) {
      const id = await runSession(p.o)
      sessions.push(id)
      // Sessions took from 5 s to a few minutes (with milliseconds, which the seconds floor).
      await moveBack(db.current.owner, id, p.days, 5_250 + i * 37_321)
    }
    for (const [i, d] of [5, 4, 4, 2, 1].entries()) await click(link.linkCode, new Date(today.getTime() - d * DAY + i * 60_000), vid(`v${i % 3}`))
    await click(otherLink.linkCode, new Date(today.getTime() - 3 * DAY), vid('inactive'))
    const bought = await purchase('tx-1', new Date(today.getTime() - 5 * DAY + 3_600_000), sessions[0]!)
    expect(bought.created).toBe(true)
    await decideCommission(db.current.sql, { tenantId: tenant.id, actor: 'admin:test', requestId: null }, bought.purchase.commission!.id, 'approve', null)

    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const rolled = await report()
    expect(rolled.meta).toMatchObject({ source: 'rollup', rawRanges: [] })
    expect(noMeta(rolled)).toEqual(await fromTables())
    expect(noMeta(await report({ rawOnly: true }))).toEqual(await fromTables())
    expect(rolled.starts).toBe(7)
    expect(rolled.completions).toBe(4)
    expect(rolled.byChannel.whatsapp).toEqual({ starts: 2, completions: 1 })
    expect(rolled.medianSecondsToComplete).toEqual(expect.any(Number))
    expect(rolled.questions[0]).toMatchObject({ reached: 7, answered: 7, stoppedHere: 0 })
    expect(rolled.questions.reduce((s, q) => s + q.stoppedHere, 0)).toBe(3)
    expect(await partnerLinks()).toEqual(await tableLinks())
    expect((await partnerFromRollups()).totals).toMatchObject({ clicks: 5, inactiveClicks: 1, starts: 3, completions: 2, conversions: 1, revenue: '99.90' })

    // Late: a session lands on a day already rolled up, a click and a purchase dated days back arrive, the first
    // purchase is refunded; duplicated: the purchase webhook again. The rollups are stale for those days now.
    const late = await runSession({ viaLink: true, ms: 3300 })
    await moveBack(db.current.owner, late, 4, 11_999)
    await click(link.linkCode, new Date(today.getTime() - 4 * DAY + 7_200_000), vid('late'))
    const second = await purchase('tx-2', new Date(today.getTime() - 2 * DAY), sessions[5]!)
    expect((await purchase('tx-2', new Date(today.getTime() - 2 * DAY), sessions[5]!)).created).toBe(false)
    await withTenant(db.current.sql, tenant.id, (tx) => refundPurchase(tx, tenant.id, 'tx-1', new Date(today.getTime() - DAY), 'admin:test'))

    // Before the next roll-up the watermark stands at the oldest late bucket: those days are read raw, and still equal.
    const pending = await report()
    expect(pending.meta.source).not.toBe('rollup')
    expect(pending.meta.rawRanges.length).toBeGreaterThan(0)
    expect(noMeta(pending)).toEqual(await fromTables())
    expect(await partnerLinks()).toEqual(await tableLinks())

    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const after = await report()
    expect(after.meta.source).toBe('rollup')
    expect(noMeta(after)).toEqual(await fromTables())
    expect(after.starts).toBe(8)
    expect(await partnerLinks()).toEqual(await tableLinks())
    const totals = (await partnerFromRollups()).totals
    // tx-1 bought and refunded in the period, tx-2 bought: one net conversion, exact money.
    expect(totals).toMatchObject({ clicks: 6, conversions: 1, revenue: '99.90' })
    const one = bought.purchase.commission!.amount
    expect(totals.commissions).toEqual({ created: money(String(2 * Number(one))), approved: one, paid: '0.00', rejected: '0.00', reversed: one })
    expect(second.created).toBe(true)

    // A window that cuts days (a partial first day, a last day after the watermark) reads rollup and raw together.
    const cut = { from: new Date(from.getTime() + DAY + 5 * 3_600_000), to: new Date(today.getTime() - DAY + 7 * 3_600_000) }
    const mixed = await report(cut)
    expect(mixed.meta.source).toBe('rollup+raw')
    expect(noMeta(mixed)).toEqual(noMeta(await report({ ...cut, rawOnly: true })))
    expect(noMeta(mixed)).toEqual(await fromTables(cut))
    expect(await partnerLinks(cut)).toEqual(await partnerLinks({ ...cut, rawOnly: true }))
    expect(await partnerLinks(cut)).toEqual(await tableLinks(cut))
  })

  it("keeps one tenant's rollup rows from another's report", async () => {
    const other = await makeTenant(db.current.sql)
    const seen = await withTenant(db.current.sql, other.id, (tx) => tx<{ n: number }[]>`select count(*)::int as n from analytics.assessment_rollups`)
    expect(seen[0]!.n).toBe(0)
    await expect(assessmentReport(db.current.sql, other.id, assessmentId, { bucketWidth: 5, now: LATER })).rejects.toThrow(/not found/)
  })
})
