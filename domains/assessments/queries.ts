import type { Sql, Tx } from '../../lib/db.js'
import type { AnswerValue, AssessmentView, Definition, VersionView } from './schemas.js'
import type { Score } from './scoring.js'

// ---------------------------------------------------------------------------------------------------------------
// Definitions

const assessmentColumns = (tx: Tx) => tx`
  a.id, a.key, a.type, a.name, a.description, a.public_key, a.status, a.published_version, a.rubric_version, a.created_at, a.updated_at`
const versionColumns = (tx: Tx) => tx`
  v.id, v.version, v.questions, v.categories, v.rubric, v.profile_fields, v.questions_hash, v.rubric_version, v.published_at, v.created_at`

export const insertAssessment = (tx: Tx, tenantId: string, a: { key: string; type: string; name: string; description: string; publicKey: string }) =>
  tx<AssessmentView[]>`
    insert into assessments.assessments as a (tenant_id, key, type, name, description, public_key)
    values (${tenantId}, ${a.key}, ${a.type}, ${a.name}, ${a.description}, ${a.publicKey})
    returning ${assessmentColumns(tx)}`.then((r) => r[0]!)

export const findAssessment = (tx: Tx, id: string, lock = false) =>
  tx<AssessmentView[]>`select ${assessmentColumns(tx)} from assessments.assessments a where a.id = ${id} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const findAssessmentByKey = (tx: Tx, key: string) =>
  tx<AssessmentView[]>`select ${assessmentColumns(tx)} from assessments.assessments a where a.key = ${key}`.then((r) => r[0] ?? null)

export const listAssessments = (tx: Tx, limit: number, after: { at: string; id: string } | null) =>
  tx<(AssessmentView & { cursorAt: string })[]>`
    select ${assessmentColumns(tx)}, a.created_at::text as cursor_at from assessments.assessments a
     where ${after ? tx`(a.created_at, a.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx`true`}
     order by a.created_at desc, a.id desc limit ${limit + 1}`

export const updateAssessment = (tx: Tx, id: string, p: { name?: string; description?: string; status?: string; publishedVersion?: number; rubricVersion?: number }) => {
  const sets = [
    p.name !== undefined && tx`name = ${p.name}`,
    p.description !== undefined && tx`description = ${p.description}`,
    p.status !== undefined && tx`status = ${p.status}`,
    p.publishedVersion !== undefined && tx`published_version = ${p.publishedVersion}`,
    p.rubricVersion !== undefined && tx`rubric_version = ${p.rubricVersion}`,
  ].filter((s) => s !== false)
  return tx<AssessmentView[]>`
    update assessments.assessments a set ${sets.map((s) => tx`${s}, `)} updated_at = now() where a.id = ${id} returning ${assessmentColumns(tx)}`.then((r) => r[0]!)
}

export const listVersions = (tx: Tx, assessmentId: string) =>
  tx<VersionView[]>`select ${versionColumns(tx)} from assessments.assessment_versions v where v.assessment_id = ${assessmentId} order by v.version desc`

export const findVersion = (tx: Tx, versionId: string) =>
  tx<(VersionView & { assessmentId: string })[]>`select ${versionColumns(tx)}, v.assessment_id from assessments.assessment_versions v where v.id = ${versionId}`.then((r) => r[0] ?? null)

export const findVersionByNumber = (tx: Tx, assessmentId: string, version: number) =>
  tx<VersionView[]>`select ${versionColumns(tx)} from assessments.assessment_versions v where v.assessment_id = ${assessmentId} and v.version = ${version}`.then((r) => r[0] ?? null)

export const findDraft = (tx: Tx, assessmentId: string) =>
  tx<VersionView[]>`select ${versionColumns(tx)} from assessments.assessment_versions v where v.assessment_id = ${assessmentId} and v.published_at is null for update`.then((r) => r[0] ?? null)

const definitionJson = (tx: Tx, d: Definition) => ({
  questions: tx.json(d.questions as never), categories: tx.json(d.categories as never), rubric: tx.json(d.rubric as never), profileFields: tx.json(d.profileFields as never),
})

/** A new draft (the next version number), or the existing draft's definition replaced. */
export async function saveDraft(tx: Tx, tenantId: string, assessmentId: string, d: Definition, questionsHash: string): Promise<VersionView> {
  const j = definitionJson(tx, d)
  const [updated] = await tx<VersionView[]>`
    update assessments.assessment_versions v
       set questions = ${j.questions}, categories = ${j.categories}, rubric = ${j.rubric}, profile_fields = ${j.profileFields},
           questions_hash = ${questionsHash}, updated_at = now()
     where v.assessment_id = ${assessmentId} and v.published_at is null
    returning ${versionColumns(tx)}`
  if (updated) return updated
  return tx<VersionView[]>`
    insert into assessments.assessment_versions as v (tenant_id, assessment_id, version, questions, categories, rubric, profile_fields, questions_hash)
    values (${tenantId}, ${assessmentId},
            (select coalesce(max(version), 0) + 1 from assessments.assessment_versions where assessment_id = ${assessmentId}),
            ${j.questions}, ${j.categories}, ${j.rubric}, ${j.profileFields}, ${questionsHash})
    returning ${versionColumns(tx)}`.then((r) => r[0]!)
}

export const publishVersion = (tx: Tx, versionId: string, rubricVersion: number) =>
  tx<VersionView[]>`
    update assessments.assessment_versions v set published_at = now(), rubric_version = ${rubricVersion}, updated_at = now()
     where v.id = ${versionId} and v.published_at is null returning ${versionColumns(tx)}`.then((r) => r[0] ?? null)

/** The public door (migration 0034): an assessment by its public key, before the tenant is known. */
export const findPublicAssessment = (sql: Sql | Tx, publicKey: string) =>
  sql<{ id: string; tenantId: string; status: string; publishedVersion: number | null; tenantStatus: string }[]>`
    select * from assessments.find_public_assessment(${publicKey})`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Sessions

export interface SessionRow {
  id: string
  tenantId: string
  assessmentId: string
  versionId: string
  channel: 'web' | 'whatsapp'
  leadId: string | null
  conversationId: string | null
  linkId: string | null
  partnerId: string | null
  currentQuestionId: string | null
  progress: number
  answeredCount: number
  demographics: Record<string, unknown>
  status: 'in_progress' | 'completed' | 'abandoned'
  pausedAt: Date | null
  lastActivityAt: Date
  optionPage: number
  startedAt: Date
  completedAt: Date | null
  /** When it was last marked abandoned (kept after a resume); resumedCount: how often it came back since. */
  abandonedAt: Date | null
  resumedCount: number
}
const sessionColumns = (tx: Tx) => tx`
  s.id, s.tenant_id, s.assessment_id, s.version_id, s.channel, s.lead_id, s.conversation_id, s.link_id, s.partner_id, s.current_question_id,
  s.progress, s.answered_count, s.demographics, s.status, s.paused_at, s.last_activity_at, s.option_page, s.started_at, s.completed_at,
  s.abandoned_at, s.resumed_count`

export const insertSession = (tx: Tx, s: {
  tenantId: string; assessmentId: string; versionId: string; tokenHash: Buffer | null; channel: string; leadId: string | null; conversationId: string | null
  linkId: string | null; partnerId: string | null; currentQuestionId: string | null; demographics: Record<string, unknown>
}) =>
  tx<SessionRow[]>`
    insert into assessments.sessions as s (tenant_id, assessment_id, version_id, token_hash, channel, lead_id, conversation_id, link_id, partner_id,
                                           current_question_id, demographics)
    values (${s.tenantId}, ${s.assessmentId}, ${s.versionId}, ${s.tokenHash}, ${s.channel}, ${s.leadId}, ${s.conversationId}, ${s.linkId}, ${s.partnerId},
            ${s.currentQuestionId}, ${tx.json(s.demographics as never)})
    returning ${sessionColumns(tx)}`.then((r) => r[0]!)

export const sessionForToken = (sql: Sql, tokenHash: Buffer) =>
  sql<{ id: string; tenantId: string }[]>`select * from assessments.session_for_token(${tokenHash})`.then((r) => r[0] ?? null)

/**
 * Inside a transaction not yet scoped to a tenant: the token's session, and the transaction scoped to its tenant in
 * the same statement (the lookup is the security-definer door; set_config is transaction-local, as withTenant's).
 */
export const enterSessionByToken = (tx: Tx, tokenHash: Buffer) =>
  tx<{ id: string; tenantId: string }[]>`
    select t.id, t.tenant_id, set_config('app.tenant_id', t.tenant_id::text, true) as scoped from assessments.session_for_token(${tokenHash}) t`
    .then((r) => r[0] ?? null)

export type SessionWithAnswers = SessionRow & {
  answers: Record<string, { value: AnswerValue }> | null; revisionsByQuestion: Record<string, number> | null
  assessmentKey: string; assessmentName: string; assessmentType: AssessmentView['type']
}
const sessionWithAnswersColumns = (tx: Tx) => tx`
  ${sessionColumns(tx)}, a.key as assessment_key, a.name as assessment_name, a.type as assessment_type,
  (select jsonb_object_agg(x.question_id, x.answer) from assessments.responses x where x.session_id = s.id) as answers,
  (select jsonb_object_agg(x.question_id, x.revisions) from assessments.responses x where x.session_id = s.id) as revisions_by_question`

/** The session locked, with what the rules need in the same round trip: its answers and its assessment's names. */
export const lockSessionWithAnswers = (tx: Tx, id: string | { tokenHash: Buffer }) =>
  tx<SessionWithAnswers[]>`
    select ${sessionWithAnswersColumns(tx)}
      from assessments.sessions s join assessments.assessments a on a.id = s.assessment_id
     where s.id = ${typeof id === 'string' ? id : tx`(select t.id from assessments.session_for_token(${id.tokenHash}) t)`} for update of s`.then((r) => r[0] ?? null)

/**
 * Many sessions locked (of the tenant the transaction is scoped to), with their answers: the answer inbox's batch.
 * Locked in id order, so two batches that share sessions wait for each other instead of deadlocking.
 */
export const lockSessionsWithAnswers = (tx: Tx, ids: string[]) =>
  tx<SessionWithAnswers[]>`
    select ${sessionWithAnswersColumns(tx)}
      from assessments.sessions s join assessments.assessments a on a.id = s.assessment_id
     where s.id = any(${ids}::uuid[]) order by s.id for update of s`

/**
 * The sessions behind many resume tokens (sha256), before any tenant is known, through the definer door of migration
 * 0034 (`ord` is the token's 1-based position in the input; a token that is not one has no row), and the transaction
 * scoped in the same statement to the lowest tenant id among them (transaction-local, as withTenant's). The answer
 * inbox's first round trip: lockTokenSessionsWithAnswers, pipelined right behind it, locks that tenant's sessions
 * without waiting for this answer. The scalar subquery is evaluated once, so every row sets the same tenant; with no
 * row (no token is one) nothing is set and the lock sees nothing.
 */
export const enterSessionsForTokens = (tx: Tx, tokenHashes: Buffer[]) =>
  tx<{ ord: number; id: string; tenantId: string }[]>`
    with found as (
      select u.ord::int as ord, t.id, t.tenant_id
        from unnest(${tokenHashes.map((h) => h.toString('hex'))}::text[]) with ordinality as u(h, ord)
       cross join lateral assessments.session_for_token(decode(u.h, 'hex')) t
    )
    select f.ord, f.id, f.tenant_id, set_config('app.tenant_id', (select g.tenant_id::text from found g order by g.tenant_id limit 1), true) as scoped
      from found f`

/**
 * The sessions behind these resume tokens that the transaction's tenant can see, locked in id order, with their
 * answers (lockSessionsWithAnswers by token instead of id, so it needs no earlier lookup). `= any(array(…))`, not
 * `in (select …)`: the planner then probes the token's unique index instead of scanning the tenant's sessions.
 */
export const lockTokenSessionsWithAnswers = (tx: Tx, tokenHashes: Buffer[]) =>
  tx<SessionWithAnswers[]>`
    select ${sessionWithAnswersColumns(tx)}
      from assessments.sessions s join assessments.assessments a on a.id = s.assessment_id
     where s.token_hash = any(array(select decode(h, 'hex') from unnest(${tokenHashes.map((h) => h.toString('hex'))}::text[]) h))
     order by s.id for update of s`

/**
 * The answer inbox's writes for one tenant, in one statement: the responses upserted (each (session, question) at
 * most once: the caller keeps the last) and each session moved to its final position of the batch.
 */
export const recordAnswers = (tx: Tx, tenantId: string,
  responses: { sessionId: string; questionId: string; value: AnswerValue; responseMs: number | null }[],
  sessions: { id: string; currentQuestionId: string | null; progress: number; answeredCount: number }[]) =>
  tx`
    with answered as (
      insert into assessments.responses (tenant_id, session_id, question_id, answer, response_ms)
      select ${tenantId}::uuid, x.session_id, x.question_id, jsonb_build_object('value', x.value), x.response_ms
        from jsonb_to_recordset(${tx.json(responses.map((r) => ({ session_id: r.sessionId, question_id: r.questionId, value: r.value, response_ms: r.responseMs })) as never)}::jsonb)
          as x(session_id uuid, question_id text, value jsonb, response_ms integer)
      on conflict (session_id, question_id) do update
         set answer = excluded.answer, response_ms = excluded.response_ms, revisions = assessments.responses.revisions + 1, answered_at = now()
      returning 1
    ), moved as (
      update assessments.sessions s
         set current_question_id = m.current_question_id, progress = m.progress, answered_count = m.answered_count, option_page = 0, last_activity_at = now()
        from jsonb_to_recordset(${tx.json(sessions.map((m) => ({ id: m.id, current_question_id: m.currentQuestionId, progress: m.progress, answered_count: m.answeredCount })) as never)}::jsonb)
          as m(id uuid, current_question_id text, progress smallint, answered_count integer)
       where s.id = m.id
      returning 1
    )
    select (select count(*) from answered)::int as answered, (select count(*) from moved)::int as moved`

/** The session, locked: answers, going back and completion of one session run one after another. */
export const lockSession = (tx: Tx, id: string) =>
  tx<SessionRow[]>`select ${sessionColumns(tx)} from assessments.sessions s where s.id = ${id} for update`.then((r) => r[0] ?? null)

export const findSession = (tx: Tx, id: string) =>
  tx<SessionRow[]>`select ${sessionColumns(tx)} from assessments.sessions s where s.id = ${id}`.then((r) => r[0] ?? null)

/** The conversation's assessment in progress or abandoned (the bot node resumes it), locked. */
export const lockOpenSessionOfConversation = (tx: Tx, conversationId: string, assessmentId: string) =>
  tx<SessionRow[]>`
    select ${sessionColumns(tx)} from assessments.sessions s
     where s.conversation_id = ${conversationId} and s.assessment_id = ${assessmentId} and s.status in ('in_progress', 'abandoned')
     order by s.started_at desc limit 1 for update`.then((r) => r[0] ?? null)

export const updateSession = (tx: Tx, id: string, p: {
  currentQuestionId?: string | null; progress?: number; answeredCount?: number; demographics?: Record<string, unknown>; status?: string
  completedAt?: 'now'; pausedAt?: 'now' | null; optionPage?: number
}) => {
  const sets = [
    p.currentQuestionId !== undefined && tx`current_question_id = ${p.currentQuestionId}`,
    p.progress !== undefined && tx`progress = ${p.progress}`,
    p.answeredCount !== undefined && tx`answered_count = ${p.answeredCount}`,
    p.demographics !== undefined && tx`demographics = ${tx.json(p.demographics as never)}`,
    p.status !== undefined && tx`status = ${p.status}`,
    p.completedAt !== undefined && tx`completed_at = now()`,
    p.pausedAt !== undefined && (p.pausedAt === null ? tx`paused_at = null` : tx`paused_at = now()`),
    p.optionPage !== undefined && tx`option_page = ${p.optionPage}`,
  ].filter((s) => s !== false)
  return tx<SessionRow[]>`
    update assessments.sessions s set ${sets.map((s) => tx`${s}, `)} last_activity_at = now() where s.id = ${id} returning ${sessionColumns(tx)}`.then((r) => r[0]!)
}

/**
 * Abandoned sessions reopened (the participant came back): in progress again, counted; a session not abandoned any
 * more (another request resumed it first) is left alone and not returned.
 */
export const resumeSessions = (tx: Tx, ids: string[]) =>
  tx<SessionRow[]>`
    update assessments.sessions s set status = 'in_progress', resumed_count = s.resumed_count + 1, last_activity_at = now()
     where s.id = any(${ids}::uuid[]) and s.status = 'abandoned'
    returning ${sessionColumns(tx)}`

/** Idle batch (migration 0053), step 2 under the tenant: the claimed sessions still idle marked abandoned. */
export const abandonSessions = (tx: Tx, ids: string[], idleBefore: Date) =>
  tx<SessionRow[]>`
    update assessments.sessions s set status = 'abandoned', abandoned_at = now()
     where s.id = any(${ids}::uuid[]) and s.status = 'in_progress' and s.last_activity_at <= ${idleBefore}
    returning ${sessionColumns(tx)}`

/** Idle batch, step 1 (cross-tenant, the definer door): idle in-progress sessions, locked, skipping held ones. */
export const claimIdleSessions = (tx: Tx, idleBefore: Date, limit: number) =>
  tx<{ id: string; tenantId: string }[]>`select id, tenant_id from assessments.claim_idle_sessions(${idleBefore}, ${limit})`

export const loadResponses = (tx: Tx, sessionId: string) =>
  tx<{ questionId: string; answer: { value: AnswerValue }; revisions: number }[]>`
    select question_id, answer, revisions from assessments.responses where session_id = ${sessionId}`
    .then((rows) => ({ answers: new Map(rows.map((r) => [r.questionId, r.answer.value] as const)), revisions: new Map(rows.map((r) => [r.questionId, r.revisions] as const)) }))

/**
 * The answer and the session's new position in one statement: the response upserted (replacing an earlier answer
 * after going back) and the session moved on. Returns the session and how often the question was answered.
 */
export const recordAnswer = (tx: Tx, r: { tenantId: string; sessionId: string; questionId: string; value: AnswerValue; responseMs: number | null },
  next: { currentQuestionId: string | null; progress: number; answeredCount: number }) =>
  tx<(SessionRow & { revision: number })[]>`
    with answered as (
      insert into assessments.responses (tenant_id, session_id, question_id, answer, response_ms)
      values (${r.tenantId}, ${r.sessionId}, ${r.questionId}, ${tx.json({ value: r.value } as never)}, ${r.responseMs})
      on conflict (session_id, question_id) do update
         set answer = excluded.answer, response_ms = excluded.response_ms, revisions = assessments.responses.revisions + 1, answered_at = now()
      returning revisions
    )
    update assessments.sessions s
       set current_question_id = ${next.currentQuestionId}, progress = ${next.progress}, answered_count = ${next.answeredCount}, option_page = 0, last_activity_at = now()
     where s.id = ${r.sessionId}
    returning ${sessionColumns(tx)}, (select revisions from answered) as revision`.then((rows) => rows[0]!)

/** The answer to a question, replacing an earlier one (after going back); returns how often it was answered. */
export const upsertResponse = (tx: Tx, r: { tenantId: string; sessionId: string; questionId: string; value: AnswerValue; responseMs: number | null }) =>
  tx<{ revisions: number }[]>`
    insert into assessments.responses (tenant_id, session_id, question_id, answer, response_ms)
    values (${r.tenantId}, ${r.sessionId}, ${r.questionId}, ${tx.json({ value: r.value } as never)}, ${r.responseMs})
    on conflict (session_id, question_id) do update
       set answer = excluded.answer, response_ms = excluded.response_ms, revisions = assessments.responses.revisions + 1, answered_at = now()
    returning revisions`.then((r) => r[0]!.revisions)

// ---------------------------------------------------------------------------------------------------------------
// Results

export interface ResultRow extends Score {
  id: string
  sessionId: string
  rubricVersion: number
  scoredVersionId: string
  computedAt: Date
}
const resultColumns = (tx: Tx) => tx`
  r.id, r.session_id, r.total_score::float8 as total_score, r.category_scores, r.formula_values, r.band, r.band_label, r.recommendations, r.rubric_version,
  r.scored_version_id, r.computed_at`

/** The session's result, once: a second completion (a retry, a race) inserts nothing and gets null. */
export const insertResult = (tx: Tx, r: { tenantId: string; sessionId: string; assessmentId: string; scoredVersionId: string; rubricVersion: number; score: Score }) =>
  tx<ResultRow[]>`
    insert into assessments.results as r (tenant_id, session_id, assessment_id, scored_version_id, rubric_version, total_score, category_scores, formula_values,
                                          band, band_label, recommendations)
    values (${r.tenantId}, ${r.sessionId}, ${r.assessmentId}, ${r.scoredVersionId}, ${r.rubricVersion}, ${r.score.totalScore},
            ${tx.json(r.score.categoryScores as never)}, ${tx.json(r.score.formulaValues as never)}, ${r.score.band}, ${r.score.bandLabel},
            ${tx.json(r.score.recommendations as never)})
    on conflict (session_id) do nothing
    returning ${resultColumns(tx)}`.then((rows) => rows[0] ?? null)

export const findResultOfSession = (tx: Tx, sessionId: string) =>
  tx<ResultRow[]>`select ${resultColumns(tx)} from assessments.results r where r.session_id = ${sessionId}`.then((r) => r[0] ?? null)

export const findResult = (tx: Tx, id: string) =>
  tx<(ResultRow & { assessmentId: string })[]>`select ${resultColumns(tx)}, r.assessment_id from assessments.results r where r.id = ${id}`.then((r) => r[0] ?? null)

export const resultHistory = (tx: Tx, resultId: string) =>
  tx<{ rubricVersion: number; totalScore: number; band: string | null; categoryScores: Record<string, number>; computedAt: Date; replacedAt: Date; runId: string | null }[]>`
    select rubric_version, total_score::float8 as total_score, band, category_scores, computed_at, replaced_at, run_id
      from assessments.result_history where result_id = ${resultId} order by replaced_at, id`

export const enqueueAnalyzeResult = (tx: Tx, task: string, tenantId: string, resultId: string) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::text, 'resultId', ${resultId}::text),
                                    job_key => ${`assessments:analyze:${resultId}`}, max_attempts => 10)`

/**
 * The analysis job for many results in one statement (graphile-worker's add_jobs), with the same job key as the
 * completion's: a job still waiting is replaced, one already running gets a successor. Payload and key hold ids only.
 */
export const enqueueAnalyzeResults = (tx: Tx, task: string, tenantId: string, resultIds: string[]) =>
  resultIds.length === 0
    ? Promise.resolve(0)
    : tx<{ n: number }[]>`
        select count(*)::int as n from graphile_worker.add_jobs(array(
          select row(${task}::text, json_build_object('tenantId', ${tenantId}::text, 'resultId', r.id::text), null::text, null::timestamptz, 10,
                     'assessments:analyze:' || r.id::text, null::integer, null::text[])::graphile_worker.job_spec
            from unnest(${resultIds}::uuid[]) as r(id) order by r.id))`.then((r) => r[0]!.n)

// ---------------------------------------------------------------------------------------------------------------
// Re-scoring

export interface RunRow {
  id: string; assessmentId: string; versionId: string; rubricVersion: number; reason: string; status: string; cursor: string | null
  rescored: number; unchanged: number; skipped: number; batches: number; lastError: string | null; requestedBy: string; createdAt: Date; finishedAt: Date | null
}
const runColumns = (tx: Tx) => tx`
  id, assessment_id, version_id, rubric_version, reason, status, cursor, rescored, unchanged, skipped, batches, last_error, requested_by, created_at, finished_at`

/**
 * A run for the assessment; a run still going is pointed at the newer rubric and starts over (the newest rubric is
 * what every result must end up with), so there is at most one (migration 0034's unique index).
 */
export const startRun = (tx: Tx, r: { tenantId: string; assessmentId: string; versionId: string; rubricVersion: number; reason: string; requestedBy: string }) =>
  tx<RunRow[]>`
    insert into assessments.rescoring_runs (tenant_id, assessment_id, version_id, rubric_version, reason, requested_by)
    values (${r.tenantId}, ${r.assessmentId}, ${r.versionId}, ${r.rubricVersion}, ${r.reason}, ${r.requestedBy})
    on conflict (assessment_id) where status = 'running' do update
       set version_id = excluded.version_id, rubric_version = excluded.rubric_version, reason = excluded.reason, requested_by = excluded.requested_by,
           cursor = null, rescored = 0, unchanged = 0, skipped = 0, batches = 0, created_at = now()
    returning ${runColumns(tx)}`.then((rows) => rows[0]!)

export const lockRun = (tx: Tx, id: string) => tx<RunRow[]>`select ${runColumns(tx)} from assessments.rescoring_runs where id = ${id} for update`.then((r) => r[0] ?? null)
export const findRun = (tx: Tx, id: string) => tx<RunRow[]>`select ${runColumns(tx)} from assessments.rescoring_runs where id = ${id}`.then((r) => r[0] ?? null)
export const listRuns = (tx: Tx, assessmentId: string) =>
  tx<RunRow[]>`select ${runColumns(tx)} from assessments.rescoring_runs where assessment_id = ${assessmentId} order by created_at desc limit 20`

export const enqueueRescore = (tx: Tx, task: string, tenantId: string, runId: string) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::text, 'runId', ${runId}::text),
                                    job_key => ${`assessments:rescore:${runId}`}, job_key_mode => 'replace', max_attempts => 10)`

