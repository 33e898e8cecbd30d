import { randomBytes } from 'node:crypto'
import { sha256 } from '../../lib/crypto.js'
import { type Sql, withTenant } from '../../lib/db.js'
import { makeLead } from './marketing-rows.js'
import type { TestTenant } from './tenants.js'

/** One row in each assessments table, for the RLS test: a published version, a completed session, its result. */
export async function populateAssessmentsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const lead = await makeLead(tx, tenant.id)
    const [a] = await tx<{ id: string }[]>`
      insert into assessments.assessments (tenant_id, key, type, name, public_key, status, published_version, rubric_version)
      values (${tenant.id}, 'rows', 'health', 'Rows', ${`pk_${randomBytes(12).toString('hex')}`}, 'published', 1, 1)
      returning id`
    const [v] = await tx<{ id: string }[]>`
      insert into assessments.assessment_versions (tenant_id, assessment_id, version, questions, categories, rubric, questions_hash, rubric_version, published_at)
      values (${tenant.id}, ${a!.id}, 1, '[]', '[]', '{}', 'h', 1, now())
      returning id`
    const [s] = await tx<{ id: string }[]>`
      insert into assessments.sessions (tenant_id, assessment_id, version_id, token_hash, channel, lead_id, status, progress, completed_at, demographics)
      values (${tenant.id}, ${a!.id}, ${v!.id}, ${sha256(randomBytes(32))}, 'web', ${lead.id}, 'completed', 100, now(), '{"age": 40}')
      returning id`
    await tx`insert into assessments.responses (tenant_id, session_id, question_id, answer, response_ms) values (${tenant.id}, ${s!.id}, 'q1', '{"value": "a"}', 1200)`
    const [r] = await tx<{ id: string }[]>`
      insert into assessments.results (tenant_id, session_id, assessment_id, scored_version_id, rubric_version, total_score, category_scores, band)
      values (${tenant.id}, ${s!.id}, ${a!.id}, ${v!.id}, 1, 10, '{}', 'low')
      returning id`
    await tx`
      insert into assessments.result_history (tenant_id, result_id, scored_version_id, rubric_version, total_score, category_scores, band, computed_at)
      values (${tenant.id}, ${r!.id}, ${v!.id}, 1, 9, '{}', 'low', now())`
    await tx`
      insert into assessments.rescoring_runs (tenant_id, assessment_id, version_id, rubric_version, reason, status, requested_by, finished_at)
      values (${tenant.id}, ${a!.id}, ${v!.id}, 1, 'request', 'completed', 'test', now())`
  })
}
