import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import {
  AssignBody, AssignResult, CreateExperimentBody, ExperimentStatus, ExperimentView, NewPhaseBody, PatchExperimentBody, Variation,
} from '../../../../domains/experiments/schemas.js'
import * as experiments from '../../../../domains/experiments/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const ExperimentParams = z.object({ experimentId: z.uuid() })
const PhaseView = z.object({ phase: z.number().int(), variations: z.array(Variation), coverage: z.number(), startedAt: z.date(), endedAt: z.date().nullable() })
const ExperimentDetail = ExperimentView.extend({ phases: z.array(PhaseView) })
const ConflictView = z.object({
  experimentId: z.uuid(), phase: z.number().int(), leadId: z.uuid(), mergedLeadId: z.uuid().nullable(), keptUnitId: z.string(), keptVariationKey: z.string(),
  droppedUnitId: z.string(), droppedVariationKey: z.string(), reason: z.string(), recordedAt: z.date(),
})

const Interval = z.tuple([z.number(), z.number()]).nullable().optional()
/** A conversion goal (conversions, rate, chance to beat control) or a mean goal (aggregate count or sum: mean, stdDev, Welch's t-test). */
const GoalResult = z.object({
  event: z.string(), windowHours: z.number(), aggregate: z.enum(['conversion', 'count', 'sum']).optional(), property: z.string().optional(),
  conversions: z.number().int().optional(), rate: z.number().optional(),
  units: z.number().int().optional(), mean: z.number().optional(), stdDev: z.number().optional(),
  difference: z.number().optional(), differenceCi95: Interval, t: z.number().nullable().optional(), df: z.number().nullable().optional(),
  relativeUplift: z.number().nullable().optional(), ci95: Interval,
  pValue: z.number().nullable().optional(), chanceToBeatControl: z.number().optional(),
})
const ResultsView = z.object({
  experimentId: z.uuid(), key: z.string(), phase: z.number().int(), startedAt: z.date(), endedAt: z.date().nullable(),
  variations: z.array(z.object({ key: z.string(), weight: z.number(), units: z.number().int(), exposed: z.number().int(), goals: z.array(GoalResult) })),
  srm: z.object({ chiSquare: z.number(), pValue: z.number(), flagged: z.boolean() }),
  multipleExposures: z.number().int(),
})

/** Experiments: definitions, their lifecycle (start, pause, stop, new phase) and assignment of leads and visitors. */
export default async function experimentRoutes(app: App, deps: ApiDeps) {
  const tags = ['experiments']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create an experiment (draft). Weights must sum to 1 (±0.01), at least two variations, coverage in [0, 1].', body: CreateExperimentBody, response: { 201: ExperimentView } },
  }, async (req, reply) => reply.code(201).send(await experiments.createExperiment(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "This tenant's experiments, newest first.", querystring: PageQuery.extend({ status: ExperimentStatus.optional() }), response: { 200: z.object({ data: z.array(ExperimentView), nextCursor: z.string().nullable() }) } },
  }, async (req) => experiments.listExperiments(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/:experimentId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One experiment with its phases.', params: ExperimentParams, response: { 200: ExperimentDetail } },
  }, async (req) => (await experiments.getExperiment(deps.sql, tenantOf(req).tenantId, req.params.experimentId)) ?? notFound(req.params.experimentId))

  app.patch('/:experimentId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Change an experiment. Once started, variations, weights, coverage and bucketing are frozen (409): start a new phase instead.', params: ExperimentParams, body: PatchExperimentBody, response: { 200: ExperimentView } },
  }, async (req) => experiments.patchExperiment(deps.sql, actorOf(req), req.params.experimentId, req.body))

  app.delete('/:experimentId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Delete a draft or stopped experiment and its assignments (409 while running or paused).', params: ExperimentParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await experiments.deleteExperiment(deps.sql, actorOf(req), req.params.experimentId)
    return reply.code(204).send(null)
  })

  for (const [action, run, summary] of [
    ['start', experiments.startExperiment, 'Start a draft (phase 1 opens) or resume a paused experiment.'],
    ['pause', experiments.pauseExperiment, 'Pause: nothing new is assigned; stored assignments are still served.'],
    ['stop', experiments.stopExperiment, 'Stop for good: nothing new is assigned; stored assignments are still served.'],
  ] as const) {
    app.post(`/:experimentId/${action}`, {
      config: { access: 'tenant:write' },
      schema: { tags, summary, params: ExperimentParams, response: { 200: ExperimentView } },
    }, async (req) => run(deps.sql, actorOf(req), req.params.experimentId))
  }

  app.post('/:experimentId/phases', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'New variations or weights for a started experiment: the current phase ends and a new one begins (results are per phase).', params: ExperimentParams, body: NewPhaseBody, response: { 201: ExperimentView } },
  }, async (req, reply) => reply.code(201).send(await experiments.startNewPhase(deps.sql, actorOf(req), req.params.experimentId, req.body)))

  app.get('/:experimentId/conflicts', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Assignments that met another of the same person (merged leads, a visitor and its lead): which was kept, which dropped.', params: ExperimentParams, response: { 200: z.object({ data: z.array(ConflictView) }) } },
  }, async (req) => ({ data: (await experiments.listAssignmentConflicts(deps.sql, tenantOf(req).tenantId, req.params.experimentId)) ?? notFound(req.params.experimentId) }))

  app.get('/:experimentId/results', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "A phase's results (the one in force unless ?phase=): units, exposures, conversions per goal, uplift with a 95% interval, chance to beat control, SRM and multiple exposures.",
      params: ExperimentParams, querystring: z.object({ phase: z.coerce.number().int().min(1).optional() }), response: { 200: ResultsView },
    },
  }, async (req) => (await experiments.experimentResults(deps.sql, tenantOf(req).tenantId, req.params.experimentId, req.query.phase)) ?? notFound(req.params.experimentId))

  app.post('/assign', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Every started experiment the lead or visitor takes part in, with its variation; new assignments are stored (first one wins).', body: AssignBody, response: { 200: AssignResult } },
  }, async (req) => ({ assignments: await experiments.assign(deps.sql, tenantOf(req).tenantId, { ...req.body, source: 'api' }, deps.experimentDefinitions) }))
}

const notFound = (id: string): never => {
  throw new AppError('NOT_FOUND', `experiment ${id} not found`)
}
