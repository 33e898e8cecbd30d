import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { graphBaseUrl } from '../../../domains/whatsapp/outbound/graph.js'
import { SubmitTemplatePayload } from '../../../domains/whatsapp/outbound/schemas.js'
import { submitDraftTemplate, type TemplateSubmitter } from '../../../domains/whatsapp/outbound/service.js'
import { submitTemplate } from '../../../domains/whatsapp/outbound/template-client.js'
import type { TaskDeps } from './task-deps.js'

/** Submits a new template to Meta for review. Rejections of the request are recorded; outages are thrown and retried. */
export const submitTemplateTask = (deps: TaskDeps, submitter?: TemplateSubmitter): Task => {
  const secrets = SecretBox.fromConfig(deps.config.SECRETS_KEY)
  const graph: TemplateSubmitter = submitter ?? {
    submit: (input) => submitTemplate({ ...input, baseUrl: graphBaseUrl(deps.config), apiVersion: deps.config.GRAPH_API_VERSION }),
  }
  return async (payload, helpers) => {
    const { tenantId, templateId } = SubmitTemplatePayload.parse(payload)
    const outcome = await submitDraftTemplate(deps.sql, secrets, graph, tenantId, templateId)
    helpers.logger.info(`template ${templateId}: ${outcome}`)
  }
}
