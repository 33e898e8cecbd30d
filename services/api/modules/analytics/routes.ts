import { FunnelQuery, FunnelResponse, QueryBody, QueryResponse } from '../../../../domains/analytics/query/schemas.js'
import { runFunnel, runQuery } from '../../../../domains/analytics/query/service.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

/** The query API over the tenant's analytics (domains/analytics/query): read-only, so a read-only key may use it. */
export default async function analyticsRoutes(app: App, deps: ApiDeps) {

  app.post('/query', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: "Query the tenant's events, shaped like Plausible's Stats API v2: metrics, dateRange, dimensions, filters, orderBy, limit, compare.",
      description: 'Answers from rollups when the query allows and from raw events otherwise (meta.source), with the rollup watermark (meta.watermark).',
      body: QueryBody,
      response: { 200: QueryResponse },
    },
  }, async (req) => runQuery(deps.sql, deps.config, tenantOf(req).tenantId, req.body))

  app.get('/funnels', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: 'A funnel of ordered steps: unique leads (or anonymous visitors) per step within the conversion window, and the conversion between steps.',
      querystring: FunnelQuery,
      response: { 200: FunnelResponse },
    },
  }, async (req) => runFunnel(deps.sql, deps.config, tenantOf(req).tenantId, req.query))
}
