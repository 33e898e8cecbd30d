import type { SecretBox } from '../../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { type SendMessageBody as GraphBody, type TemplateComponent, templateBody, textBody } from '../graph/bodies.js'
import { suppressedRecipients } from '../../privacy/suppression.js'
import { GraphApiError } from '../graph/errors.js'
import * as q from './queries.js'
import { recordPendingTemplateExposure, templateVariationFor, type TemplateVariation } from '../../experiments/service.js'
import { SEND_MESSAGE_TASK, SUBMIT_TEMPLATE_TASK, TemplateVariationValue, type CreateTemplateBody, type OutboundMessageView, type SendMessageBody } from './schemas.js'
import { checkTemplateParameters, isMarketing } from './template-params.js'

/** Free-form messages may go out only within 24 hours of the lead's last message to that number (Meta's rule). */
export const SERVICE_WINDOW_MS = 24 * 60 * 60 * 1000

export const isWindowOpen = (lastInboundAt: Date | null, now: Date) => lastInboundAt !== null && now.getTime() - lastInboundAt.getTime() < SERVICE_WINDOW_MS

export interface QueueOutboundInput {
  tenantId: string
  phoneId: string
  leadId: string | null
  waId: string
  body: GraphBody
  templateId?: string | null
  source: 'api' | 'bot' | 'broadcast'
  requestedBy: string
}

/**
 * Puts one message in the outbox: the message row (pending), what to send, and the job that sends it, all in the
 * caller's transaction. The send job checks the rules again before calling Meta (a window can close meanwhile).
 */
export async function queueOutbound(tx: Tx, input: QueueOutboundInput): Promise<{ id: string }> {
  const body = input.body
  const kind = body.type
  const content = kind === 'text' ? body.text : kind === 'template' ? body.template : body.interactive
  const row = await q.insertOutbound(tx, {
    tenantId: input.tenantId,
    phoneId: input.phoneId,
    leadId: input.leadId,
    waId: input.waId,
    kind,
    content,
    context: body.context ?? null,
    body,
    templateId: input.templateId ?? null,
    source: input.source,
    requestedBy: input.requestedBy,
  })
  await q.enqueueSend(tx, input.tenantId, row.id, input.phoneId, input.waId, SEND_MESSAGE_TASK)
  return { id: row.id }
}

/**
 * Messages taken back out of the outbox before any sender claimed them (a paused or stopped broadcast): returns the
 * ids that were cancelled; the others had been claimed already (or were final) and go on as they were.
 */
export const cancelQueuedOutbound = (tx: Tx, messageIds: string[], reason: string) => q.cancelQueuedSends(tx, messageIds, reason)

export type TemplateSendPlan =
  | { kind: 'ready'; phoneId: string; templateId: string; waId: string; body: GraphBody }
  | { kind: 'skip'; reason: TemplateSkipReason }

export type TemplateSkipReason =
  | 'number_not_found' | 'number_disabled' | 'number_token_invalid' | 'template_not_found' | 'template_not_approved'
  | 'template_parameters_mismatch' | 'suppressed' | 'opted_out' | 'sent_within_window'

/**
 * A business-initiated template from one of the current tenant's numbers (by Meta's phone number id) to a wa_id that
 * need not be a lead: the platform reminding an onboarding business, on its own number. Every rule the sender would
 * refuse it for is checked now (number usable, template approved and its parameters fitting, recipient neither
 * suppressed nor opted out of this tenant's messages) plus `notWithinMs`: the same template not sent to the same
 * person more often than that. A template, because a business-initiated message outside the 24-hour window may only
 * be one. The caller records the reason, or queues `body` with queueOutbound in the same transaction.
 */
export async function planTemplateSend(tx: Tx, input: { metaPhoneNumberId: string; waId: string; name: string; language: string; components: TemplateComponent[]; notWithinMs: number }, now = new Date()): Promise<TemplateSendPlan> {
  const skip = (reason: TemplateSkipReason): TemplateSendPlan => ({ kind: 'skip', reason })
  const number = await q.findNumberByMetaId(tx, input.metaPhoneNumberId)
  if (!number) return skip('number_not_found')
  if (number.status !== 'active') return skip('number_disabled')
  if (number.tokenInvalidAt) return skip('number_token_invalid')
  const template = await q.findTemplate(tx, number.businessAccountId, input.name, input.language)
  if (!template) return skip('template_not_found')
  if (template.status !== 'APPROVED') return skip('template_not_approved')
  if (checkTemplateParameters(template.components, input.components).length > 0) return skip('template_parameters_mismatch')
  if ((await suppressedRecipients(tx, [input.waId])).size > 0) return skip('suppressed')
  if (await q.findOptedOutWaId(tx, input.waId)) return skip('opted_out')
  const last = await q.lastTemplateSendTo(tx, number.id, input.waId, template.id)
  if (last && now.getTime() - last.getTime() < input.notWithinMs) return skip('sent_within_window')
  return { kind: 'ready', phoneId: number.id, templateId: template.id, waId: input.waId, body: templateBody({ to: input.waId, name: input.name, language: input.language, components: input.components }) }
}

