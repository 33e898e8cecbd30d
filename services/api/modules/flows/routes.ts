import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { getFlow, getFlowVersion, listFlows, listFlowVersions } from '../../../../domains/conversations/queries.js'
import { CreateFlowBody, CreateFlowVersionBody, FlowVersionView, FlowView } from '../../../../domains/conversations/schemas.js'
import { addFlowVersion, createFlow, publishFlow } from '../../../../domains/conversations/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const FlowParams = z.object({ flowId: z.uuid() })
const VersionParams = z.object({ flowId: z.uuid(), version: z.coerce.number().int().min(1) })
const Created = z.object({ flow: FlowView, version: FlowVersionView })

export default async function flowRoutes(app: App, deps: ApiDeps) {

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags: ['flows'], summary: "The tenant's bot flows.", response: { 200: z.object({ data: z.array(FlowView) }) } },
  }, async (req) => ({ data: await withTenant(deps.sql, tenantOf(req).tenantId, listFlows) }))

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags: ['flows'], summary: 'Create a flow from a flow document (version 1); optionally publish it.', body: CreateFlowBody, response: { 201: Created } },
  }, async (req, reply) => reply.code(201).send(await createFlow(deps.sql, actorOf(req), req.body)))

  app.get('/:flowId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['flows'], summary: 'One flow.', params: FlowParams, response: { 200: FlowView } },
  }, async (req) => {
    const flow = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => getFlow(tx, req.params.flowId))
    if (!flow) throw new AppError('NOT_FOUND', `flow ${req.params.flowId} not found`)
    return flow
  })

  app.get('/:flowId/versions', {
    config: { access: 'tenant:read' },
    schema: { tags: ['flows'], summary: "A flow's versions, newest first.", params: FlowParams, response: { 200: z.object({ data: z.array(FlowVersionView) }) } },
  }, async (req) => {
    const versions = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => listFlowVersions(tx, req.params.flowId))
    if (versions.length === 0) throw new AppError('NOT_FOUND', `flow ${req.params.flowId} not found`)
    return { data: versions }
  })

  app.post('/:flowId/versions', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['flows'],
      summary: 'Add a version. Conversations in progress stay on the version they started with.',
      params: FlowParams,
      body: CreateFlowVersionBody,
      response: { 201: Created },
    },
  }, async (req, reply) => reply.code(201).send(await addFlowVersion(deps.sql, actorOf(req), req.params.flowId, req.body)))

  app.get('/:flowId/versions/:version', {
    config: { access: 'tenant:read' },
    schema: { tags: ['flows'], summary: 'One version of a flow, with its document.', params: VersionParams, response: { 200: FlowVersionView } },
  }, async (req) => {
    const version = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => getFlowVersion(tx, req.params.flowId, req.params.version))
    if (!version) throw new AppError('NOT_FOUND', `flow ${req.params.flowId} has no version ${req.params.version}`)
    return version
  })

  app.post('/:flowId/versions/:version/publish', {
    config: { access: 'tenant:write' },
    schema: { tags: ['flows'], summary: 'Make this version the one new conversations start on.', params: VersionParams, response: { 200: FlowView } },
  }, async (req) => publishFlow(deps.sql, actorOf(req), req.params.flowId, req.params.version))

  app.post('/:flowId/unpublish', {
    config: { access: 'tenant:write' },
    schema: { tags: ['flows'], summary: 'Stop starting new conversations on this flow (those in progress finish).', params: FlowParams, response: { 200: FlowView } },
  }, async (req) => publishFlow(deps.sql, actorOf(req), req.params.flowId, null))
}
