import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { getTemplate, listTemplates } from '../../../../domains/whatsapp/outbound/queries.js'
import { CreateTemplateBody, TemplateView } from '../../../../domains/whatsapp/outbound/schemas.js'
import { createTemplate } from '../../../../domains/whatsapp/outbound/service.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const TemplateParams = z.object({ templateId: z.uuid() })

export default async function templateRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags: ['templates'], summary: 'Message templates with the status Meta last reported.', response: { 200: z.object({ data: z.array(TemplateView) }) } },
  }, async (req) => ({ data: await withTenant(deps.sql, tenantOf(req).tenantId, listTemplates) }))

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['templates'],
      summary: "Create a template and submit it to Meta for review (status DRAFT, then Meta's: PENDING, APPROVED or REJECTED).",
      body: CreateTemplateBody,
      response: { 202: TemplateView },
    },
  }, async (req, reply) => reply.code(202).send(await createTemplate(deps.sql, tenantOf(req).tenantId, req.body)))

  app.get('/:templateId', {
    config: { access: 'tenant:read' },
    schema: { tags: ['templates'], summary: 'One template.', params: TemplateParams, response: { 200: TemplateView } },
  }, async (req) => {
    const template = await withTenant(deps.sql, tenantOf(req).tenantId, (tx) => getTemplate(tx, req.params.templateId))
    if (!template) throw new AppError('NOT_FOUND', `template ${req.params.templateId} not found`)
    return template
  })
}