const digitsOf = (phone: string | null) => (phone ? phone.replace(/\D/g, '') : null)

/**
 * A person (through the API) sends a text or a template to a lead. Every rule that can be checked now is, with a
 * clear error: the lead and number exist, the number can send, free text only inside the 24-hour window, the
 * template is approved and its parameters fit it, no marketing to a lead who opted out.
 */
export async function sendToLead(sql: Sql, tenantId: string, actor: string, input: SendMessageBody, now = new Date()): Promise<OutboundMessageView> {
  return withTenant(sql, tenantId, async (tx) => {
    const lead = await q.findLeadTarget(tx, input.leadId)
    if (!lead) throw new AppError('NOT_FOUND', `lead ${input.leadId} not found`)
    const waId = lead.waId ?? digitsOf(lead.phoneE164)
    if (!waId) throw new AppError('UNPROCESSABLE', 'this lead has no WhatsApp number or phone number to send to')

    const number = await q.pickSenderNumber(tx, waId, input.phoneNumberId)
    if (number === 'ambiguous') {
      throw new AppError('BAD_REQUEST', 'this tenant has several WhatsApp numbers and the lead has not written to any: say which with phoneNumberId', {
        details: [{ in: 'body', path: 'phoneNumberId', message: 'required here' }],
      })
    }
    if (!number) throw new AppError(input.phoneNumberId ? 'NOT_FOUND' : 'UNPROCESSABLE', input.phoneNumberId ? `WhatsApp number ${input.phoneNumberId} not found` : 'no WhatsApp number is connected')
    if (number.status !== 'active') throw new AppError('UNPROCESSABLE', 'this WhatsApp number is disabled')
    if (number.tokenInvalidAt) {
      throw new AppError('UNPROCESSABLE', `Meta rejected this number's access token on ${number.tokenInvalidAt.toISOString()}; update it (PATCH /v1/whatsapp/numbers/${number.id}) before sending`)
    }

    let body: GraphBody
    let templateId: string | null = null
    let variation: TemplateVariation | null = null
    if (input.type === 'text') {
      const lastInboundAt = await q.findServiceWindow(tx, number.id, waId)
      if (!isWindowOpen(lastInboundAt, now)) {
        const closedAt = lastInboundAt ? new Date(lastInboundAt.getTime() + SERVICE_WINDOW_MS) : null
        throw new AppError(
          'UNPROCESSABLE',
          lastInboundAt
            ? `the 24-hour customer service window with this lead closed at ${closedAt!.toISOString()} (their last message was at ${lastInboundAt.toISOString()}); free-form messages need an open window: send an approved template instead`
            : 'this lead has never written to this number, so there is no 24-hour customer service window; free-form messages need one: send an approved template instead',
          { details: { reason: 'service_window_closed', lastInboundAt: lastInboundAt?.toISOString() ?? null, windowClosedAt: closedAt?.toISOString() ?? null } },
        )
      }
      let replyTo: string | undefined
      if (input.replyToMessageId) {
        const quoted = await q.findMessageWamid(tx, input.replyToMessageId)
        if (!quoted) throw new AppError('NOT_FOUND', `message ${input.replyToMessageId} not found`)
        if (!quoted.wamid) throw new AppError('UNPROCESSABLE', `message ${input.replyToMessageId} has not been accepted by WhatsApp yet, so it cannot be quoted`)
        replyTo = quoted.wamid
      }
      body = textBody({ to: waId, text: input.text, previewUrl: input.previewUrl, replyTo })
    } else {
      let { name, language, components } = input.template
      if (input.experiment !== undefined) {
        variation = await templateVariationFor(tx, lead.id, input.experiment)
        const picked = variation ? TemplateVariationValue.safeParse(variation.value ?? {}) : null
        if (picked && !picked.success) {
          throw new AppError('UNPROCESSABLE', `variation ${variation!.variationKey} of experiment ${input.experiment} does not describe a template: ${picked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
        }
        const t = picked?.data.template
        if (t) ({ name = name, language = language, components = components } = t)
      }
      const template = await q.findTemplate(tx, number.businessAccountId, name, language)
      if (!template) throw new AppError('NOT_FOUND', `template ${name} (${language}) not found for this number's business account`)
      if (template.status !== 'APPROVED') throw new AppError('UNPROCESSABLE', `template ${name} (${language}) is ${template.status}; only APPROVED templates can be sent`)
      if (isMarketing(template.category) && lead.optedOutAt) {
        throw new AppError('UNPROCESSABLE', `this lead opted out of marketing messages on ${lead.optedOutAt.toISOString()}; ${name} is a MARKETING template`)
      }
      const issues = checkTemplateParameters(template.components, components)
      if (issues.length > 0) {
        throw new AppError('BAD_REQUEST', `the parameters do not fit template ${name}: ${issues.map((i) => i.message).join('; ')}`, {
          details: issues.map((i) => ({ in: 'body', path: i.path, message: i.message })),
        })
      }
      body = templateBody({ to: waId, name, language, components })
      templateId = template.id
    }

    const { id } = await queueOutbound(tx, { tenantId, phoneId: number.id, leadId: lead.id, waId, body, templateId, source: 'api', requestedBy: actor })
    if (variation && body.type === 'template') await recordPendingTemplateExposure(tx, { messageId: id, leadId: lead.id, variation, templateName: body.template.name })
    const view = (await q.getOutbound(tx, id))!
    if (input.type !== 'template' || input.experiment === undefined) return view
    return { ...view, experiment: variation ? { key: variation.experimentKey, phase: variation.phase, variationKey: variation.variationKey } : null }
  })
}

/** Stores a template as a draft and queues its submission to Meta; Meta's review then arrives by webhook. */
export async function createTemplate(sql: Sql, tenantId: string, input: CreateTemplateBody) {
  return withTenant(sql, tenantId, async (tx) => {
    const accounts = await q.businessAccountsOf(tx, input.phoneNumberId)
    if (accounts.length === 0) throw new AppError(input.phoneNumberId ? 'NOT_FOUND' : 'UNPROCESSABLE', input.phoneNumberId ? `WhatsApp number ${input.phoneNumberId} not found` : 'no WhatsApp number is connected')
    if (accounts.length > 1) {
      throw new AppError('BAD_REQUEST', 'this tenant has several WhatsApp business accounts: say which with phoneNumberId', {
        details: [{ in: 'body', path: 'phoneNumberId', message: 'required here' }],
      })
    }
    const { id } = await q.insertDraftTemplate(tx, { tenantId, businessAccountId: accounts[0]!.id, name: input.name, language: input.language, category: input.category, components: input.components })
    await q.enqueueTemplateSubmission(tx, tenantId, id, SUBMIT_TEMPLATE_TASK)
    return (await q.getTemplate(tx, id))!
  })
}

export interface TemplateSubmitter {
  submit(input: { accessToken: string; wabaId: string; template: { name: string; language: string; category: string; components: unknown } }): Promise<{ metaTemplateId: string; status: string; category: string | null }>
}

/**
 * The submission job: sends a DRAFT template to Meta and records Meta's id and first status. Meta's rejections of
 * the request itself are final (recorded as REJECTED with the reason); throttling and outages are thrown, so the
 * job retries. A template already submitted is left alone (the job may run twice).
 */
export async function submitDraftTemplate(sql: Sql, secrets: SecretBox, submitter: TemplateSubmitter, tenantId: string, templateId: string): Promise<'submitted' | 'rejected' | 'skipped'> {
  const template = await withTenant(sql, tenantId, (tx) => q.findTemplateForSubmission(tx, templateId))
  if (!template || template.status !== 'DRAFT' || template.metaTemplateId) return 'skipped'
  if (!template.phoneId) {
    await withTenant(sql, tenantId, (tx) => q.recordTemplateRejected(tx, templateId, 'no usable WhatsApp number (with a valid access token) in this business account'))
    return 'rejected'
  }
  const credentials = await withTenant(sql, tenantId, (tx) => q.findSenderCredentials(tx, template.phoneId!))
  try {
    const result = await submitter.submit({
      accessToken: secrets.open(credentials!.accessTokenSealed),
      wabaId: template.wabaId,
      template: { name: template.name, language: template.language, category: template.category, components: template.components },
    })
    await withTenant(sql, tenantId, (tx) => q.recordTemplateSubmitted(tx, templateId, result))
    return 'submitted'
  } catch (err) {
    if (!(err instanceof GraphApiError) || err.disposition === 'retry') throw err
    await withTenant(sql, tenantId, async (tx) => {
      await q.recordTemplateRejected(tx, templateId, `${err.code ?? err.httpStatus}: ${err.title}${err.details ? ` (${err.details})` : ''}`)
      if (err.disposition === 'token_invalid') await q.flagTokenInvalid(tx, template.phoneId!)
    })
    return 'rejected'
  }
}
