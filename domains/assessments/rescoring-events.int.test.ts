import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { HEALTHY_ANSWERS, completeSessionOf, makeAssessment } from '../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { reconcile, rollUp } from '../analytics/rollups.js'
import { assessmentReport, assessmentReportFromTables } from './report.js'
import { rescoreOneBatch, rescoreRun } from './rescoring.js'
import { HEALTH_DEFINITION } from './sample-definitions.js'
import { Definition } from './schemas.js'
import { publishDraft, saveDraft } from './service.js'

const POOR_ANSWERS: Record<string, unknown> = {
  sleep_hours: 'lt5', sleep_quality: 1, exercise_days: 'd0', activities: [], smoker: true, cigarettes: 20, alcohol: 'daily',
  fruit_veg: 'p0_1', water: 'w1_3', stress: 10, mood: 'low', weight_kg: 120, height_cm: 165, goals: '',
}
const DAY = 86_400_000
const base = HEALTH_DEFINITION.rubric as { total: string; bands: { key: string; recommendations: string[] }[] }

/**
 * Re-scoring records assessment.rescored for each result whose total or band changed (once per run and result), and
 * the report's score distribution, from the rollup, follows the latest score.
 */
describe('re-scoring events and the report distribution', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let assessmentId: string
  const results: Record<string, { id: string; total: number; band: string }> = {}
  const who = () => ({ tenantId: tenant.id, actor: 'test', requestId: null })
  const today = new Date(Math.floor(Date.now() / DAY) * DAY)
  const range = { from: new Date(today.getTime() - DAY), to: new Date(today.getTime() + DAY) }
  const LATER = new Date(today.getTime() + 2 * DAY)
  const rescoredEvents = () =>
    db.current.owner<{ dedupeKey: string; leadId: string | null; properties: Record<string, unknown> }[]>`
      select dedupe_key, lead_id, properties from analytics.events
       where tenant_id = ${tenant.id} and name = 'assessment.rescored' order by properties ->> 'resultId'`
  const resultOf = async (sessionId: string) =>
    (await db.current.owner<{ id: string; total: number; band: string }[]>`
      select id, total_score::float8 as total, band from assessments.results where session_id = ${sessionId}`)[0]!

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
    for (const [name, answers] of [['healthy', HEALTHY_ANSWERS], ['poor', POOR_ANSWERS], ['heavy', { ...HEALTHY_ANSWERS, weight_kg: 105 }], ['heavier', { ...HEALTHY_ANSWERS, weight_kg: 112, stress: 7 }]] as const) {
      const { sessionId } = await completeSessionOf(db.current.sql, tenant, assessmentId, answers)
      results[name] = await resultOf(sessionId)
    }
  })

  it('records one event per result whose score or band changed, none for the others, none more on a retried batch', async () => {
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const before = await assessmentReport(db.current.sql, tenant.id, assessmentId, { ...range, bucketWidth: 1, now: LATER })
    // Over 100 kg the total gains 2 (heavy and heavier; poor's stays clamped at 0); the healthy band gets new advice
    // only (its result changes, its score and band do not).
    const bands = base.bands.map((b) => (b.key === results.healthy!.band ? { ...b, recommendations: ['Keep going: a new piece of advice.'] } : b))
    const total = base.total.replace('- f.smoking_penalty, 1)', '- f.smoking_penalty + (if q.weight_kg > 100 then 2 else 0), 1)')
    expect(total).not.toBe(base.total)
    await saveDraft(db.current.sql, who(), assessmentId, Definition.parse({ ...HEALTH_DEFINITION, rubric: { ...HEALTH_DEFINITION.rubric, total, bands } }))
    const published = await publishDraft(db.current.sql, who(), assessmentId)
    const runId = published.rescoringRun!.id
    await rescoreRun(db.current.sql, { tenantId: tenant.id, runId }, { batchSize: 100 })
    const [run] = await db.current.owner<{ rescored: number }[]>`select rescored from assessments.rescoring_runs where id = ${runId}`
    expect(run!.rescored).toBe(3)

    const after = { heavy: await resultOf2('heavy'), heavier: await resultOf2('heavier') }
    expect(results.poor!.total).toBe(0)
    expect((await resultOf2('poor')).total).toBe(0)
    expect(after.heavy.total).toBe(results.heavy!.total + 2)
    expect(after.heavier.total).toBe(results.heavier!.total + 2)
    const events = await rescoredEvents()
    const expected = (['heavy', 'heavier'] as const).map((k) => ({
      dedupeKey: `assessment:rescored:${runId}:${results[k]!.id}`, leadId: null,
      properties: {
        assessmentId, sessionId: expect.any(String), resultId: results[k]!.id, runId, rubricVersion: published.rescoringRun!.rubricVersion,
        previousTotalScore: results[k]!.total, previousBand: results[k]!.band, totalScore: after[k].total, band: after[k].band,
      },
    })).sort((a, b) => a.properties.resultId.localeCompare(b.properties.resultId))
    expect(events).toEqual(expected)

    // A retried batch (the run set back as if its commit had not been seen, the results as they were): the same events, no more.
    await db.current.owner`update assessments.rescoring_runs set status = 'running', cursor = null, finished_at = null where id = ${runId}`
    await db.current.owner`
      update assessments.results r set total_score = h.total_score, band = h.band
        from assessments.result_history h where h.result_id = r.id and h.run_id = ${runId}`
    const retried = await rescoreOneBatch(db.current.sql, { tenantId: tenant.id, runId }, 100)
    expect(retried).toMatchObject({ rescored: 2 })
    expect(await rescoredEvents()).toHaveLength(2)

    // The report follows the latest score, from raw before the roll-up and from the rollup after it; the rollup reconciles.
    const fromTables = await assessmentReportFromTables(db.current.sql, tenant.id, assessmentId, { ...range, bucketWidth: 1 })
    const { meta: _b, ...was } = before
    expect(was.scoreDistribution).not.toEqual(fromTables.scoreDistribution)
    const pending = await assessmentReport(db.current.sql, tenant.id, assessmentId, { ...range, bucketWidth: 1, now: LATER })
    expect(pending.meta.source).not.toBe('rollup')
    expect(pending.scoreDistribution).toEqual(fromTables.scoreDistribution)
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const rolled = await assessmentReport(db.current.sql, tenant.id, assessmentId, { ...range, bucketWidth: 1, now: LATER })
    expect(rolled.meta.source).toBe('rollup')
    const { meta: _m, ...body } = rolled
    expect(body).toEqual(fromTables)
    expect(rolled.scoreDistribution.bands.reduce((s, b) => s + b.sessions, 0)).toBe(4)
    const check = await withTenant(db.current.sql, tenant.id, (tx) => reconcile(tx, { ...range, now: LATER }))
    expect(check.assessments).toMatchObject({ difference: 0, amountDifference: '0', mismatches: [] })
    const rows = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.assessment_rollups where tenant_id = ${tenant.id} and measure = 'score' and events < 0`
    // The re-score's day is the completion's: the moves net out within the day, no negative row is stored.
    expect(rows[0]!.n).toBe(0)
  })

  const resultOf2 = async (name: string) =>
    (await db.current.owner<{ total: number; band: string }[]>`select total_score::float8 as total, band from assessments.results where id = ${results[name]!.id}`)[0]!
})
