import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { ConnectIntegrationBody, IntegrationView, PatchIntegrationBody } from '../../../../domains/campaigns/schemas.js'
import * as catalog from '../../../../domains/campaigns/catalog.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const IntegrationParams = z.object({ integrationId: z.uuid() })

/** Ad platform accounts (Meta, Google, TikTok, …) a tenant connected. Tokens are sealed and never returned. */
export default async function platformIntegrationRoutes(app: App, deps: ApiDeps) {
  const tags = ['platform-integrations']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Connect an account (201), or reconnect one already known (200): tokens sealed with SECRETS_KEY, never returned.', body: ConnectIntegrationBody, response: { 200: IntegrationView, 201: IntegrationView } },
  }, async (req, reply) => {
    const { view, created } = await catalog.connectIntegration(deps.sql, deps.secrets, actorOf(req), req.body)
    return reply.code(created ? 201 : 200).send(view)
  })

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Connected accounts (without tokens).', response: { 200: z.object({ data: z.array(IntegrationView) }) } },
  }, async (req) => ({ data: await catalog.listIntegrations(deps.sql, tenantOf(req).tenantId) }))

  app.get('/:integrationId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One account (without tokens).', params: IntegrationParams, response: { 200: IntegrationView } },
  }, async (req) => (await catalog.getIntegration(deps.sql, tenantOf(req).tenantId, req.params.integrationId)) ?? notFound(req.params.integrationId))

  app.patch('/:integrationId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Rotate tokens, change label, scopes or status.', params: IntegrationParams, body: PatchIntegrationBody, response: { 200: IntegrationView } },
  }, async (req) => catalog.updateIntegration(deps.sql, deps.secrets, actorOf(req), req.params.integrationId, req.body))

  app.delete('/:integrationId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Disconnect: the tokens are deleted; the row stays for the publications that name it.', params: IntegrationParams, response: { 200: IntegrationView } },
  }, async (req) => catalog.disconnectIntegration(deps.sql, actorOf(req), req.params.integrationId))
}

const notFound = (id: string): never => {
  throw new AppError('NOT_FOUND', `integration ${id} not found`)
}
