import { z } from 'zod'
import { AiOverviewView, AnalysisView, PutAiSettingsBody } from '../../../../domains/assessments/ai/schemas.js'
import { providerFrom } from '../../../../domains/assessments/ai/providers.js'
import { getAiOverview, getResultAnalysis, putAiSettings, type AnalysisDeps } from '../../../../domains/assessments/ai/service.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

/** AI analysis of assessment results (domains/assessments/ai): one result's analysis, the cache and limits, the tenant's switch and budget. */
export default async function assessmentAiRoutes(app: App, deps: ApiDeps) {
  const ai: AnalysisDeps = { sql: deps.sql, provider: providerFrom(deps.config), config: deps.config }
  const tags = ['assessments']

  app.get('/results/:resultId/analysis', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "A result's analysis (pending until the job has run), with where it came from: the provider, the cache, or the rules and why.",
      params: z.object({ resultId: z.uuid() }), querystring: z.object({ assessmentId: z.uuid() }), response: { 200: AnalysisView },
    },
  }, async (req) => getResultAnalysis(deps.sql, tenantOf(req).tenantId, req.query.assessmentId, req.params.resultId))

  app.get('/settings', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'The provider, the limits, the cache (entries, hits) and the calls of the last hour.', response: { 200: AiOverviewView } },
  }, async (req) => getAiOverview(ai, tenantOf(req).tenantId))

  app.put('/settings', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Turn AI analysis off (the rule-based analysis answers) or set this tenant's hourly call budget. Audited.", body: PutAiSettingsBody, response: { 200: AiOverviewView } },
  }, async (req) => putAiSettings(ai, actorOf(req), req.body))
}