/**
 * The next batch of completed sessions to re-score: on versions with the same questions as the rubric's version, in
 * id order after the cursor, with their answers, as one round trip.
 */
export const rescoreBatch = (tx: Tx, run: { assessmentId: string; versionId: string; cursor: string | null }, limit: number) =>
  tx<{ sessionId: string; leadId: string | null; resultId: string | null; answers: Record<string, { value: AnswerValue }> | null; totalScore: number | null; band: string | null; bandLabel: string | null; categoryScores: Record<string, number> | null; recommendations: string[] | null; rubricVersion: number | null; scoredVersionId: string | null; demographics: Record<string, unknown> }[]>`
    select s.id as session_id, s.lead_id, r.id as result_id, r.total_score::float8 as total_score, r.band, r.band_label, r.category_scores, r.recommendations, r.rubric_version, r.scored_version_id,
           s.demographics,
           (select jsonb_object_agg(x.question_id, x.answer) from assessments.responses x where x.session_id = s.id) as answers
      from assessments.sessions s
      left join assessments.results r on r.session_id = s.id
     where s.assessment_id = ${run.assessmentId} and s.status = 'completed'
       and s.version_id in (select o.id from assessments.assessment_versions o, assessments.assessment_versions t
                             where t.id = ${run.versionId} and o.assessment_id = t.assessment_id and o.questions_hash = t.questions_hash and o.published_at is not null)
       and ${run.cursor ? tx`s.id > ${run.cursor}::uuid` : tx`true`}
     order by s.id limit ${limit}`

