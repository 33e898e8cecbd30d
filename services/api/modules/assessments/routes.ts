import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import { assessmentReport, ReportMeta } from '../../../../domains/assessments/report.js'
import { AssessmentView, CreateAssessmentBody, PatchAssessmentBody, RescoreBody, ResultView, SaveDraftBody, VersionView } from '../../../../domains/assessments/schemas.js'
import * as assessments from '../../../../domains/assessments/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const Params = z.object({ assessmentId: z.uuid() })
const Issue = z.object({ path: z.array(z.union([z.string(), z.number()])), message: z.string() })
const VersionWithIssues = VersionView.extend({ issues: z.array(Issue).optional() })
const Detail = AssessmentView.extend({ versions: z.array(VersionWithIssues) })
const RunView = z.object({
  id: z.uuid(), assessmentId: z.uuid(), versionId: z.uuid(), rubricVersion: z.number().int(), reason: z.string(), status: z.string(), cursor: z.uuid().nullable(),
  rescored: z.number().int(), unchanged: z.number().int(), skipped: z.number().int(), batches: z.number().int(), lastError: z.string().nullable(), requestedBy: z.string(),
  createdAt: z.date(), finishedAt: z.date().nullable(),
})
const ReportView = z.object({
  assessmentId: z.uuid(), from: z.string().nullable(), to: z.string().nullable(), starts: z.number().int(), completions: z.number().int(), completionRate: z.number(),
  medianSecondsToComplete: z.number().nullable(),
  byChannel: z.object({ web: z.object({ starts: z.number().int(), completions: z.number().int() }), whatsapp: z.object({ starts: z.number().int(), completions: z.number().int() }) }),
  scoreDistribution: z.object({
    bucketWidth: z.number(), buckets: z.array(z.object({ from: z.number(), to: z.number(), sessions: z.number().int() })),
    bands: z.array(z.object({ band: z.string().nullable(), sessions: z.number().int() })),
  }),
  questions: z.array(z.object({
    questionId: z.string(), text: z.string(), reached: z.number().int(), answered: z.number().int(), stoppedHere: z.number().int(), dropOffRate: z.number(),
    medianResponseMs: z.number().nullable(),
  })),
  meta: ReportMeta,
})
const HistoryEntry = z.object({ rubricVersion: z.number().int(), totalScore: z.number(), band: z.string().nullable(), categoryScores: z.record(z.string(), z.number()), computedAt: z.date(), replacedAt: z.date(), runId: z.uuid().nullable() })

/** Assessments for the tenant's admins: definitions and their versions, publishing, re-scoring, results and the report. */
export default async function assessmentRoutes(app: App, deps: ApiDeps) {
  const tags = ['assessments']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create an assessment with its first draft (version 1). The draft lists what would stop it from being published.', body: CreateAssessmentBody, response: { 201: Detail } },
  }, async (req, reply) => reply.code(201).send(await assessments.createAssessment(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's assessments, newest first.", querystring: PageQuery, response: { 200: z.object({ data: z.array(AssessmentView), nextCursor: z.string().nullable() }) } },
  }, async (req) => assessments.listAssessments(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/:assessmentId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One assessment with its versions (the draft with its publish issues).', params: Params, response: { 200: Detail } },
  }, async (req) => assessments.getAssessment(deps.sql, tenantOf(req).tenantId, req.params.assessmentId))

  app.patch('/:assessmentId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Rename, or archive (no new sessions; sessions under way may finish) and publish again.', params: Params, body: PatchAssessmentBody, response: { 200: AssessmentView } },
  }, async (req) => assessments.patchAssessment(deps.sql, actorOf(req), req.params.assessmentId, req.body))

  app.put('/:assessmentId/draft', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Replace the draft (a new version after the published one when there is none). Published versions never change.', params: Params, body: SaveDraftBody, response: { 200: VersionWithIssues } },
  }, async (req) => assessments.saveDraft(deps.sql, actorOf(req), req.params.assessmentId, req.body.definition))

  app.post('/:assessmentId/publish', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: 'Publish the draft: 400 with every problem (unknown references, conditions on later questions, a formula that can divide by zero). A changed rubric re-scores completed sessions with the same questions, as a job.',
      params: Params, response: { 200: z.object({ assessment: AssessmentView, version: VersionView, rescoringRun: RunView.nullable() }) },
    },
  }, async (req) => assessments.publishDraft(deps.sql, actorOf(req), req.params.assessmentId))

  app.post('/:assessmentId/rescore', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Re-score every completed session with the published rubric (or a given published version\'s), as a job; results keep their history.', params: Params, body: RescoreBody, response: { 202: RunView } },
  }, async (req, reply) => reply.code(202).send(await assessments.requestRescore(deps.sql, actorOf(req), req.params.assessmentId, req.body.versionId)))

  app.get('/:assessmentId/rescoring-runs', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'The latest re-scoring runs with their progress.', params: Params, response: { 200: z.object({ data: z.array(RunView) }) } },
  }, async (req) => ({ data: await assessments.listRuns(deps.sql, tenantOf(req).tenantId, req.params.assessmentId) }))

  app.get('/:assessmentId/rescoring-runs/:runId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One re-scoring run.', params: Params.extend({ runId: z.uuid() }), response: { 200: RunView } },
  }, async (req) => assessments.getRun(deps.sql, tenantOf(req).tenantId, req.params.assessmentId, req.params.runId))

  app.get('/:assessmentId/results/:resultId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'A result with its earlier forms (before each re-score).', params: Params.extend({ resultId: z.uuid() }), response: { 200: ResultView.extend({ sessionId: z.uuid(), history: z.array(HistoryEntry) }) } },
  }, async (req) => assessments.getResult(deps.sql, tenantOf(req).tenantId, req.params.assessmentId, req.params.resultId))

  app.get('/:assessmentId/report', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: 'Starts, completions, completion rate, median time, score distribution and drop-off per question in [from, to), from the analytics rollups (raw events after the watermark: see meta).',
      params: Params,
      querystring: z.object({ from: z.coerce.date().optional(), to: z.coerce.date().optional(), bucketWidth: z.coerce.number().positive().max(1000).default(10) }),
      response: { 200: ReportView },
    },
  }, async (req) => assessmentReport(deps.sql, tenantOf(req).tenantId, req.params.assessmentId, req.query))
}
