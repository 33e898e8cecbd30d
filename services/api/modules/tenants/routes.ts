import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import { CreatedApiKey, CreateTenantBody, Tenant } from '../../../../domains/tenancy/schemas.js'
import { createTenantWithFirstKey } from '../../../../domains/tenancy/service.js'
import { listTenantsPage } from '../../../../domains/tenancy/queries.js'
import { decodeCursor, encodeCursor, PageQuery } from '../../../../lib/pagination.js'
import type { ApiDeps } from '../../app.js'

/** Operator routes: the platform's own staff create tenants and hand over the first key. */
export default async function tenantRoutes(app: App, deps: ApiDeps) {
  app.post('/', {
    config: { access: 'operator' },
    schema: {
      tags: ['tenants'],
      summary: 'Create a tenant and its first admin API key (operator only). The key is shown once.',
      body: CreateTenantBody,
      response: { 201: z.object({ tenant: Tenant, apiKey: CreatedApiKey }) },
    },
  }, async (req, reply) => {
    const created = await createTenantWithFirstKey(deps.sql, req.body, req.id)
    return reply.code(201).send(created)
  })

  app.get('/', {
    config: { access: 'operator' },
    schema: {
      tags: ['tenants'],
      summary: 'List tenants (operator only), oldest first.',
      querystring: PageQuery,
      response: { 200: z.object({ data: z.array(Tenant), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => {
    const after = req.query.cursor ? decodeCursor(req.query.cursor, z.object({ id: z.uuid() })).id : null
    const rows = await listTenantsPage(deps.sql, req.query.limit + 1, after)
    const page = rows.slice(0, req.query.limit)
    const last = page.at(-1)
    return { data: page, nextCursor: rows.length > req.query.limit && last ? encodeCursor({ id: last.id }) : null }
  })
}
