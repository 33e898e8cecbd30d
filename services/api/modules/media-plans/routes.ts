import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import {
  CreatePlanBody, CreateTemplateBody, DiffQuery, DiffView, EstimatesView, ExportFile, ExportFileView, ListPlansQuery, PatchPlanBody, PlanView, RollbackBody,
  SnapshotBody, SnapshotSummary, SnapshotView, TemplateView, VersionBody,
} from '../../../../domains/campaigns/media-plans/schemas.js'
import * as plans from '../../../../domains/campaigns/media-plans/service.js'
import { DayRangeQuery, PerformanceView } from '../../../../domains/campaigns/performance/schemas.js'
import { planPerformance } from '../../../../domains/campaigns/performance/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const PlanParams = z.object({ planId: z.uuid() })
const SnapshotParams = PlanParams.extend({ snapshotId: z.uuid() })
const TemplateParams = z.object({ templateId: z.string().min(1).max(100) })
const IfMatch = z.object({ 'if-match': z.string().max(100).optional() }).loose()
const ifMatchOf = (headers: Record<string, unknown>) => headers['if-match'] as string | undefined

/**
 * Media plans: a budget split across ad platforms with computed estimates (leads, sales, revenue), versions with
 * optimistic concurrency (If-Match or `version`; stale → 409 with currentVersion), named snapshots with JSON Patch
 * diffs and rollback, soft delete and restore, export and import, and plan templates.
 */
export default async function mediaPlanRoutes(app: App, deps: ApiDeps) {
  const tags = ['media-plans']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create a media plan, optionally from a template (`templateId`). Percentages sum to 100 (±0.01) unless manualSplit.', body: CreatePlanBody, response: { 201: PlanView } },
  }, async (req, reply) => reply.code(201).send(await plans.createPlan(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's media plans, newest first (deleted ones with ?deleted=include|only).", querystring: ListPlansQuery, response: { 200: z.object({ data: z.array(PlanView), nextCursor: z.string().nullable() }) } },
  }, async (req) => plans.listPlans(deps.sql, tenantOf(req).tenantId, req.query))

  app.post('/estimate', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Estimates for a plan without saving it (the builder\'s live preview).', body: CreatePlanBody.omit({ templateId: true }).partial({ name: true }), response: { 200: EstimatesView } },
  }, async (req) => plans.estimatePlan(req.body))

  app.post('/import', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Recreate a plan from an export file (`media-plan-YYYY-MM-DD.json`); a wrong shape is a 400 naming the key.', body: ExportFile, response: { 201: PlanView } },
  }, async (req, reply) => reply.code(201).send(await plans.importPlan(deps.sql, actorOf(req), req.body)))

  app.get('/templates', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Plan templates: the built-in ones (`builtin:<key>`) and this tenant\'s.', response: { 200: z.object({ data: z.array(TemplateView) }) } },
  }, async (req) => ({ data: await plans.listTemplates(deps.sql, tenantOf(req).tenantId) }))

  app.post('/templates', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Save a template from a plan (`fromPlanId`) or from fields (`body`).', body: CreateTemplateBody, response: { 201: TemplateView } },
  }, async (req, reply) => reply.code(201).send(await plans.createTemplate(deps.sql, actorOf(req), req.body)))

  app.delete('/templates/:templateId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Delete a saved template (built-in ones cannot be: 409).', params: TemplateParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await plans.deleteTemplate(deps.sql, actorOf(req), req.params.templateId)
    return reply.code(204).send(null)
  })

  app.get('/:planId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One plan with its estimates (a deleted one with ?includeDeleted=true). ETag is its version.', params: PlanParams, querystring: z.object({ includeDeleted: z.stringbool().default(false) }), response: { 200: PlanView } },
  }, async (req, reply) => {
    const plan = await plans.getPlan(deps.sql, tenantOf(req).tenantId, req.params.planId, req.query)
    return reply.header('etag', `"${plan.version}"`).send(plan)
  })

  app.patch('/:planId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Change a plan (a new version). Conditional on If-Match or `version`: stale → 409 with currentVersion. Allocations, when given, replace all.', params: PlanParams, headers: IfMatch, body: PatchPlanBody, response: { 200: PlanView } },
  }, async (req) => plans.patchPlan(deps.sql, actorOf(req), req.params.planId, req.body, ifMatchOf(req.headers)))

  app.delete('/:planId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Soft-delete a plan (restore with POST …/restore).', params: PlanParams, headers: IfMatch, body: VersionBody, response: { 200: PlanView } },
  }, async (req) => plans.deletePlan(deps.sql, actorOf(req), req.params.planId, ifMatchOf(req.headers), req.body?.version))

  app.post('/:planId/restore', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Restore a deleted plan (a new version).', params: PlanParams, headers: IfMatch, body: VersionBody, response: { 200: PlanView } },
  }, async (req) => plans.restorePlan(deps.sql, actorOf(req), req.params.planId, ifMatchOf(req.headers), req.body?.version))

  app.post('/:planId/snapshots', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'A named snapshot of the plan as it is now (names are unique per plan: 409).', params: PlanParams, body: SnapshotBody, response: { 201: SnapshotView } },
  }, async (req, reply) => reply.code(201).send(await plans.createSnapshot(deps.sql, actorOf(req), req.params.planId, req.body.name)))

  app.get('/:planId/snapshots', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "The plan's snapshots, newest first.", params: PlanParams, response: { 200: z.object({ data: z.array(SnapshotSummary) }) } },
  }, async (req) => ({ data: await plans.listSnapshots(deps.sql, tenantOf(req).tenantId, req.params.planId) }))

  app.get('/:planId/snapshots/:snapshotId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One snapshot with the plan document it holds.', params: SnapshotParams, response: { 200: SnapshotView } },
  }, async (req) => plans.getSnapshot(deps.sql, tenantOf(req).tenantId, req.params.planId, req.params.snapshotId))

  app.get('/:planId/diff', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'What changed between two snapshots (`to=current`: the plan now), as JSON Patch (RFC 6902) and the top-level fields touched.', params: PlanParams, querystring: DiffQuery, response: { 200: DiffView } },
  }, async (req) => plans.diffSnapshots(deps.sql, tenantOf(req).tenantId, req.params.planId, req.query.from, req.query.to))

  app.post('/:planId/rollback', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Write a snapshot back as the next version (conditional on If-Match or `version`).', params: PlanParams, headers: IfMatch, body: RollbackBody, response: { 200: PlanView } },
  }, async (req) => plans.rollbackPlan(deps.sql, actorOf(req), req.params.planId, req.body.snapshotId, ifMatchOf(req.headers), req.body.version))

  app.get('/:planId/export', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Download the plan as `media-plan-YYYY-MM-DD.json` (schemaVersion, the plan document, its estimates).', params: PlanParams, response: { 200: ExportFileView } },
  }, async (req, reply) => {
    const { filename, file } = await plans.exportPlan(deps.sql, tenantOf(req).tenantId, req.params.planId)
    return reply.header('content-disposition', `attachment; filename="${filename}"`).send(file)
  })

  app.get('/:planId/performance', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This plan's planned leads and CPL per platform beside its campaign's actual leads, qualified, converted, spend and CPL (409 when the plan has no campaign).", params: PlanParams, querystring: DayRangeQuery, response: { 200: PerformanceView } },
  }, async (req) => planPerformance(deps.sql, deps.config, tenantOf(req).tenantId, req.params.planId, req.query))
}
