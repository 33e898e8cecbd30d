import { reconcileTenants } from '../../../../domains/analytics/rollups.js'
import { ReconciliationQuery, ReconciliationView } from '../../../../domains/analytics/schemas.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'

/** Operators: whether the analytics rollups agree with raw events. */
export default async function opsAnalyticsRoutes(app: App, deps: ApiDeps) {
  app.get('/reconciliation', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'Rolled-up against raw event counts per 5-minute bucket of [from, to), per tenant (or one, with tenantId): differences, and buckets still waiting for the roll-up apart.',
      querystring: ReconciliationQuery,
      response: { 200: ReconciliationView },
    },
  }, async (req) => reconcileTenants(deps.sql, req.query))
}