/** Replaces results with their new scores in one statement, keeping each one's previous form in result_history. */
export async function replaceResults(tx: Tx, runId: string, versionId: string, rubricVersion: number, rows: { resultId: string; score: Score }[]): Promise<number> {
  if (rows.length === 0) return 0
  const ids = rows.map((r) => r.resultId)
  await tx`
    insert into assessments.result_history (tenant_id, result_id, scored_version_id, rubric_version, total_score, category_scores, band, computed_at, run_id)
    select r.tenant_id, r.id, r.scored_version_id, r.rubric_version, r.total_score, r.category_scores, r.band, coalesce(r.rescored_at, r.computed_at), ${runId}
      from assessments.results r where r.id = any(${ids}::uuid[])`
  const payload = rows.map((r) => ({
    id: r.resultId, total: r.score.totalScore, categories: r.score.categoryScores, formulas: r.score.formulaValues, band: r.score.band,
    bandLabel: r.score.bandLabel, recommendations: r.score.recommendations,
  }))
  const updated = await tx`
    update assessments.results r
       set total_score = (x->>'total')::numeric, category_scores = x->'categories', formula_values = x->'formulas', band = x->>'band',
           band_label = x->>'bandLabel', recommendations = x->'recommendations', rubric_version = ${rubricVersion}, scored_version_id = ${versionId},
           rescored_at = now()
      from jsonb_array_elements(${tx.json(payload as never)}::jsonb) x
     where r.id = (x->>'id')::uuid`
  return updated.count
}

