import { z } from 'zod'
import type { App } from '../../../../lib/http/create-server.js'
import {
  BroadcastParams, BroadcastView, CreateBroadcastBody, ListBroadcastsQuery, ListRecipientsQuery, RecipientView, ScheduleBroadcastBody, UpdateBroadcastBody,
} from '../../../../domains/campaigns/broadcasts/schemas.js'
import * as broadcasts from '../../../../domains/campaigns/broadcasts/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const Version = z.object({ version: z.number().int().min(1).optional() }).optional()
/** `If-Match: "3"` (or the body's `version`): a stale one is refused with 409 and the current version. */
const ifMatch = (header: unknown, body?: { version?: number }) => {
  const m = typeof header === 'string' ? /^(?:W\/)?"?(\d+)"?$/.exec(header.trim()) : null
  return m ? Number(m[1]) : body?.version
}

export default async function broadcastRoutes(app: App, deps: ApiDeps) {
  const tags = ['broadcasts']

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Broadcasts, newest first.', querystring: ListBroadcastsQuery, response: { 200: z.object({ data: z.array(BroadcastView), nextCursor: z.string().nullable() }) } },
  }, async (req) => broadcasts.listBroadcasts(deps.sql, tenantOf(req).tenantId, req.query))

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: 'Create a draft broadcast: an APPROVED template, its parameters from lead fields, and an audience (a lead filter, or a list of phones or lead ids).',
      body: CreateBroadcastBody, response: { 201: BroadcastView },
    },
  }, async (req, reply) => reply.code(201).send(await broadcasts.createBroadcast(deps.sql, actorOf(req), req.body)))

  app.get('/:broadcastId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One broadcast with its stats.', params: BroadcastParams, response: { 200: BroadcastView } },
  }, async (req) => broadcasts.getBroadcast(deps.sql, tenantOf(req).tenantId, req.params.broadcastId))

  app.patch('/:broadcastId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Edit a draft (If-Match or version: optimistic concurrency).', params: BroadcastParams, body: UpdateBroadcastBody, response: { 200: BroadcastView } },
  }, async (req) => broadcasts.updateBroadcast(deps.sql, actorOf(req), req.params.broadcastId, { ...req.body, version: ifMatch(req.headers['if-match'], req.body) }))

  app.delete('/:broadcastId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Delete a draft.', params: BroadcastParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await broadcasts.deleteBroadcast(deps.sql, actorOf(req), req.params.broadcastId)
    return reply.code(204).send(null)
  })

  app.get('/:broadcastId/recipients', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Recipients with their status (queued, sent, delivered, read, replied, failed with Meta’s code, skipped with the reason).', params: BroadcastParams, querystring: ListRecipientsQuery, response: { 200: z.object({ data: z.array(RecipientView), nextAfter: z.number().nullable() }) } },
  }, async (req) => broadcasts.listRecipients(deps.sql, tenantOf(req).tenantId, req.params.broadcastId, req.query))

  app.post('/:broadcastId/schedule', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Schedule (a local time in the tenant's timezone, or an instant); the audience is taken now.", params: BroadcastParams, body: ScheduleBroadcastBody.extend({ version: z.number().int().min(1).optional() }), response: { 200: BroadcastView } },
  }, async (req) => broadcasts.scheduleBroadcast(deps.sql, actorOf(req), req.params.broadcastId, req.body.scheduledAt, ifMatch(req.headers['if-match'], req.body)))

  app.post('/:broadcastId/start', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Start sending now (from draft or scheduled).', params: BroadcastParams, body: Version, response: { 200: BroadcastView } },
  }, async (req) => broadcasts.startBroadcast(deps.sql, actorOf(req), req.params.broadcastId, ifMatch(req.headers['if-match'], req.body ?? undefined)))

  // The actions that take nothing but the broadcast.
  const actions = [
    ['unschedule', broadcasts.unscheduleBroadcast, 'A scheduled broadcast back to draft.'],
    ['pause', broadcasts.pauseBroadcast, 'Pause a sending broadcast.'],
    ['resume', broadcasts.resumeBroadcast, 'Resume a paused broadcast where it stopped (422 while its template is still paused, disabled or RED).'],
    ['stop', broadcasts.stopBroadcast, 'Stop for good: nobody else is queued.'],
  ] as const
  for (const [action, run, summary] of actions) {
    app.post(`/:broadcastId/${action}`, {
      config: { access: 'tenant:write' },
      schema: { tags, summary, params: BroadcastParams, response: { 200: BroadcastView } },
    }, async (req) => run(deps.sql, actorOf(req), req.params.broadcastId))
  }
}
