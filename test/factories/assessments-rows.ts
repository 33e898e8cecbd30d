import { withTenant, type Sql } from '../../lib/db.js'
import { CreateAssessmentBody, type DefinitionInput } from '../../domains/assessments/schemas.js'
import { HEALTH_DEFINITION } from '../../domains/assessments/sample-definitions.js'
import { answerQuestion, createAssessment, publishDraft, saveProfile, sessionContext, startSession, type AssessmentDetail } from '../../domains/assessments/service.js'
import { makeLead } from './marketing-rows.js'
import { analyzeResult } from '../../domains/assessments/ai/service.js'
import { ruleBasedProvider } from '../../domains/assessments/ai/providers.js'
import { claimCache, fillCache, reserveCall, upsertAiSettings } from '../../domains/assessments/ai/queries.js'
import { testConfig } from '../apps.js'
import type { TestTenant } from './tenants.js'

const who = (tenant: TestTenant) => ({ tenantId: tenant.id, actor: 'test', requestId: null })

/** An assessment created (and, unless `draft`, published) the way the API does it; the health check by default. */
export async function makeAssessment(sql: Sql, tenant: TestTenant, overrides: { key?: string; type?: 'health' | 'wealth' | 'hybrid'; name?: string; definition?: DefinitionInput; draft?: boolean } = {}): Promise<AssessmentDetail> {
  const a = await createAssessment(sql, who(tenant), CreateAssessmentBody.parse({
    key: overrides.key ?? `a_${Math.random().toString(36).slice(2, 10)}`,
    type: overrides.type ?? 'health',
    name: overrides.name ?? 'Health check',
    definition: overrides.definition ?? HEALTH_DEFINITION,
  }))
  if (!overrides.draft) await publishDraft(sql, who(tenant), a.id)
  return { ...a, status: overrides.draft ? a.status : 'published', publishedVersion: overrides.draft ? null : 1 }
}

/** Answers that complete the health check: a healthy non-smoker. */
export const HEALTHY_ANSWERS: Record<string, unknown> = {
  sleep_hours: 'h7_8', sleep_quality: 4, exercise_days: 'd3_4', activities: ['walking', 'cycling'], smoker: false, alcohol: 'monthly',
  fruit_veg: 'p4_5', water: 'w4_6', stress: 4, mood: 'good', weight_kg: 72.5, height_cm: 178, goals: 'Sleep better',
}

/** A session answered to the end (and so completed) through the domain, the way both channels do it. */
export async function completeSessionOf(sql: Sql, tenant: TestTenant, assessmentId: string, answers: Record<string, unknown> = HEALTHY_ANSWERS, extra: { leadId?: string; demographics?: Record<string, string | number> } = {}) {
  return withTenant(sql, tenant.id, async (tx) => {
    const started = await startSession(tx, { assessmentId, channel: 'web', leadId: extra.leadId ?? null, demographics: extra.demographics ?? { age: 41 } })
    let ctx = await sessionContext(tx, started.session)
    while (ctx.session.currentQuestionId) {
      const id = ctx.session.currentQuestionId
      ctx = await answerQuestion(tx, ctx, { questionId: id, value: (answers[id] ?? null) as never, responseMs: 1500 })
    }
    if (ctx.session.status !== 'completed') ctx = await saveProfile(tx, ctx, { age: 41 })
    return { sessionId: ctx.session.id, token: started.token!, status: ctx.session.status }
  })
}

/** One row in each assessments table, for the RLS test: a published version, a completed session with its result. */
export async function populateAssessmentsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const a = await makeAssessment(sql, tenant)
  const lead = await withTenant(sql, tenant.id, (tx) => makeLead(tx, tenant.id))
  const { sessionId } = await completeSessionOf(sql, tenant, a.id, HEALTHY_ANSWERS, { leadId: lead.id })
  await withTenant(sql, tenant.id, async (tx) => {
    const [r] = await tx<{ id: string; scoredVersionId: string }[]>`select id, scored_version_id from assessments.results where session_id = ${sessionId}`
    await tx`
      insert into assessments.result_history (tenant_id, result_id, scored_version_id, rubric_version, total_score, category_scores, band, computed_at)
      values (${tenant.id}, ${r!.id}, ${r!.scoredVersionId}, 1, 9, '{}', 'at_risk', now())`
    await tx`
      insert into assessments.rescoring_runs (tenant_id, assessment_id, version_id, rubric_version, reason, status, requested_by, finished_at)
      values (${tenant.id}, ${a.id}, ${r!.scoredVersionId}, 1, 'request', 'completed', 'test', now())`
  })
  // The AI analysis (0036): the rule-based one through the job's own function, a cache entry and a call, and settings.
  await analyzeResult({ sql, provider: ruleBasedProvider, config: testConfig() }, tenant.id, (await withTenant(sql, tenant.id, (tx) => tx<{ id: string }[]>`select id from assessments.results where session_id = ${sessionId}`))[0]!.id)
  await withTenant(sql, tenant.id, async (tx) => {
    const hash = Buffer.from(`rows-${tenant.id}`)
    await claimCache(tx, { tenantId: tenant.id, patternHash: hash, provider: 'openai-compatible', model: 'gpt-4o-mini', promptVersion: 1, staleSeconds: 180 })
    await fillCache(tx, hash, { narrative: 'A cached analysis.', recommendations: [] }, 3600)
    await reserveCall(tx, tenant.id, sessionId)
    await upsertAiSettings(tx, tenant.id, { enabled: true, callsPerHour: 100, updatedBy: 'test' })
  })
}
