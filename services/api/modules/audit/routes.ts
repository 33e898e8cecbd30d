import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { listAuditEntries } from '../../../../domains/tenancy/queries.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const AuditEntry = z.object({
  id: z.string(),
  actor: z.string(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  details: z.unknown(),
  requestId: z.string().nullable(),
  createdAt: z.date(),
})

export default async function auditRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['audit'],
      summary: 'Administrative actions on this tenant, newest first.',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      response: { 200: z.object({ data: z.array(AuditEntry) }) },
    },
  }, async (req) => ({ data: await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => listAuditEntries(tx, req.query.limit)) }))
}
