import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import {
  BulkLeadsBody, ConsentView, LeadFilter, LeadListQuery, LeadParams, LeadView, MergeView, NoteBody, PatchLeadBody, TimelineEntry,
} from '../../../../domains/marketing/leads/schemas.js'
import {
  addLeadNote, bulkUpdateLeads, getLeadDetail, listLeadMerges, listLeadsPage, listLeadTimeline, mergeLeadsManually,
  patchLead, streamLeadsCsv,
} from '../../../../domains/marketing/leads/service.js'
import { listLeadMessagesPage } from '../../../../domains/whatsapp/lead-messages.js'
import { MessageView } from '../../../../domains/whatsapp/schemas.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const pageOf = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), nextCursor: z.string().nullable() })

function found<T>(value: T | null, leadId: string): T {
  if (value === null) throw new AppError('NOT_FOUND', `lead ${leadId} not found`)
  return value
}


export default async function leadRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['leads'],
      summary: 'Leads, newest first. Filter by status, source, tag, owner and creation date; q finds an email or phone exactly, or a name by its start.',
      querystring: LeadListQuery,
      response: { 200: pageOf(LeadView) },
    },
  }, async (req) => listLeadsPage(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/export.csv', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['leads'],
      summary: 'Every lead matching the filters as CSV, streamed (no page size, no limit).',
      querystring: LeadFilter,
      produces: ['text/csv'],
    },
  }, async (req, reply) => {
    const stream = streamLeadsCsv(deps.sql, tenantOf(req).tenantId, req.query, (err) => req.log.error({ err }, 'lead export failed'))
    return reply
      .type('text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="leads-${new Date().toISOString().slice(0, 10)}.csv"`)
      .send(stream)
  })

  app.get('/merges', {
    config: { access: 'tenant:read' },
    schema: { tags: ['leads'], summary: 'Leads found to be one person and merged, newest first.', querystring: PageQuery, response: { 200: pageOf(MergeView) } },
  }, async (req) => listLeadMerges(deps.sql, tenantOf(req).tenantId, req.query.limit, req.query.cursor))

  app.post('/bulk', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['leads'],
      summary: 'Set the status of, and add or remove tags on, up to 1,000 leads at once. Each changed lead gets an interaction.',
      body: BulkLeadsBody,
      response: { 200: z.object({ updated: z.number(), unchanged: z.number(), notFound: z.array(z.uuid()) }) },
    },
  }, async (req) => bulkUpdateLeads(deps.sql, actorOf(req), req.body))

  app.get('/:leadId', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['leads'],
      summary: 'One lead with its consents, merges and the newest page of its timeline (interactions, with their WhatsApp messages).',
      params: LeadParams,
      response: { 200: z.object({ lead: LeadView, consents: z.array(ConsentView), merges: z.array(MergeView), timeline: pageOf(TimelineEntry) }) },
    },
  }, async (req) => found(await getLeadDetail(deps.sql, tenantOf(req).tenantId, req.params.leadId), req.params.leadId))

  app.get('/:leadId/timeline', {
    config: { access: 'tenant:read' },
    schema: { tags: ['leads'], summary: "A lead's interactions, newest first.", params: LeadParams, querystring: PageQuery, response: { 200: pageOf(TimelineEntry) } },
  }, async (req) => found(await listLeadTimeline(deps.sql, tenantOf(req).tenantId, req.params.leadId, req.query.limit, req.query.cursor), req.params.leadId))

  app.get('/:leadId/messages', {
    config: { access: 'tenant:read' },
    schema: { tags: ['leads'], summary: "A lead's WhatsApp messages with their status history, newest first.", params: LeadParams, querystring: PageQuery, response: { 200: pageOf(MessageView) } },
  }, async (req) => found(await listLeadMessagesPage(deps.sql, tenantOf(req).tenantId, req.params.leadId, req.query.limit, req.query.cursor), req.params.leadId))

  app.patch('/:leadId', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['leads'],
      summary: 'Change status, owner, tags (the whole list), name or company. Each change is recorded as an interaction with who made it.',
      params: LeadParams,
      body: PatchLeadBody,
      response: { 200: LeadView },
    },
  }, async (req) => patchLead(deps.sql, actorOf(req), req.params.leadId, req.body))

  app.post('/:leadId/notes', {
    config: { access: 'tenant:write' },
    schema: { tags: ['leads'], summary: 'Add a note to a lead (an interaction; notes are never edited).', params: LeadParams, body: NoteBody, response: { 201: TimelineEntry } },
  }, async (req, reply) => reply.code(201).send(await addLeadNote(deps.sql, actorOf(req), req.params.leadId, req.body.text)))

  app.post('/:leadId/merge', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['leads'],
      summary: 'Merge another lead into this one (they are one person): its history, messages and consents move here. Irreversible.',
      params: LeadParams,
      body: z.strictObject({ leadId: z.uuid() }),
      response: { 200: LeadView },
    },
  }, async (req) => mergeLeadsManually(deps.sql, actorOf(req), req.params.leadId, req.body.leadId))
}
