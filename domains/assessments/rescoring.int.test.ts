import { beforeAll, describe, expect, it } from 'vitest'
import { useTestDatabase } from '../../test/db.js'
import { HEALTHY_ANSWERS, completeSessionOf, makeAssessment } from '../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { rescoreRun } from './rescoring.js'
import { HEALTH_DEFINITION } from './sample-definitions.js'
import { Definition } from './schemas.js'
import { publishDraft, saveDraft } from './service.js'

const POOR_ANSWERS: Record<string, unknown> = {
  sleep_hours: 'lt5', sleep_quality: 1, exercise_days: 'd0', activities: [], smoker: true, cigarettes: 20, alcohol: 'daily',
  fruit_veg: 'p0_1', water: 'w1_3', stress: 10, mood: 'low', weight_kg: 120, height_cm: 165, goals: '',
}
const base = HEALTH_DEFINITION.rubric as { total: string; bands: { key: string; recommendations: string[] }[] }

describe('re-scoring and the AI analysis', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let assessmentId: string
  let healthy: { sessionId: string; resultId: string; band: string }
  let poor: { sessionId: string; resultId: string; band: string }
  const who = () => ({ tenantId: tenant.id, actor: 'test', requestId: null })
  const resultOf = async (sessionId: string) =>
    (await db.current.owner<{ id: string; band: string }[]>`select id, band from assessments.results where session_id = ${sessionId}`)[0]!
  const analyzeJobs = async () =>
    (await db.current.owner<{ key: string; payload: unknown }[]>`
      select j.key, j.payload from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id
       where t.identifier = 'assessments__analyze_result' order by j.key`)
  /** Publishes the health check with these rubric changes and runs the re-scoring it starts, as the job would. */
  async function publishAndRescore(rubric: Partial<{ total: string; bands: unknown }>) {
    await db.current.owner`delete from graphile_worker._private_jobs`
    await saveDraft(db.current.sql, who(), assessmentId, Definition.parse({ ...HEALTH_DEFINITION, rubric: { ...HEALTH_DEFINITION.rubric, ...rubric } }))
    const published = await publishDraft(db.current.sql, who(), assessmentId)
    expect(published.rescoringRun).not.toBeNull()
    await rescoreRun(db.current.sql, { tenantId: tenant.id, runId: published.rescoringRun!.id }, { batchSize: 100 })
    const [run] = await db.current.owner<{ status: string; rescored: number; unchanged: number }[]>`
      select status, rescored, unchanged from assessments.rescoring_runs where id = ${published.rescoringRun!.id}`
    return run!
  }

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
    const h = await completeSessionOf(db.current.sql, tenant, assessmentId, HEALTHY_ANSWERS)
    const p = await completeSessionOf(db.current.sql, tenant, assessmentId, POOR_ANSWERS)
    const hr = await resultOf(h.sessionId)
    const pr = await resultOf(p.sessionId)
    healthy = { sessionId: h.sessionId, resultId: hr.id, band: hr.band }
    poor = { sessionId: p.sessionId, resultId: pr.id, band: pr.band }
    expect(healthy.band).not.toBe(poor.band)
  })

  it('enqueues a new analysis for a result whose banded pattern changed, and none for one whose pattern stayed', async () => {
    // The healthy result's band gets new advice (its pattern changes); the poor one's band is untouched.
    const bands = base.bands.map((b) => (b.key === healthy.band ? { ...b, recommendations: ['Keep going: a new piece of advice.'] } : b))
    const run = await publishAndRescore({ bands })
    expect(run).toMatchObject({ status: 'completed', rescored: 1, unchanged: 1 })
    const jobs = await analyzeJobs()
    expect(jobs).toEqual([{ key: `assessments:analyze:${healthy.resultId}`, payload: { tenantId: tenant.id, resultId: healthy.resultId } }])
  })

  it('enqueues nothing when totals move but no band, level, tier or advice does', async () => {
    const bands = base.bands.map((b) => (b.key === healthy.band ? { ...b, recommendations: ['Keep going: a new piece of advice.'] } : b))
    const run = await publishAndRescore({ bands, total: base.total.replace('f.smoking_penalty, 1)', 'f.smoking_penalty + 0.5, 1)') })
    expect(run.rescored).toBeGreaterThanOrEqual(1)
    const history = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.result_history where result_id = ${healthy.resultId}`
    expect(history[0]!.n).toBe(2)
    expect(await analyzeJobs()).toEqual([])
  })
})