/** Marks results already equal to the new score as scored by the new rubric (nothing else changes, no history). */
export const stampResults = (tx: Tx, versionId: string, rubricVersion: number, resultIds: string[]) =>
  resultIds.length === 0
    ? Promise.resolve()
    : tx`update assessments.results set rubric_version = ${rubricVersion}, scored_version_id = ${versionId}
          where id = any(${resultIds}::uuid[]) and (rubric_version <> ${rubricVersion} or scored_version_id <> ${versionId})`

export const advanceRun = (tx: Tx, id: string, p: { cursor: string | null; rescored: number; unchanged: number; skipped: number; done: boolean }) =>
  tx<RunRow[]>`
    update assessments.rescoring_runs
       set cursor = ${p.cursor}, rescored = rescored + ${p.rescored}, unchanged = unchanged + ${p.unchanged}, skipped = skipped + ${p.skipped},
           batches = batches + 1, status = ${p.done ? 'completed' : 'running'}, finished_at = ${p.done ? tx`now()` : tx`null`}
     where id = ${id} returning ${runColumns(tx)}`.then((r) => r[0]!)

export const failRun = (tx: Tx, id: string, error: string) =>
  tx`update assessments.rescoring_runs set status = 'failed', last_error = ${error}, finished_at = now() where id = ${id} and status = 'running'`

/** Whether any completed session could be re-scored by this version (same questions). */
export const hasCompletedSessionsFor = (tx: Tx, versionId: string) =>
  tx<{ found: boolean }[]>`
    select exists (select 1 from assessments.sessions s join assessments.assessment_versions o on o.id = s.version_id
                     join assessments.assessment_versions t on t.id = ${versionId}
                    where s.assessment_id = t.assessment_id and s.status = 'completed' and o.questions_hash = t.questions_hash) as found`.then((r) => r[0]!.found)
