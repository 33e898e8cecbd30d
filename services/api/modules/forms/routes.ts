import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import { CreateFormBody, UpdateFormBody } from '../../../../domains/marketing/forms/schemas.js'
import { archiveForm, createForm, getForm, listFormsPage, listFormSubmissions, listSubmissionInbox, replaySubmission, updateForm } from '../../../../domains/marketing/forms/service.js'
import { FormView, SubmissionView } from '../../../../domains/marketing/forms/views.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const FormParams = z.object({ formId: z.uuid() })
const InboxEntry = z.object({
  id: z.uuid(), formId: z.uuid(), status: z.string(), attempts: z.number(), lastError: z.string().nullable(), receivedAt: z.date(),
})
const FormList = z.object({ data: z.array(FormView), nextCursor: z.string().nullable() })
function found<T>(value: T | null, formId: string): T {
  if (value === null) throw new AppError('NOT_FOUND', `form ${formId} not found`)
  return value
}

export default async function formRoutes(app: App, deps: ApiDeps) {

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['forms'],
      summary: 'Create a lead form. Pages post to its submitPath on the ingestion service.',
      body: CreateFormBody,
      response: { 201: FormView },
    },
  }, async (req, reply) => reply.code(201).send(await createForm(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['forms'],
      summary: "This tenant's forms, newest first.",
      querystring: PageQuery.extend({ includeArchived: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') }),
      response: { 200: FormList },
    },
  }, async (req) => listFormsPage(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/:formId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['forms'], summary: 'One form.', params: FormParams, response: { 200: FormView } },
  }, async (req) => found(await getForm(deps.sql, tenantOf(req).tenantId, req.params.formId), req.params.formId))

  app.patch('/:formId', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['forms'],
      summary: 'Change a form: omitted properties stay, null clears an optional one. An archived form cannot change (410).',
      params: FormParams,
      body: UpdateFormBody,
      response: { 200: FormView },
    },
  }, async (req) => found(await updateForm(deps.sql, actorOf(req), req.params.formId, req.body), req.params.formId))

  app.delete('/:formId', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['forms'],
      summary: 'Archive a form: its public key then answers 410; its submissions and leads stay. Archiving twice is harmless.',
      params: FormParams,
      response: { 200: FormView },
    },
  }, async (req) => found(await archiveForm(deps.sql, actorOf(req), req.params.formId), req.params.formId))

  app.get('/:formId/submissions', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['forms'],
      summary: "A form's accepted submissions, newest first.",
      params: FormParams,
      querystring: PageQuery,
      response: { 200: z.object({ data: z.array(SubmissionView), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => found(await listFormSubmissions(deps.sql, tenantOf(req).tenantId, req.params.formId, req.query), req.params.formId))

  // Submissions are resolved to leads by the worker; the ones it could not apply stay in the inbox with their error.
  app.get('/inbox', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['forms'],
      summary: 'Submissions not applied yet: waiting (received), retrying (failed) or parked after their last attempt, with the last error.',
      querystring: PageQuery.extend({ status: z.enum(['received', 'failed', 'parked']).optional() }),
      response: { 200: z.object({ data: z.array(InboxEntry), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => listSubmissionInbox(deps.sql, tenantOf(req).tenantId, req.query))

  app.post('/inbox/:submissionId/replay', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['forms'],
      summary: 'Queue a parked submission again (after fixing what made it fail). Applied at most once, however often replayed.',
      params: z.object({ submissionId: z.uuid() }),
      response: { 202: z.object({ submissionId: z.uuid(), queued: z.literal(true) }) },
    },
  }, async (req, reply) => {
    if (!(await replaySubmission(deps.sql, actorOf(req), req.params.submissionId))) {
      throw new AppError('NOT_FOUND', `no failed or parked submission ${req.params.submissionId}`)
    }
    return reply.code(202).send({ submissionId: req.params.submissionId, queued: true as const })
  })
}
