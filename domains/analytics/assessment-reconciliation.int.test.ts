import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { reconcile, rollUp } from './rollups.js'
import { assessmentRescored } from './platform-events.js'
import { recordEvents, type EventRow } from './service.js'

const T0 = new Date('2026-11-30T10:00:00.000Z')
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)
const LATER = at(24 * 60 * 3)
const RANGE = { from: new Date('2026-11-29T00:00:00.000Z'), to: new Date('2026-12-02T00:00:00.000Z'), now: LATER }

describe('reconciliation of the assessment rollup against raw events', () => {
  const db = useTestDatabase()
  let tenant: TestTenant

  /** One session started, answered twice (a revision), completed; a link click; a commission with an amount. */
  const sessionEvents = (assessmentId: string, day: number): EventRow[] => {
    const sessionId = randomUUID()
    const base = day * 24 * 60
    return [
      { name: 'assessment.started', occurredAt: at(base + 1), source: 'assessments', dedupeKey: `assessment:started:${sessionId}`, properties: { sessionId, assessmentId, channel: 'web', firstQuestionId: 'q1' } },
      { name: 'assessment.answered', occurredAt: at(base + 2), source: 'assessments', dedupeKey: `assessment:answered:${sessionId}:q1:1`, properties: { sessionId, assessmentId, questionId: 'q1', nextQuestionId: 'q2', responseMs: 1234 } },
      { name: 'assessment.answered', occurredAt: at(base + 3), source: 'assessments', dedupeKey: `assessment:answered:${sessionId}:q1:2`, properties: { sessionId, assessmentId, questionId: 'q1', responseMs: 800 } },
      { name: 'assessment.completed', occurredAt: at(base + 4), source: 'assessments', dedupeKey: `assessment:completed:${sessionId}`, properties: { sessionId, assessmentId, channel: 'web', totalScore: 42, band: 'medium' } },
      { name: 'link.clicked', occurredAt: at(base + 5), source: 'partner_link', dedupeKey: `link:clicked:${sessionId}`, anonymousId: `v-${sessionId}`, properties: { partnerId: 'p1', linkId: 'l1', outcome: 'web' } },
      { name: 'commission.created', occurredAt: at(base + 6), source: 'assessments', dedupeKey: `commission:created:${sessionId}`, properties: { partnerId: 'p1', linkId: 'l1', currency: 'BRL', amount: '12.35' } },
    ]
  }
  const check = () => withTenant(db.current.sql, tenant.id, (tx) => reconcile(tx, RANGE))

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [...sessionEvents('a1', 0), ...sessionEvents('a1', 0), ...sessionEvents('a2', 1)]))
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
  })

  it('finds the rollup equal to raw, row by row, over the final days', async () => {
    const r = await check()
    expect(r.assessments).toMatchObject({ days: 3, difference: 0, amountDifference: '0', mismatches: [] })
    expect(r.assessments.rows).toBeGreaterThan(10)
    const stored = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.assessment_rollups where tenant_id = ${tenant.id}`
    expect(r.assessments.rows).toBe(stored[0]!.n)
  })

  it('reports a row that drifted, a row that went missing, a row raw never had, and an amount that changed', async () => {
    await db.current.owner`update analytics.assessment_rollups set events = events + 2 where tenant_id = ${tenant.id} and measure = 'started' and assessment_id = 'a1'`
    await db.current.owner`delete from analytics.assessment_rollups where tenant_id = ${tenant.id} and measure = 'answered' and assessment_id = 'a2'`
    await db.current.owner`
      insert into analytics.assessment_rollups (tenant_id, day, measure, assessment_id, events) values (${tenant.id}, '2026-11-30', 'completed', 'ghost', 5)`
    await db.current.owner`update analytics.assessment_rollups set amount = amount + 0.01 where tenant_id = ${tenant.id} and measure = 'commission_created' and day = '2026-12-01'`
    const r = await check()
    expect(r.assessments.difference).toBe(2 + 1 + 5)
    expect(r.assessments.amountDifference).toBe('0.01')
    const brief = r.assessments.mismatches.map((m) => [m.day, m.measure, m.assessmentId, m.raw, m.rolledUp, m.rawAmount, m.rolledUpAmount])
    expect(brief).toEqual([
      ['2026-11-30', 'completed', 'ghost', 0, 5, '0', '0'],
      ['2026-11-30', 'started', 'a1', 2, 4, '0', '0'],
      ['2026-12-01', 'answered', 'a2', 1, 0, '0', '0'],
      ['2026-12-01', 'commission_created', '', 1, 1, '12.35', '12.36'],
    ])
    // The next roll-up of a dirty day rebuilds it from raw: marking the days dirty and rolling up heals every row.
    await db.current.owner`insert into analytics.rollup_dirty (tenant_id, bucket_start, recount) values (${tenant.id}, ${at(0)}, false), (${tenant.id}, ${at(24 * 60)}, false) on conflict do nothing`
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    expect((await check()).assessments).toMatchObject({ difference: 0, amountDifference: '0', mismatches: [] })
  })

  it('leaves days not yet behind the watermark out: they are pending work, not drift', async () => {
    const r = await withTenant(db.current.sql, tenant.id, (tx) => reconcile(tx, { ...RANGE, now: at(24 * 60 + 30) }))
    // Only 2026-11-29 and 2026-11-30 end before the open bucket of 2026-12-01 10:30.
    expect(r.assessments.days).toBe(2)
  })
  it('moves a re-scored result from its old score to its new one on the re-score\'s day, and still reconciles', async () => {
    const sessionId = randomUUID()
    const resultId = randomUUID()
    const rescored = assessmentRescored({
      assessmentId: 'a3', sessionId, resultId, leadId: null, runId: randomUUID(), rubricVersion: 2, at: at(24 * 60 + 9),
      previousTotalScore: 42, previousBand: 'medium', totalScore: 55.5, band: 'high',
    })
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [
      { name: 'assessment.completed', occurredAt: at(9), source: 'assessments', dedupeKey: `assessment:completed:${sessionId}`, properties: { sessionId, assessmentId: 'a3', channel: 'web', resultId, totalScore: 42, band: 'medium' } },
      // A retried batch records the same event again: its dedupe key keeps it out.
      rescored, rescored,
    ]))
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const rows = await db.current.owner<{ day: string; band: string; value: number; events: number }[]>`
      select day::text as day, band, value::float8 as value, events::int as events from analytics.assessment_rollups
       where tenant_id = ${tenant.id} and measure = 'score' and assessment_id = 'a3' order by day, band`
    expect(rows).toEqual([
      { day: '2026-11-30', band: 'medium', value: 42, events: 1 },
      { day: '2026-12-01', band: 'high', value: 55.5, events: 1 },
      { day: '2026-12-01', band: 'medium', value: 42, events: -1 },
    ])
    expect((await check()).assessments).toMatchObject({ difference: 0, amountDifference: '0', mismatches: [] })
  })
})
