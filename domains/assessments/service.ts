import { z } from 'zod'
import { sha256, randomToken } from '../../lib/crypto.js'
import { setTenant, type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../lib/pagination.js'
import { assessmentAnswered, assessmentCompleted, assessmentResumed, assessmentStarted, linkCompleted, recordPlatformEvents } from '../analytics/platform-events.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import {
  type Answers, type CompiledDefinition, compileDefinition, missingProfileFields, normalizeAnswer, normalizeDemographics, optionsOf, questionsHash,
  visibleQuestions,
} from './definition.js'
import * as q from './queries.js'
import {
  ANALYZE_RESULT_TASK, type AnswerBody, type AnswerValue, type AssessmentView, type Channel, type CreateAssessmentBody, Definition, type Demographics,
  type Question, RESCORE_TASK, type ResultView, type SessionStateView, type VersionView,
} from './schemas.js'
import { score } from './scoring.js'

/** Who changes a definition, for the audit log. */
export interface Actor { tenantId: string; actor: string; requestId: string | null }

const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`)
const conflict = (message: string, details?: unknown) => new AppError('CONFLICT', message, details === undefined ? {} : { details })
const badRequest = (message: string, details?: unknown) => new AppError('BAD_REQUEST', message, details === undefined ? {} : { details })

const audit = (tx: Tx, who: Actor, action: string, a: { id: string; key: string }, details: Record<string, unknown> = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType: 'assessment', targetId: a.id, details: { key: a.key, ...details }, requestId: who.requestId ?? undefined })

// ---------------------------------------------------------------------------------------------------------------
// Compiled versions: published versions never change, so a compiled one is kept for the life of the process.

const compiledCache = new Map<string, LoadedVersion>()
const COMPILED_CACHE_MAX = 500

export const definitionOf = (v: Pick<VersionView, 'questions' | 'categories' | 'rubric' | 'profileFields'>): Definition =>
  Definition.parse({ questions: v.questions, categories: v.categories, rubric: v.rubric, profileFields: v.profileFields })

type LoadedVersion = { compiled: CompiledDefinition; version: VersionView & { assessmentId: string } }

/**
 * A version compiled. Published versions are frozen (a trigger refuses updates), so they are kept for the life of
 * the process and not read again: the answer path does not fetch the definition on every request. The cache is
 * per process and keyed by the version's id; RLS still guards the sessions that point at it.
 */
export async function compiledVersion(tx: Tx, versionId: string): Promise<LoadedVersion> {
  const cached = compiledCache.get(versionId)
  if (cached) return cached
  const v = await q.findVersion(tx, versionId)
  if (!v) throw notFound(`assessment version ${versionId}`)
  const { compiled, issues } = compileDefinition(definitionOf(v))
  // Published versions passed these checks; a failure here is a bug, not the participant's problem.
  if (!compiled) throw new Error(`assessment version ${versionId} does not compile: ${issues[0]?.message}`)
  const loaded = { compiled, version: v }
  if (v.publishedAt) {
    if (compiledCache.size >= COMPILED_CACHE_MAX) compiledCache.delete(compiledCache.keys().next().value!)
    compiledCache.set(versionId, loaded)
  }
  return loaded
}

// ---------------------------------------------------------------------------------------------------------------
// Definitions (admin)

export interface AssessmentDetail extends AssessmentView {
  versions: (VersionView & { issues?: { path: (string | number)[]; message: string }[] })[]
}

const issuesOf = (d: Definition) => compileDefinition(d).issues

export const createAssessment = (sql: Sql, who: Actor, body: CreateAssessmentBody): Promise<AssessmentDetail> =>
  withTenant(sql, who.tenantId, (tx) => createAssessmentIn(tx, who, body))

/** createAssessment inside the caller's transaction (the demo seed); `publicKey` only for fixed demo keys. */
export async function createAssessmentIn(tx: Tx, who: Actor, body: CreateAssessmentBody, publicKey = `ak_${randomToken(18)}`): Promise<AssessmentDetail> {
  const a = await q.insertAssessment(tx, who.tenantId, { key: body.key, type: body.type, name: body.name, description: body.description, publicKey })
  const draft = await q.saveDraft(tx, who.tenantId, a.id, body.definition, questionsHash(body.definition.questions))
  await audit(tx, who, 'assessment.created', a)
  return { ...a, versions: [{ ...draft, issues: issuesOf(body.definition) }] }
}

const AssessmentCursor = keysetCursor(z.uuid())
export const listAssessments = (sql: Sql, tenantId: string, query: { limit: number; cursor?: string }) =>
  withTenant(sql, tenantId, async (tx) => {
    const after = query.cursor ? decodeCursor(query.cursor, AssessmentCursor) : null
    const rows = await q.listAssessments(tx, query.limit, after)
    const data = rows.slice(0, query.limit).map(({ cursorAt: _c, ...a }) => a)
    const last = rows[query.limit - 1]
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null }
  })

export const getAssessment = (sql: Sql, tenantId: string, id: string): Promise<AssessmentDetail> =>
  withTenant(sql, tenantId, async (tx) => {
    const a = await q.findAssessment(tx, id)
    if (!a) throw notFound(`assessment ${id}`)
    const versions = await q.listVersions(tx, id)
    return { ...a, versions: versions.map((v) => (v.publishedAt ? v : { ...v, issues: issuesOf(definitionOf(v)) })) }
  })

export const patchAssessment = (sql: Sql, who: Actor, id: string, body: { name?: string; description?: string; status?: 'published' | 'archived' }) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const a = await q.findAssessment(tx, id, true)
    if (!a) throw notFound(`assessment ${id}`)
    if (body.status === 'published' && a.publishedVersion === null) throw conflict(`assessment ${a.key} has no published version: POST /v1/assessments/${id}/publish`)
    const updated = await q.updateAssessment(tx, id, body)
    await audit(tx, who, 'assessment.updated', a, { fields: Object.keys(body) })
    return updated
  })

/** Saves the draft (a new version after the published one). Shapes are checked now; references and formulas at publish, listed as issues meanwhile. */
export const saveDraft = (sql: Sql, who: Actor, id: string, definition: Definition) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const a = await q.findAssessment(tx, id, true)
    if (!a) throw notFound(`assessment ${id}`)
    const draft = await q.saveDraft(tx, who.tenantId, id, definition, questionsHash(definition.questions))
    await audit(tx, who, 'assessment.draft_saved', a, { version: draft.version })
    return { ...draft, issues: issuesOf(definition) }
  })

const scoringPart = (v: Pick<VersionView, 'rubric' | 'categories'>) => JSON.stringify({ rubric: v.rubric, categories: v.categories })

/**
 * Publishes the draft: every check of definition.ts must pass (400 with each issue, nothing changes). The version is
 * frozen from now on (a trigger refuses any update). A rubric that differs from the last published one takes the
 * next rubric_version; when completed sessions have the same questions, a re-scoring run starts in this transaction.
 */
export const publishDraft = (sql: Sql, who: Actor, id: string) => withTenant(sql, who.tenantId, (tx) => publishDraftIn(tx, who, id))

export async function publishDraftIn(tx: Tx, who: Actor, id: string) {
  {
    const a = await q.findAssessment(tx, id, true)
    if (!a) throw notFound(`assessment ${id}`)
    const draft = await q.findDraft(tx, id)
    if (!draft) throw conflict(`assessment ${a.key} has no draft to publish: PUT /v1/assessments/${id}/draft first`)
    const issues = issuesOf(definitionOf(draft))
    if (issues.length > 0) {
      throw badRequest(`version ${draft.version} cannot be published: ${issues.length} problem${issues.length > 1 ? 's' : ''}`, issues.map((i) => ({ in: 'definition', path: i.path.join('.'), message: i.message })))
    }
    const previous = a.publishedVersion === null ? null : await q.findVersionByNumber(tx, id, a.publishedVersion)
    const rubricChanged = previous === null || scoringPart(previous) !== scoringPart(draft)
    const rubricVersion = rubricChanged ? a.rubricVersion + 1 : a.rubricVersion
    const published = (await q.publishVersion(tx, draft.id, rubricVersion))!
    const updated = await q.updateAssessment(tx, id, { status: 'published', publishedVersion: published.version, rubricVersion })
    let run: q.RunRow | null = null
    if (previous !== null && rubricChanged && (await q.hasCompletedSessionsFor(tx, published.id))) {
      run = await startRescoring(tx, who, { assessmentId: id, versionId: published.id, rubricVersion, reason: 'publish' })
    }
    await audit(tx, who, 'assessment.published', a, { version: published.version, rubricVersion, rescoringRunId: run?.id ?? null })
    return { assessment: updated, version: published, rescoringRun: run }
  }
}

async function startRescoring(tx: Tx, who: Actor, r: { assessmentId: string; versionId: string; rubricVersion: number; reason: 'publish' | 'request' }) {
  const run = await q.startRun(tx, { tenantId: who.tenantId, ...r, requestedBy: who.actor })
  await q.enqueueRescore(tx, RESCORE_TASK, who.tenantId, run.id)
  return run
}

/** Re-scores every completed session with the published rubric (or a given published version's), as a job. */
export const requestRescore = (sql: Sql, who: Actor, id: string, versionId?: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const a = await q.findAssessment(tx, id, true)
    if (!a) throw notFound(`assessment ${id}`)
    const v = versionId ? await q.findVersion(tx, versionId) : a.publishedVersion !== null ? await q.findVersionByNumber(tx, id, a.publishedVersion) : null
    if (!v || ('assessmentId' in v && v.assessmentId !== id)) throw notFound(versionId ? `version ${versionId} of assessment ${id}` : `a published version of assessment ${id}`)
    if (!v.publishedAt) throw conflict(`version ${v.version} is a draft: only published rubrics score results`)
    const run = await startRescoring(tx, who, { assessmentId: id, versionId: v.id, rubricVersion: v.rubricVersion, reason: 'request' })
    await audit(tx, who, 'assessment.rescore_requested', a, { runId: run.id, version: v.version })
    return run
  })

export const getRun = (sql: Sql, tenantId: string, assessmentId: string, runId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const run = await q.findRun(tx, runId)
    if (!run || run.assessmentId !== assessmentId) throw notFound(`re-scoring run ${runId}`)
    return run
  })

export const listRuns = (sql: Sql, tenantId: string, assessmentId: string) => withTenant(sql, tenantId, (tx) => q.listRuns(tx, assessmentId))

// ---------------------------------------------------------------------------------------------------------------
// Sessions: the rules both channels share. Every function takes the transaction of the caller, with the session
// row locked, so one session's answers apply one after another.

export interface StartInput {
  assessmentId: string
  channel: Channel
  linkId?: string | null
  partnerId?: string | null
  leadId?: string | null
  conversationId?: string | null
  demographics?: Demographics
}

export interface Started {
  session: q.SessionRow
  /** The resume token (web sessions only): shown once, stored as its sha256. */
  token: string | null
  compiled: CompiledDefinition
}

const TOKEN_PATTERN = /^ast_[A-Za-z0-9_-]{43}$/

/** Starts a session on the assessment's published version (contract: partners and the bot call this too). */
export async function startSession(tx: Tx, input: StartInput): Promise<Started> {
  const a = await q.findAssessment(tx, input.assessmentId)
  if (!a || a.status !== 'published' || a.publishedVersion === null) throw notFound(`assessment ${input.assessmentId}`)
  const v = await q.findVersionByNumber(tx, a.id, a.publishedVersion)
  if (!v) throw notFound(`assessment ${input.assessmentId}`)
  const { compiled } = await compiledVersion(tx, v.id)
  let demographics: Demographics = {}
  if (input.demographics) {
    const checked = normalizeDemographics(compiled.definition.profileFields, input.demographics)
    if (!checked.ok) throw badRequest('invalid demographics', checked.issues.map((i) => ({ in: 'body', path: `demographics.${i.path.join('.')}`, message: i.message })))
    demographics = checked.value
  }
  const token = input.channel === 'web' ? `ast_${randomToken(32)}` : null
  const first = visibleQuestions(compiled.definition.questions, new Map())[0] ?? null
  const [tenant] = await tx<{ id: string }[]>`select core.current_tenant_id() as id`
  const session = await q.insertSession(tx, {
    tenantId: tenant!.id, assessmentId: a.id, versionId: v.id, tokenHash: token ? sha256(token) : null, channel: input.channel,
    leadId: input.leadId ?? null, conversationId: input.conversationId ?? null, linkId: input.linkId ?? null, partnerId: input.partnerId ?? null,
    currentQuestionId: first?.id ?? null, demographics,
  })
  await recordPlatformEvents(tx, [assessmentStarted({ ...factOf(session), at: session.startedAt, version: v.version, firstQuestionId: first?.id ?? null })])
  return { session, token, compiled }
}

const factOf = (s: q.SessionRow) => ({ assessmentId: s.assessmentId, sessionId: s.id, channel: s.channel, leadId: s.leadId, linkId: s.linkId, partnerId: s.partnerId })

export interface SessionContext {
  session: q.SessionRow
  compiled: CompiledDefinition
  answers: Map<string, AnswerValue>
  revisions: Map<string, number>
  assessment: { key: string; name: string; type: AssessmentView['type'] }
  version: number
}

/** What the rules need about a session locked with its answers (lockSessionWithAnswers): no further reads. */
async function contextOfLocked(tx: Tx, row: NonNullable<Awaited<ReturnType<typeof q.lockSessionWithAnswers>>>): Promise<SessionContext> {
  const { answers, revisionsByQuestion, assessmentKey, assessmentName, assessmentType, ...session } = row
  const { compiled, version } = await compiledVersion(tx, session.versionId)
  return {
    session, compiled, assessment: { key: assessmentKey, name: assessmentName, type: assessmentType }, version: version.version,
    answers: new Map(Object.entries(answers ?? {}).map(([k, v]) => [k, v.value] as const)),
    revisions: new Map(Object.entries(revisionsByQuestion ?? {})),
  }
}

/** Loads what the rules need about a locked session. */
export async function sessionContext(tx: Tx, session: q.SessionRow): Promise<SessionContext> {
  const { compiled, version } = await compiledVersion(tx, session.versionId)
  const a = (await q.findAssessment(tx, session.assessmentId))!
  const { answers, revisions } = await q.loadResponses(tx, session.id)
  return { session, compiled, answers, revisions, assessment: { key: a.key, name: a.name, type: a.type }, version: version.version }
}

function progressOf(questions: readonly Question[], answers: Answers) {
  const shown = visibleQuestions(questions, answers)
  const answered = shown.filter((x) => answers.has(x.id)).length
  return { shown, answered, total: shown.length, progress: shown.length === 0 ? 100 : Math.floor((answered / shown.length) * 100) }
}

/**
 * An abandoned session (the idle batch, abandonment.ts) is the participant's to take up again: their next answer,
 * back, profile or completion reopens it (in progress, resumed_count + 1, an `assessment.resumed` event), in the
 * transaction of that action, so a refused action reopens nothing. Viewing it does not: a GET changes nothing.
 */
export async function resumeIfAbandoned(tx: Tx, ctx: SessionContext): Promise<boolean> {
  if (ctx.session.status !== 'abandoned') return false
  const [row] = await q.resumeSessions(tx, [ctx.session.id])
  if (!row) return false
  ctx.session = row
  await recordPlatformEvents(tx, [resumedEvent(row)])
  return true
}

const resumedEvent = (s: q.SessionRow) => assessmentResumed({ ...factOf(s), at: new Date(), resumedCount: s.resumedCount })

/** The 409 for a session that takes no more answers (completed, or in a batch, completing). */
const closedTo = (status: string, what = 'answers are closed') =>
  conflict(`this assessment is ${status === 'completed' ? 'already completed' : status}; ${what}`, { status })

/** What an accepted answer changes: the session's context is already moved on in memory; the writes follow. */
export interface PlannedAnswer {
  question: Question
  value: AnswerValue
  /** How often the question has been answered, this answer included. */
  revision: number
  next: Question | null
  progress: number
  answered: number
  responseMs: number | null
  at: Date
}

/**
 * The rules of an answer, with no I/O: a question that is not the current one (or is hidden) is a 409, naming the
 * current; an answer the question does not allow is a 400; a completed session is a 409. The same answer to the
 * question just answered is a retry: null, nothing changes. Otherwise the context (answers, revisions, the session's
 * position) is moved on in memory, so the next answer of the same session, in the same batch, sees this one.
 */
export function planAnswer(ctx: SessionContext, body: AnswerBody, at = new Date()): PlannedAnswer | null {
  const s = ctx.session
  if (s.status !== 'in_progress') throw closedTo(s.status)
  const def = ctx.compiled.definition
  const question = ctx.compiled.byId.get(body.questionId)
  if (body.questionId !== s.currentQuestionId) {
    const previous = previousQuestion(def.questions, ctx.answers, s.currentQuestionId)
    if (question && previous?.id === question.id && ctx.answers.has(question.id)) {
      const again = normalizeAnswer(question, body.value)
      if (again.ok && JSON.stringify(again.value) === JSON.stringify(ctx.answers.get(question.id))) return null
    }
    throw conflict(`question ${body.questionId} is not the current question${s.currentQuestionId ? ` (${s.currentQuestionId} is)` : ' (all questions are answered)'}`, { currentQuestionId: s.currentQuestionId })
  }
  if (!question) throw conflict(`question ${body.questionId} is not part of this assessment`, { currentQuestionId: s.currentQuestionId })
  const checked = normalizeAnswer(question, body.value)
  if (!checked.ok) throw badRequest(`invalid answer to ${question.id}: ${checked.message}`, [{ in: 'body', path: 'value', message: checked.message }])

  ctx.answers.set(question.id, checked.value)
  const p = progressOf(def.questions, ctx.answers)
  const next = nextQuestion(def.questions, ctx.answers, question.id)
  // The session is locked, so the answer's revision is known before it is written.
  const revision = (ctx.revisions.get(question.id) ?? 0) + 1
  ctx.revisions.set(question.id, revision)
  ctx.session = { ...s, currentQuestionId: next?.id ?? null, progress: p.progress, answeredCount: p.answered, optionPage: 0, lastActivityAt: at }
  return { question, value: checked.value, revision, next, progress: p.progress, answered: p.answered, responseMs: body.responseMs ?? null, at }
}

const answeredEvent = (s: q.SessionRow, a: PlannedAnswer) =>
  assessmentAnswered({ ...factOf(s), at: a.at, questionId: a.question.id, revision: a.revision, responseMs: a.responseMs, nextQuestionId: a.next?.id ?? null })

/** Whether the session is to complete now: every shown question answered and the required profile fields there. */
const readyToComplete = (ctx: SessionContext) =>
  ctx.session.status === 'in_progress' && ctx.session.currentQuestionId === null && missingProfileFields(ctx.compiled.definition.profileFields, ctx.session.demographics).length === 0

/**
 * Answers the current question (planAnswer's rules) in the caller's transaction, the session locked. When no
 * question is left and the profile is complete, the session completes in this transaction. The bot and the factories
 * answer through here; the web path goes through the answer inbox (answerBatch), which writes many at once.
 */
export async function answerQuestion(tx: Tx, ctx: SessionContext, body: AnswerBody): Promise<SessionContext> {
  await resumeIfAbandoned(tx, ctx)
  const s = ctx.session
  const a = planAnswer(ctx, body)
  if (!a) return ctx
  // The response, the session's move and the event go out together (pipelined) instead of one round trip after another.
  const [{ revision, ...moved }] = await Promise.all([
    q.recordAnswer(tx, { tenantId: s.tenantId, sessionId: s.id, questionId: a.question.id, value: a.value, responseMs: a.responseMs },
      { currentQuestionId: a.next?.id ?? null, progress: a.progress, answeredCount: a.answered }),
    recordPlatformEvents(tx, [answeredEvent(s, a)]),
  ])
  ctx.revisions.set(a.question.id, revision)
  ctx.session = moved
  if (!a.next) await completeIfReady(tx, ctx)
  return ctx
}

/** The next question shown after `afterId` (in the definition's order), for the answers so far. */
export function nextQuestion(questions: readonly Question[], answers: Answers, afterId: string): Question | null {
  const index = questions.findIndex((x) => x.id === afterId)
  const shown = new Set(visibleQuestions(questions, answers).map((x) => x.id))
  return questions.slice(index + 1).find((x) => shown.has(x.id)) ?? null
}

/** The question shown before the current one (before the end when all are answered). */
export function previousQuestion(questions: readonly Question[], answers: Answers, currentId: string | null): Question | null {
  const shown = visibleQuestions(questions, answers)
  const index = currentId === null ? shown.length : shown.findIndex((x) => x.id === currentId)
  return index > 0 ? shown[index - 1]! : null
}

/** Goes back one question; its answer is kept until it is answered again. */
export async function goBack(tx: Tx, ctx: SessionContext): Promise<SessionContext> {
  await resumeIfAbandoned(tx, ctx)
  const s = ctx.session
  if (s.status !== 'in_progress') throw conflict(`this assessment is ${s.status === 'completed' ? 'already completed' : s.status}`, { status: s.status })
  const previous = previousQuestion(ctx.compiled.definition.questions, ctx.answers, s.currentQuestionId)
  if (!previous) throw conflict('this is the first question: there is nothing to go back to', { currentQuestionId: s.currentQuestionId })
  ctx.session = await q.updateSession(tx, s.id, { currentQuestionId: previous.id, optionPage: 0 })
  return ctx
}

/** Sets profile fields (merged with those given before); completes the session when that was all it waited for. */
export async function saveProfile(tx: Tx, ctx: SessionContext, given: Demographics): Promise<SessionContext> {
  await resumeIfAbandoned(tx, ctx)
  const s = ctx.session
  if (s.status !== 'in_progress') throw conflict(`this assessment is ${s.status === 'completed' ? 'already completed' : s.status}`, { status: s.status })
  const checked = normalizeDemographics(ctx.compiled.definition.profileFields, given)
  if (!checked.ok) throw badRequest('invalid demographics', checked.issues.map((i) => ({ in: 'body', path: `demographics.${i.path.join('.')}`, message: i.message })))
  ctx.session = await q.updateSession(tx, s.id, { demographics: { ...s.demographics, ...checked.value } })
  if (ctx.session.currentQuestionId === null) await completeIfReady(tx, ctx)
  return ctx
}

/**
 * Computes the result when every shown question is answered and the required profile fields are there: the result
 * (once per session: a unique session_id), the session marked completed, the analysis job and the event, all in the
 * caller's transaction. Idempotent: a completed session returns its result.
 */
export async function completeIfReady(tx: Tx, ctx: SessionContext): Promise<q.ResultRow | null> {
  const s = ctx.session
  if (s.status === 'completed') return q.findResultOfSession(tx, s.id)
  if (s.currentQuestionId !== null) return null
  if (missingProfileFields(ctx.compiled.definition.profileFields, s.demographics).length > 0) return null
  const { version } = await compiledVersion(tx, s.versionId)
  const result = await q.insertResult(tx, {
    tenantId: s.tenantId, sessionId: s.id, assessmentId: s.assessmentId, scoredVersionId: s.versionId, rubricVersion: version.rubricVersion,
    score: score(ctx.compiled, ctx.answers),
  })
  if (!result) return q.findResultOfSession(tx, s.id)
  // The session's own completion time, so the report's durations from events equal completed_at - started_at: both
  // it and the result's computed_at are now(), the transaction's start, so the events need not wait for the update.
  // The three writes go out together (pipelined): one round trip after the result's instead of three.
  const completedAt = result.computedAt
  const [session] = await Promise.all([
    q.updateSession(tx, s.id, { status: 'completed', completedAt: 'now', progress: 100, currentQuestionId: null }),
    q.enqueueAnalyzeResult(tx, ANALYZE_RESULT_TASK, s.tenantId, result.id),
    recordPlatformEvents(tx, [
      assessmentCompleted({ ...factOf(s), at: completedAt, resultId: result.id, totalScore: result.totalScore, band: result.band }),
      // A session through a partner link: the link's completion too (domains/assessments/partners).
      ...(s.linkId && s.partnerId ? [linkCompleted({ sessionId: s.id, linkId: s.linkId, partnerId: s.partnerId, leadId: s.leadId, channel: s.channel, at: completedAt })] : []),
    ]),
  ])
  ctx.session = session
  return result
}

export const resultView = (r: q.ResultRow): ResultView => ({
  id: r.id, totalScore: r.totalScore, categoryScores: r.categoryScores, formulaValues: r.formulaValues, band: r.band, bandLabel: r.bandLabel,
  recommendations: r.recommendations, rubricVersion: r.rubricVersion, computedAt: r.computedAt,
})

// In SessionStateView's order (help before required), so the state's JSON is written without zod (state-json.ts).
const publicQuestion = (x: Question) => ({
  id: x.id, type: x.type, text: x.text,
  ...(x.help ? { help: x.help } : {}),
  required: x.required,
  ...(x.type === 'single_choice' || x.type === 'multiple_choice' || x.type === 'yes_no' ? { options: optionsOf(x) } : {}),
  ...(x.min !== undefined ? { min: x.min } : x.type === 'scale' ? { min: 1 } : {}),
  ...(x.max !== undefined ? { max: x.max } : x.type === 'scale' ? { max: 5 } : {}),
  ...(x.step !== undefined ? { step: x.step } : {}),
  ...(x.unit ? { unit: x.unit } : {}),
  ...(x.minSelections !== undefined ? { minSelections: x.minSelections } : {}),
  ...(x.maxSelections !== undefined ? { maxSelections: x.maxSelections } : {}),
  ...(x.type === 'text' ? { maxLength: x.maxLength ?? 1000 } : {}),
})

export async function stateView(tx: Tx, ctx: SessionContext): Promise<SessionStateView> {
  return viewOf(ctx, ctx.session.status === 'completed' ? await q.findResultOfSession(tx, ctx.session.id) : null)
}

/** The session's state as the participant sees it, from its context (and its result once completed): no I/O. */
export function viewOf(ctx: SessionContext, result: q.ResultRow | null): SessionStateView {
  const s = ctx.session
  const def = ctx.compiled.definition
  const p = progressOf(def.questions, ctx.answers)
  const current = s.currentQuestionId ? ctx.compiled.byId.get(s.currentQuestionId) ?? null : null
  const currentAnswer = current ? ctx.answers.get(current.id) : undefined
  return {
    sessionId: s.id,
    assessment: ctx.assessment,
    version: ctx.version,
    status: s.status,
    progress: s.status === 'completed' ? 100 : p.progress,
    answered: p.answered,
    total: p.total,
    question: current ? publicQuestion(current) : null,
    ...(currentAnswer !== undefined ? { currentAnswer } : {}),
    canGoBack: s.status === 'in_progress' && previousQuestion(def.questions, ctx.answers, s.currentQuestionId) !== null,
    missingProfile: s.status === 'completed' ? [] : missingProfileFields(def.profileFields, s.demographics).map((f) => ({ key: f.key, label: f.label, type: f.type, ...(f.options ? { options: f.options } : {}) })),
    demographics: s.demographics,
    result: result ? resultView(result) : null,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The public web door: by public key, then by resume token (from any device).

export async function startWebSession(sql: Sql, publicKey: string, body: { demographics?: Demographics }): Promise<{ token: string; state: SessionStateView }> {
  const found = /^ak_[A-Za-z0-9_-]{24}$/.test(publicKey) ? await q.findPublicAssessment(sql, publicKey) : null
  if (!found || found.status !== 'published' || found.tenantStatus !== 'active') throw notFound('assessment')
  return withTenant(sql, found.tenantId, async (tx) => {
    const started = await startSession(tx, { assessmentId: found.id, channel: 'web', ...(body.demographics ? { demographics: body.demographics } : {}) })
    const ctx = await sessionContext(tx, started.session)
    return { token: started.token!, state: await stateView(tx, ctx) }
  })
}

/** Runs fn on the session behind the token, locked, in its tenant: 404 for a token that is not one. */
export async function inWebSession<T>(sql: Sql, token: string, fn: (tx: Tx, ctx: SessionContext) => Promise<T>): Promise<T> {
  if (!TOKEN_PATTERN.test(token)) throw notFound('session')
  // One transaction: the token's lookup scopes it to the session's tenant, then the session is locked with its answers.
  const tokenHash = sha256(token)
  return sql.begin(async (tx) => {
    // Sent together (postgres.js pipelines them on the transaction's connection): the first scopes the transaction to
    // the token's tenant, the second runs after it, under that tenant's RLS, and locks the same session.
    const [found, row] = await Promise.all([q.enterSessionByToken(tx, tokenHash), q.lockSessionWithAnswers(tx, { tokenHash })])
    if (!found || !row || row.id !== found.id) throw notFound('session')
    return fn(tx, await contextOfLocked(tx, row))
  }) as Promise<T>
}

/** An answer waiting in the answer inbox (answer-inbox.ts): the token's sha256 and the validated body. */
export interface PendingAnswer { tokenHash: Buffer; body: AnswerBody }

const unavailableNow = () => new AppError('UNAVAILABLE', 'storing the answer took too long; retry later', { headers: { 'retry-after': '2' } })

/**
 * Many web answers in one transaction (the answer inbox's flush): one result per item, in order, each the state the
 * participant would have seen had the answer been written alone, or the Error for that answer alone (404 token, 409
 * not current or closed, 400 not allowed). The rules are planAnswer's, applied in arrival order to contexts locked
 * once per session, so answers to the same session apply one after another and each sees the ones before it. Per
 * tenant (in tenant order, each under its own row-level security): the tokens' sessions locked in id order with
 * their answers (for the first tenant in the same round trip as the tokens' lookup, which scopes the transaction to
 * it; for any other, pipelined with its tenant setting), then every accepted answer written in one statement with
 * its events in another (pipelined), then the sessions that are complete now completed as completeIfReady does.
 * Four round trips for a batch of one tenant with no completion: begin, lookup and lock, writes, commit. Anything
 * else that fails throws: the group commit retries each member alone.
 */
export async function answerBatch(sql: Sql, items: PendingAnswer[], signal?: AbortSignal): Promise<(SessionStateView | Error)[]> {
  return sql.begin(async (tx) => {
    if (signal?.aborted) throw unavailableNow()
    // Filled in below; a token that found no session keeps null and is answered 404 at the end. (Not an AppError per
    // item up front: each captures a stack trace, and nearly all are thrown away.)
    const out: (SessionStateView | Error | null)[] = items.map(() => null)
    // One round trip: the tokens' sessions looked up with the transaction scoped to the first of their tenants (in
    // tenant order), and that tenant's sessions locked by token right behind it (pipelined). Other tenants follow.
    const hashes = items.map((i) => i.tokenHash)
    const [found, firstRows] = await Promise.all([q.enterSessionsForTokens(tx, hashes), q.lockTokenSessionsWithAnswers(tx, hashes)])
    const byTenant = new Map<string, { index: number; sessionId: string }[]>()
    for (const f of found) {
      const list = byTenant.get(f.tenantId) ?? []
      if (list.length === 0) byTenant.set(f.tenantId, list)
      list.push({ index: f.ord - 1, sessionId: f.id })
    }
    const tenants = [...byTenant.keys()].sort()
    for (const tenantId of tenants) {
      const members = byTenant.get(tenantId)!.sort((a, b) => a.index - b.index)
      const ids = [...new Set(members.map((m) => m.sessionId))]
      const rows = tenantId === tenants[0] ? firstRows : (await Promise.all([setTenant(tx, tenantId), q.lockSessionsWithAnswers(tx, ids)]))[1]
      const contexts = new Map<string, SessionContext>()
      for (const row of rows) contexts.set(row.id, await contextOfLocked(tx, row))
      const responses = new Map<string, { sessionId: string; questionId: string; value: AnswerValue; responseMs: number | null }>()
      const moved = new Set<string>()
      const events: ReturnType<typeof answeredEvent>[] = []
      const completing = new Map<string, number[]>()
      const resumed = new Set<string>()
      for (const m of members) {
        const ctx = contexts.get(m.sessionId)
        if (!ctx) continue // gone between the lookup and the lock (erased): 404
        // An abandoned session reopens with an accepted answer (resumeIfAbandoned, in memory): a refused one leaves it.
        const reopens = ctx.session.status === 'abandoned'
        if (reopens) ctx.session = { ...ctx.session, status: 'in_progress', resumedCount: ctx.session.resumedCount + 1 }
        try {
          if (completing.has(ctx.session.id)) throw closedTo('completed')
          const a = planAnswer(ctx, items[m.index]!.body)
          if (reopens) {
            resumed.add(ctx.session.id)
            events.push(resumedEvent(ctx.session))
          }
          if (a) {
            responses.set(`${ctx.session.id}\u0000${a.question.id}`, { sessionId: ctx.session.id, questionId: a.question.id, value: a.value, responseMs: a.responseMs })
            moved.add(ctx.session.id)
            events.push(answeredEvent(ctx.session, a))
          }
          if (readyToComplete(ctx)) completing.set(ctx.session.id, [...(completing.get(ctx.session.id) ?? []), m.index])
          else out[m.index] = viewOf(ctx, null)
        } catch (err) {
          if (reopens) ctx.session = { ...ctx.session, status: 'abandoned', resumedCount: ctx.session.resumedCount - 1 }
          if (!(err instanceof AppError)) throw err
          out[m.index] = err
        }
      }
      if (moved.size > 0 || resumed.size > 0) {
        const finals = [...moved].map((id) => contexts.get(id)!.session)
        await Promise.all([
          resumed.size > 0 ? q.resumeSessions(tx, [...resumed]) : null,
          moved.size > 0 && q.recordAnswers(tx, tenantId, [...responses.values()],
            finals.map((f) => ({ id: f.id, currentQuestionId: f.currentQuestionId, progress: f.progress, answeredCount: f.answeredCount }))),
          recordPlatformEvents(tx, events),
        ])
      }
      // Completions are pipelined with each other: each touches its own session and result.
      await Promise.all([...completing].map(async ([sessionId, indexes]) => {
        const ctx = contexts.get(sessionId)!
        const result = await completeIfReady(tx, ctx)
        const view = viewOf(ctx, result)
        for (const i of indexes) out[i] = view
      }))
    }
    // The callers were answered 503 meanwhile: roll back rather than keep what nobody was told was stored.
    if (signal?.aborted) throw unavailableNow()
    return out.map((o) => o ?? notFound('session'))
  }) as Promise<(SessionStateView | Error)[]>
}

export const viewWebSession = (sql: Sql, token: string) => inWebSession(sql, token, (tx, ctx) => stateView(tx, ctx))
export const answerWebSession = (sql: Sql, token: string, body: AnswerBody) => inWebSession(sql, token, async (tx, ctx) => stateView(tx, await answerQuestion(tx, ctx, body)))
export const backWebSession = (sql: Sql, token: string) => inWebSession(sql, token, async (tx, ctx) => stateView(tx, await goBack(tx, ctx)))
export const profileWebSession = (sql: Sql, token: string, demographics: Demographics) => inWebSession(sql, token, async (tx, ctx) => stateView(tx, await saveProfile(tx, ctx, demographics)))
/** Completes (when ready) and answers the state: idempotent, a completed session answers its result again. */
export const completeWebSession = (sql: Sql, token: string) =>
  inWebSession(sql, token, async (tx, ctx) => {
    await resumeIfAbandoned(tx, ctx)
    if (ctx.session.status === 'in_progress') {
      if (ctx.session.currentQuestionId !== null) throw conflict(`question ${ctx.session.currentQuestionId} is still to be answered`, { currentQuestionId: ctx.session.currentQuestionId })
      const missing = missingProfileFields(ctx.compiled.definition.profileFields, ctx.session.demographics)
      if (missing.length > 0) throw conflict(`profile fields missing: ${missing.map((f) => f.key).join(', ')}`, { missingProfile: missing.map((f) => f.key) })
      await completeIfReady(tx, ctx)
    }
    return stateView(tx, ctx)
  })

// ---------------------------------------------------------------------------------------------------------------
// Results (admin)

export const getResult = (sql: Sql, tenantId: string, assessmentId: string, resultId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const r = await q.findResult(tx, resultId)
    if (!r || r.assessmentId !== assessmentId) throw notFound(`result ${resultId}`)
    return { ...resultView(r), sessionId: r.sessionId, history: await q.resultHistory(tx, resultId) }
  })
