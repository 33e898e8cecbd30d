import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { actorName } from '../../../../domains/tenancy/service.js'
import { registerPhoneNumber, updatePhoneNumber } from '../../../../domains/whatsapp/numbers.js'
import { GRAPH_LOOKUP_TIMEOUT_MS, graphClientFor } from '../../../../domains/whatsapp/outbound/graph.js'
import { findPhoneNumber, listPhoneNumbers } from '../../../../domains/whatsapp/queries.js'
import { PhoneNumberView, RegisterNumberBody, UpdateNumberBody } from '../../../../domains/whatsapp/schemas.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const NumberParams = z.object({ numberId: z.uuid() })

/** A tenant's WhatsApp numbers. Secrets go in (sealed at rest) and never come back out. */
export default async function whatsappNumberRoutes(app: App, deps: ApiDeps) {
  // Asked for the number's messaging limit tier when it is registered (best effort: registration never waits long).
  const graph = graphClientFor(deps.config, GRAPH_LOOKUP_TIMEOUT_MS)
  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['whatsapp'],
      summary: "Register a WhatsApp number: on the platform's Meta app, or on the tenant's own app (its secret and verify token).",
      body: RegisterNumberBody,
      response: { 201: PhoneNumberView },
    },
  }, async (req, reply) => {
    const principal = tenantOf(req)
    return reply.code(201).send(await registerPhoneNumber(deps.sql, deps.secrets, principal.tenantId, actorName(principal), req.body, req.id, { graph, log: deps.log }))
  })

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags: ['whatsapp'], summary: 'List registered WhatsApp numbers.', response: { 200: z.object({ data: z.array(PhoneNumberView) }) } },
  }, async (req) => ({ data: await withTenant(deps.sql, tenantOf(req).tenantId, listPhoneNumbers) }))

  app.get('/:numberId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['whatsapp'], summary: 'One WhatsApp number with its quality and limits.', params: NumberParams, response: { 200: PhoneNumberView } },
  }, async (req) => {
    const number = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => findPhoneNumber(tx, req.params.numberId))
    if (!number) throw new AppError('NOT_FOUND', `WhatsApp number ${req.params.numberId} not found`)
    return number
  })

  app.patch('/:numberId', {
    config: { access: 'tenant:write' },
    schema: { tags: ['whatsapp'], summary: 'Rotate the access token, or disable/enable the number.', params: NumberParams, body: UpdateNumberBody, response: { 200: PhoneNumberView } },
  }, async (req) => {
    const principal = tenantOf(req)
    const number = await updatePhoneNumber(deps.sql, deps.secrets, principal.tenantId, actorName(principal), req.params.numberId, req.body, req.id)
    if (!number) throw new AppError('NOT_FOUND', `WhatsApp number ${req.params.numberId} not found`)
    return number
  })
}
