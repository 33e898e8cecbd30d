import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import { AiGenerationType, AiGenerationView, RecordAiGenerationBody } from '../../../../domains/campaigns/schemas.js'
import * as catalog from '../../../../domains/campaigns/catalog.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const Totals = z.object({ costCurrency: z.string(), count: z.number().int(), cost: z.string(), durationMs: z.number() })

/** The campaign builder's AI generation history: what was asked of which service, what it cost and how long it took. */
export default async function aiGenerationRoutes(app: App, deps: ApiDeps) {
  const tags = ['ai-generations']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Record a generation (type, prompt, service, model, cost as a decimal string, tokens, start and end).', body: RecordAiGenerationBody, response: { 201: AiGenerationView } },
  }, async (req, reply) => reply.code(201).send(await catalog.recordAiGeneration(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: 'Generations, newest first, with totals (count, exact cost, time) per cost currency.',
      querystring: z.object({ campaignId: z.uuid().optional(), type: AiGenerationType.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
      response: { 200: z.object({ data: z.array(AiGenerationView), totals: z.array(Totals) }) },
    },
  }, async (req) => catalog.listAiGenerations(deps.sql, tenantOf(req).tenantId, req.query))
}
