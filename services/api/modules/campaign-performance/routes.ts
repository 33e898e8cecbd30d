import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import { expectedVersion } from '../../../../domains/campaigns/media-plans/service.js'
import { Platform } from '../../../../domains/campaigns/media-plans/schemas.js'
import { AdSourcesBody, DayRangeQuery, PerformanceView, SpendBody, SpendView } from '../../../../domains/campaigns/performance/schemas.js'
import * as performance from '../../../../domains/campaigns/performance/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const CampaignParams = z.object({ campaignId: z.uuid() })

/**
 * Plan vs reality for campaigns (registered under /v1/campaigns beside the campaigns module, as its own plugin): the
 * performance report, the spend entered per platform and day, and the campaign's click-to-WhatsApp ad ids that leads
 * are attributed by.
 */
export default async function campaignPerformanceRoutes(app: App, deps: ApiDeps) {
  const tags = ['campaigns']

  app.get('/:campaignId/performance', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "Planned leads and CPL per platform (the campaign's latest media plan, or ?planId=) beside actual leads, qualified, converted, spend and CPL, from the analytics rollups.",
      params: CampaignParams, querystring: DayRangeQuery.and(z.object({ planId: z.uuid().optional() })), response: { 200: PerformanceView },
    },
  }, async (req) => performance.campaignPerformance(deps.sql, deps.config, tenantOf(req).tenantId, req.params.campaignId, req.query))

  app.put('/:campaignId/spend', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Enter spend per platform and day (entering a day again replaces it), in the campaign currency.', params: CampaignParams, body: SpendBody, response: { 200: z.object({ data: z.array(SpendView) }) } },
  }, async (req) => ({ data: await performance.enterSpend(deps.sql, actorOf(req), req.params.campaignId, req.body) }))

  app.get('/:campaignId/spend', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: "The campaign's spend entries by day and platform (?from=&to=, inclusive).", params: CampaignParams, querystring: DayRangeQuery, response: { 200: z.object({ data: z.array(SpendView) }) } },
  }, async (req) => ({ data: await performance.listSpend(deps.sql, tenantOf(req).tenantId, req.params.campaignId, req.query) }))

  app.delete('/:campaignId/spend/:platform/:day', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Remove one day of spend on a platform.', params: CampaignParams.extend({ platform: Platform, day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/) }), response: { 204: z.null() } },
  }, async (req, reply) => {
    await performance.deleteSpend(deps.sql, actorOf(req), req.params.campaignId, req.params.platform, req.params.day)
    return reply.code(204).send(null)
  })

  app.put('/:campaignId/ad-sources', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: "The campaign's click-to-WhatsApp ad ids (Meta's referral source_id): a lead whose first message carries one is the campaign's. If-Match or version like any save.",
      params: CampaignParams, headers: z.object({ 'if-match': z.string().max(100).optional() }).loose(), body: AdSourcesBody,
      response: { 200: z.object({ adSourceIds: z.array(z.string()), version: z.number().int() }) },
    },
  }, async (req) => performance.setAdSources(deps.sql, actorOf(req), req.params.campaignId, req.body.adSourceIds,
    expectedVersion(req.headers['if-match'] as string | undefined, req.body.version)))
}
