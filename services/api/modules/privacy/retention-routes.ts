import { z } from 'zod'
import { PatchRetentionBody, RetentionRunView, RetentionView } from '../../../../domains/privacy/export-schemas.js'
import { getRetention, listRetentionRuns, patchRetention } from '../../../../domains/privacy/retention.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'


export default async function retentionRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['privacy'],
      summary: "How long this tenant's data is kept, in days (null: until the person is erased). webhookDeliveriesDays is platform-wide.",
      response: { 200: RetentionView },
    },
  }, async (req) => getRetention(deps.sql, deps.config, tenantOf(req).tenantId))

  app.patch('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['privacy'],
      summary: 'Change retention periods. Applied by the nightly retention run; audited with what changed.',
      body: PatchRetentionBody,
      response: { 200: RetentionView },
    },
  }, async (req) => patchRetention(deps.sql, deps.config, actorOf(req), req.body))

  app.get('/runs', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['privacy'],
      summary: 'Nightly retention runs for this tenant, newest first: the periods applied and the rows removed per table.',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(100).default(30) }),
      response: { 200: z.object({ data: z.array(RetentionRunView) }) },
    },
  }, async (req) => ({ data: await listRetentionRuns(deps.sql, tenantOf(req).tenantId, req.query.limit) }))
}
