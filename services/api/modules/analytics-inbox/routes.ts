import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import { listParkedEvents, replayParkedEvent } from '../../../../domains/analytics/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const ParkedEvent = z.object({
  id: z.uuid(),
  name: z.string(),
  type: z.string(),
  occurredAt: z.date(),
  receivedAt: z.date(),
  source: z.string(),
  attempts: z.number().int(),
  lastError: z.string().nullable(),
})

/**
 * Client events (POST /v1/events) that the worker could not record: each failed alone after its batch failed, and
 * waits in the inbox with its error. Listed without their properties; replayed one by one once the cause is fixed.
 */
export default async function analyticsInboxRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: 'Parked client events, newest first, with the error that parked them.',
      querystring: PageQuery,
      response: { 200: z.object({ data: z.array(ParkedEvent), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => listParkedEvents(deps.sql, tenantOf(req).tenantId, req.query))

  app.post('/:eventId/replay', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['analytics'],
      summary: 'Queue a parked event again. Recorded at most once, however often replayed.',
      params: z.object({ eventId: z.uuid() }),
      response: { 202: z.object({ eventId: z.uuid(), queued: z.literal(true) }) },
    },
  }, async (req, reply) => {
    if (!(await replayParkedEvent(deps.sql, actorOf(req), req.params.eventId))) {
      throw new AppError('NOT_FOUND', `no parked event ${req.params.eventId}`)
    }
    return reply.code(202).send({ eventId: req.params.eventId, queued: true as const })
  })
}
