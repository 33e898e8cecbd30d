import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { listApiKeys } from '../../../../domains/tenancy/queries.js'
import { ApiKeyView, CreateApiKeyBody, CreatedApiKey } from '../../../../domains/tenancy/schemas.js'
import { createApiKey, revokeApiKey } from '../../../../domains/tenancy/service.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const KeyParams = z.object({ keyId: z.uuid() })

export default async function apiKeyRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags: ['api-keys'], summary: "List this tenant's API keys (never their secrets).", response: { 200: z.object({ data: z.array(ApiKeyView) }) } },
  }, async (req) => ({ data: await withTenant(deps.sql, tenantOf(req).tenantId, listApiKeys) }))

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags: ['api-keys'], summary: 'Create an API key. The secret is in this response only.', body: CreateApiKeyBody, response: { 201: CreatedApiKey } },
  }, async (req, reply) => reply.code(201).send(await createApiKey(deps.sql, tenantOf(req), req.body, req.id)))

  app.delete('/:keyId', {
    config: { access: 'tenant:write' },
    schema: { tags: ['api-keys'], summary: 'Revoke an API key. Revoking twice is harmless.', params: KeyParams, response: { 200: ApiKeyView } },
  }, async (req) => {
    const key = await revokeApiKey(deps.sql, tenantOf(req), req.params.keyId, req.id)
    if (!key) throw new AppError('NOT_FOUND', `API key ${req.params.keyId} not found`)
    return key
  })
}
