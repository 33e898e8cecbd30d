import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { getErasureRequest, listErasureRequests, requestErasure } from '../../../../domains/privacy/erasure.js'
import { CreateErasureBody, ErasureRequestView, ListErasuresQuery, ListSuppressionsQuery, SuppressionView } from '../../../../domains/privacy/schemas.js'
import { liftSuppression, listSuppressions } from '../../../../domains/privacy/suppression.js'
import { actorName } from '../../../../domains/tenancy/service.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const IdParams = z.object({ id: z.uuid() })

/** Erasure requests with their receipts, and the suppressions erasure leaves (hashes and dates only). */
export default async function privacyErasureRoutes(app: App, deps: ApiDeps) {
  app.post('/erasure-requests', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['privacy'], summary: 'Erase a person: exactly one of leadId, email or phone. The work runs in the background; poll the request for its receipt.',
      body: CreateErasureBody, response: { 202: ErasureRequestView },
    },
  }, async (req, reply) => {
    const who = tenantOf(req)
    return reply.code(202).send(await requestErasure(deps, { tenantId: who.tenantId, actor: actorName(who), requestId: req.id }, req.body))
  })

  app.get('/erasure-requests', {
    config: { access: 'tenant:read' },
    schema: { tags: ['privacy'], summary: 'Erasure requests, newest first.', querystring: ListErasuresQuery, response: { 200: z.object({ data: z.array(ErasureRequestView) }) } },
  }, async (req) => ({ data: await listErasureRequests(deps.sql, tenantOf(req).tenantId, req.query) }))

  app.get('/erasure-requests/:id', {
    config: { access: 'tenant:read' },
    schema: { tags: ['privacy'], summary: 'An erasure request: its status and, once completed and verified, its receipt.', params: IdParams, response: { 200: ErasureRequestView } },
  }, async (req) => {
    const view = await getErasureRequest(deps.sql, tenantOf(req).tenantId, req.params.id)
    if (!view) throw new AppError('NOT_FOUND', `erasure request ${req.params.id} not found`)
    return view
  })

  app.get('/suppressions', {
    config: { access: 'tenant:read' },
    schema: { tags: ['privacy'], summary: 'Suppressed identity keys of erased people: keyed hashes and dates, never the keys.', querystring: ListSuppressionsQuery, response: { 200: z.object({ data: z.array(SuppressionView) }) } },
  }, async (req) => ({ data: await listSuppressions(deps.sql, tenantOf(req).tenantId, req.query.limit) }))

  app.delete('/suppressions/:id', {
    config: { access: 'tenant:write' },
    schema: { tags: ['privacy'], summary: 'Lift a suppression: the person may be contacted (and recreated by a form) again by that key.', params: IdParams, response: { 200: SuppressionView } },
  }, async (req) => {
    const who = tenantOf(req)
    const gone = await liftSuppression(deps.sql, { tenantId: who.tenantId, actor: actorName(who), requestId: req.id }, req.params.id)
    if (!gone) throw new AppError('NOT_FOUND', `suppression ${req.params.id} not found`)
    return gone
  })
}
