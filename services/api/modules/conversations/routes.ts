import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { CursorTimestamp, decodeCursor, encodeCursor } from '../../../../lib/pagination.js'
import { getConversation, listConversationEvents, listConversations } from '../../../../domains/conversations/queries.js'
import { ConversationEventView, ConversationView, HandoverBody, ListConversationsQuery } from '../../../../domains/conversations/schemas.js'
import { handOverConversation, releaseConversation } from '../../../../domains/conversations/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const ConversationParams = z.object({ conversationId: z.uuid() })
const Cursor = z.object({ updatedAt: CursorTimestamp, id: z.uuid() })

export default async function conversationRoutes(app: App, deps: ApiDeps) {

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['conversations'],
      summary: 'Conversations (one per lead and number) with the bot state and the lead, most recently active first.',
      querystring: ListConversationsQuery,
      response: { 200: z.object({ data: z.array(ConversationView), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => {
    const { limit, cursor, leadId, mode } = req.query
    const before = cursor ? decodeCursor(cursor, Cursor) : null
    const rows = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => listConversations(tx, { leadId, mode }, limit + 1, before))
    const page = rows.slice(0, limit)
    const last = page.at(-1)
    return { data: page, nextCursor: rows.length > limit && last ? encodeCursor({ updatedAt: last.updatedAt.toISOString(), id: last.id }) : null }
  })

  app.get('/:conversationId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['conversations'], summary: 'One conversation.', params: ConversationParams, response: { 200: ConversationView } },
  }, async (req) => {
    const conversation = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => getConversation(tx, req.params.conversationId))
    if (!conversation) throw new AppError('NOT_FOUND', `conversation ${req.params.conversationId} not found`)
    return conversation
  })

  app.get('/:conversationId/events', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['conversations'],
      summary: 'What the bot did with each message, timer and release, newest first.',
      params: ConversationParams,
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      response: { 200: z.object({ data: z.array(ConversationEventView) }) },
    },
  }, async (req) => {
    const data = await withTenant(deps.sql, tenantOf(req).tenantId, async (tx) => {
      if (!(await getConversation(tx, req.params.conversationId))) throw new AppError('NOT_FOUND', `conversation ${req.params.conversationId} not found`)
      return listConversationEvents(tx, req.params.conversationId, req.query.limit)
    })
    return { data: data as unknown as z.infer<typeof ConversationEventView>[] }
  })

  app.post('/:conversationId/handover', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['conversations'],
      summary: 'A person takes the conversation: the bot stays silent for this lead until released.',
      params: ConversationParams,
      body: HandoverBody.nullish(),
      response: { 200: ConversationView },
    },
  }, async (req) => handOverConversation(deps.sql, actorOf(req), req.params.conversationId, req.body?.note ?? undefined))

  app.post('/:conversationId/release', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['conversations'],
      summary: 'Give the conversation back to the bot; a flow that handed over resumes. Applied in order, after the messages before it.',
      params: ConversationParams,
      response: { 202: ConversationView },
    },
  }, async (req, reply) => reply.code(202).send(await releaseConversation(deps.sql, actorOf(req), req.params.conversationId, randomUUID())))
}
