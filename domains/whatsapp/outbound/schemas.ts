import { z } from 'zod'
import { TemplateComponent } from '../graph/bodies.js'
import { StatusHistoryEntry } from '../schemas.js'

export const SEND_MESSAGE_TASK = 'whatsapp__send_message'
export const SUBMIT_TEMPLATE_TASK = 'whatsapp__submit_template'

/** Job payloads. Old jobs may carry old shapes: every task parses its payload first. */
export const SendMessagePayload = z.object({ tenantId: z.uuid(), messageId: z.uuid() })
export type SendMessagePayload = z.infer<typeof SendMessagePayload>
export const SubmitTemplatePayload = z.object({ tenantId: z.uuid(), templateId: z.uuid() })

// ---------------------------------------------------------------------------------------------------------
// API: send a message to a lead.

const Target = {
  leadId: z.uuid(),
  /** Our id of the business number to send from; defaults to the number the lead last wrote to. */
  phoneNumberId: z.uuid().optional(),
}

export const SendTextBody = z.strictObject({
  type: z.literal('text'),
  ...Target,
  // Text messages: at most 4096 characters (Meta).
  text: z.string().trim().min(1).max(4096),
  previewUrl: z.boolean().optional(),
  /** Our id of a message in this conversation to quote (sent as context.message_id). */
  replyToMessageId: z.uuid().optional(),
})

export const SendTemplateBody = z.strictObject({
  type: z.literal('template'),
  ...Target,
  template: z.strictObject({
    name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'template names are lowercase letters, digits and underscores'),
    language: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/, 'a language code like en or pt_BR'),
    /** Parameters, in Meta's component shape: header (one), body (one per {{n}}), buttons (by index). */
    components: z.array(TemplateComponent).max(12).optional(),
  }),
  /**
   * An experiment (its key) whose variations pick the template or its parameters for this lead: the variation's
   * `value.template` ({ name?, language?, components? }) replaces those fields of `template`; a variation without one,
   * or a lead not in the experiment, gets `template` as given. The exposure is recorded when Meta reports it delivered.
   */
  experiment: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'an experiment key').max(100).optional(),
})

/** What a variation of an experiment named by a template send may carry in its `value`. */
export const TemplateVariationValue = z.object({
  template: z.strictObject({
    name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'template names are lowercase letters, digits and underscores').optional(),
    language: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/, 'a language code like en or pt_BR').optional(),
    components: z.array(TemplateComponent).max(12).optional(),
  }).optional(),
}).loose()

export const SendMessageBody = z.discriminatedUnion('type', [SendTextBody, SendTemplateBody])
export type SendMessageBody = z.infer<typeof SendMessageBody>

export const OutboundState = z.enum(['queued', 'sending', 'in_doubt', 'accepted', 'failed', 'cancelled'])

export const OutboundMessageView = z.object({
  id: z.uuid(),
  leadId: z.uuid().nullable(),
  phoneNumberId: z.uuid(),
  waId: z.string(),
  wamid: z.string().nullable(),
  type: z.string(),
  content: z.unknown(),
  source: z.enum(['api', 'bot', 'broadcast']),
  /** Where the send stands in our outbox. */
  sendState: OutboundState,
  attempts: z.number(),
  failureReason: z.string().nullable(),
  /** Meta's status, moved by the status webhooks: pending -> sent -> delivered -> read, or failed. */
  status: z.string(),
  statusAt: z.date().nullable(),
  errorCode: z.number().nullable(),
  errorTitle: z.string().nullable(),
  createdAt: z.date(),
  statusHistory: z.array(StatusHistoryEntry).optional(),
  /** A template send that named an experiment: the lead's variation (null: the lead is not in it; the template as given went). */
  experiment: z.object({ key: z.string(), phase: z.number().int(), variationKey: z.string() }).nullable().optional(),
})
export type OutboundMessageView = z.infer<typeof OutboundMessageView>

export const ListOutboundQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
  leadId: z.uuid().optional(),
  status: z.enum(['pending', 'sent', 'delivered', 'read', 'failed']).optional(),
})

// ---------------------------------------------------------------------------------------------------------
// API: templates.

const TemplateButton = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('QUICK_REPLY'), text: z.string().min(1).max(25) }),
  z.strictObject({ type: z.literal('URL'), text: z.string().min(1).max(25), url: z.url().max(2000), example: z.array(z.string()).optional() }),
  z.strictObject({ type: z.literal('PHONE_NUMBER'), text: z.string().min(1).max(25), phone_number: z.string().min(5).max(20) }),
  z.strictObject({ type: z.literal('COPY_CODE'), example: z.string().min(1).max(15) }),
])

/** Template components as Meta's template API takes them (uppercase types), with their limits. */
export const TemplateDefinitionComponent = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('HEADER'),
    format: z.enum(['TEXT', 'IMAGE', 'VIDEO', 'DOCUMENT', 'LOCATION']),
    text: z.string().min(1).max(60).optional(),
    example: z.record(z.string(), z.unknown()).optional(),
  }),
  z.strictObject({ type: z.literal('BODY'), text: z.string().min(1).max(1024), example: z.record(z.string(), z.unknown()).optional() }),
  z.strictObject({ type: z.literal('FOOTER'), text: z.string().min(1).max(60) }),
  z.strictObject({ type: z.literal('BUTTONS'), buttons: z.array(TemplateButton).min(1).max(10) }),
])
export type TemplateDefinitionComponent = z.infer<typeof TemplateDefinitionComponent>

export const CreateTemplateBody = z.strictObject({
  /** Our id of a number whose business account will own the template; defaults to the tenant's only account. */
  phoneNumberId: z.uuid().optional(),
  name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'lowercase letters, digits and underscores'),
  language: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/, 'a language code like en or pt_BR'),
  category: z.enum(['MARKETING', 'UTILITY', 'AUTHENTICATION']),
  components: z.array(TemplateDefinitionComponent).min(1).max(4).superRefine((components, ctx) => {
    const types = components.map((c) => c.type)
    if (new Set(types).size !== types.length) ctx.addIssue({ code: 'custom', message: 'each component type at most once' })
    if (!types.includes('BODY')) ctx.addIssue({ code: 'custom', message: 'a template needs a BODY' })
  }),
})
export type CreateTemplateBody = z.infer<typeof CreateTemplateBody>

export const TemplateView = z.object({
  id: z.uuid(),
  wabaId: z.string(),
  metaTemplateId: z.string().nullable(),
  name: z.string(),
  language: z.string(),
  category: z.string().nullable(),
  previousCategory: z.string().nullable(),
  /** DRAFT (ours, being submitted), then Meta's: PENDING, APPROVED, REJECTED, PAUSED, DISABLED... */
  status: z.string(),
  components: z.unknown(),
  rejectionReason: z.string().nullable(),
  qualityScore: z.string().nullable(),
  updatedAt: z.date(),
})
export type TemplateView = z.infer<typeof TemplateView>
