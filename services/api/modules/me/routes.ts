import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { findCurrentTenant } from '../../../../domains/tenancy/queries.js'
import { ApiKeyRole, Tenant } from '../../../../domains/tenancy/schemas.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

export default async function meRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['me'],
      summary: 'The tenant and key behind this request.',
      response: { 200: z.object({ tenant: Tenant, apiKey: z.object({ id: z.uuid(), role: ApiKeyRole }) }) },
    },
  }, async (req) => {
    const principal = tenantOf(req)
    const tenant = await withTenant(deps.sql, principal.tenantId, findCurrentTenant)
    if (!tenant) throw new AppError('NOT_FOUND', 'tenant not found')
    return { tenant, apiKey: { id: principal.keyId, role: principal.role } }
  })
}
