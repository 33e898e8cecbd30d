import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { CursorTimestamp, decodeCursor, encodeCursor } from '../../../../lib/pagination.js'
import { getOutbound, listOutbound } from '../../../../domains/whatsapp/outbound/queries.js'
import { ListOutboundQuery, OutboundMessageView, SendMessageBody } from '../../../../domains/whatsapp/outbound/schemas.js'
import { sendToLead } from '../../../../domains/whatsapp/outbound/service.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const MessageParams = z.object({ messageId: z.uuid() })
const Cursor = z.object({ createdAt: CursorTimestamp, id: z.uuid() })

export default async function messageRoutes(app: App, deps: ApiDeps) {
  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['messages'],
      summary: 'Send a WhatsApp text (only inside the 24-hour window) or an approved template to a lead. Queued: the status moves as Meta reports.',
      body: SendMessageBody,
      response: { 202: OutboundMessageView },
    },
  }, async (req, reply) => {
    const principal = tenantOf(req)
    return reply.code(202).send(await sendToLead(deps.sql, principal.tenantId, `api_key:${principal.keyId}`, req.body))
  })

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['messages'],
      summary: 'Outbound messages, newest first, with their send state and WhatsApp status.',
      querystring: ListOutboundQuery,
      response: { 200: z.object({ data: z.array(OutboundMessageView), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => {
    const { limit, cursor, leadId, status } = req.query
    const before = cursor ? decodeCursor(cursor, Cursor) : null
    const rows = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => listOutbound(tx, { leadId, status }, limit + 1, before))
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { data: page, nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.createdAt.toISOString(), id: last.id }) : null }
  })

  app.get('/:messageId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['messages'], summary: 'One outbound message with every status Meta reported.', params: MessageParams, response: { 200: OutboundMessageView } },
  }, async (req) => {
    const message = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => getOutbound(tx, req.params.messageId))
    if (!message) throw new AppError('NOT_FOUND', `outbound message ${req.params.messageId} not found`)
    return message
  })
}
