import { z } from 'zod'

/**
 * Builders for the bodies of `POST /{version}/{phone_number_id}/messages`. Inputs are validated against Meta's
 * documented limits here, so a bad message fails in our process (a ZodError naming the field) instead of costing a
 * round trip and coming back as error 100.
 */

// wa_id or phone number in international form; Meta also accepts punctuation, we only send digits.
const Recipient = z.string().regex(/^\+?\d{6,15}$/, 'recipient must be 6 to 15 digits, optionally with a leading +')
const MessageId = z.string().min(1).max(512)

export interface BaseMessageBody {
  messaging_product: 'whatsapp'
  recipient_type: 'individual'
  to: string
  context?: { message_id: string }
  /** Echoed by Meta in status webhooks for this message (max 512 chars). */
  biz_opaque_callback_data?: string
}

export interface TextMessageBody extends BaseMessageBody {
  type: 'text'
  text: { body: string; preview_url: boolean }
}

export interface TemplateMessageBody extends BaseMessageBody {
  type: 'template'
  template: { name: string; language: { code: string }; components?: TemplateComponentBody[] }
}

export interface InteractiveMessageBody extends BaseMessageBody {
  type: 'interactive'
  interactive: InteractiveButtonsPart | InteractiveListPart
}

export interface InteractiveButtonsPart {
  type: 'button'
  header?: { type: 'text'; text: string }
  body: { text: string }
  footer?: { text: string }
  action: { buttons: Array<{ type: 'reply'; reply: { id: string; title: string } }> }
}

export interface InteractiveListPart {
  type: 'list'
  header?: { type: 'text'; text: string }
  body: { text: string }
  footer?: { text: string }
  action: { button: string; sections: Array<{ title?: string; rows: Array<{ id: string; title: string; description?: string }> }> }
}

export interface MarkReadBody {
  messaging_product: 'whatsapp'
  status: 'read'
  message_id: string
}

export type SendMessageBody = TextMessageBody | TemplateMessageBody | InteractiveMessageBody

const context = (replyTo: string | undefined) => (replyTo ? { context: { message_id: replyTo } } : {})

// ---- text ----

export const TextInput = z.object({
  to: Recipient,
  // Text messages: at most 4096 characters.
  text: z.string().min(1).max(4096),
  previewUrl: z.boolean().optional(),
  replyTo: MessageId.optional(),
})
export type TextInput = z.input<typeof TextInput>

export function textBody(input: TextInput): TextMessageBody {
  const v = TextInput.parse(input)
  return {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: v.to,
    ...context(v.replyTo),
    type: 'text',
    text: { body: v.text, preview_url: v.previewUrl ?? false },
  }
}

// ---- template ----

const MediaRef = z.union([z.object({ link: z.url() }), z.object({ id: z.string().min(1) })])
const TextParam = z.object({ type: z.literal('text'), text: z.string().min(1) })
const CurrencyParam = z.object({
  type: z.literal('currency'),
  currency: z.object({ fallback_value: z.string().min(1), code: z.string().length(3), amount_1000: z.number().int() }),
})
const DateTimeParam = z.object({ type: z.literal('date_time'), date_time: z.object({ fallback_value: z.string().min(1) }) })

const HeaderComponent = z.object({
  type: z.literal('header'),
  // A header has one variable: text (60 characters, as the header itself), or the media of a media header.
  parameters: z
    .array(
      z.discriminatedUnion('type', [
        z.object({ type: z.literal('text'), text: z.string().min(1).max(60) }),
        z.object({ type: z.literal('image'), image: MediaRef }),
        z.object({ type: z.literal('video'), video: MediaRef }),
        z.object({ type: z.literal('document'), document: z.intersection(MediaRef, z.object({ filename: z.string().optional() })) }),
      ]),
    )
    .length(1),
})
const BodyComponent = z.object({
  type: z.literal('body'),
  parameters: z.array(z.discriminatedUnion('type', [TextParam, CurrencyParam, DateTimeParam])).min(1),
})
const ButtonComponent = z.object({
  type: z.literal('button'),
  subType: z.enum(['quick_reply', 'url', 'copy_code', 'flow']),
  // Templates have at most 10 buttons, addressed by position 0-9.
  index: z.number().int().min(0).max(9),
  parameters: z
    .array(
      z.discriminatedUnion('type', [
        // Quick-reply payloads come back in the inbound `button.payload` when the user taps.
        z.object({ type: z.literal('payload'), payload: z.string().min(1).max(128) }),
        // The dynamic suffix of a URL button.
        z.object({ type: z.literal('text'), text: z.string().min(1).max(2000) }),
        z.object({ type: z.literal('coupon_code'), coupon_code: z.string().min(1).max(15) }),
        z.object({ type: z.literal('action'), action: z.record(z.string(), z.unknown()) }),
      ]),
    )
    .length(1),
})
export const TemplateComponent = z.discriminatedUnion('type', [HeaderComponent, BodyComponent, ButtonComponent])
export type TemplateComponent = z.input<typeof TemplateComponent>
type TemplateComponentBody =
  | z.output<typeof HeaderComponent>
  | z.output<typeof BodyComponent>
  | { type: 'button'; sub_type: string; index: string; parameters: z.output<typeof ButtonComponent>['parameters'] }

export const TemplateInput = z.object({
  to: Recipient,
  // Template names are lowercase letters, digits and underscores, at most 512 characters.
  name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'template names are lowercase letters, digits and underscores'),
  // Meta's language codes: `en`, `en_US`, `pt_BR`, `zh_HK`, `fil`...
  language: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/, 'language must be a code like en or en_US'),
  components: z.array(TemplateComponent).max(12).optional(),
  replyTo: MessageId.optional(),
})
export type TemplateInput = z.input<typeof TemplateInput>

export function templateBody(input: TemplateInput): TemplateMessageBody {
  const v = TemplateInput.parse(input)
  const components = v.components?.map((c): TemplateComponentBody =>
    c.type === 'button' ? { type: 'button', sub_type: c.subType, index: String(c.index), parameters: c.parameters } : c,
  )
  return {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: v.to,
    ...context(v.replyTo),
    type: 'template',
    template: { name: v.name, language: { code: v.language }, ...(components && components.length > 0 ? { components } : {}) },
  }
}

// ---- interactive ----

// Interactive header (text type) and footer: at most 60 characters each.
const HeaderText = z.string().min(1).max(60)
const FooterText = z.string().min(1).max(60)

const ReplyButton = z.object({
  // Button ids come back in `interactive.button_reply.id`: at most 256 characters, no surrounding spaces.
  id: z.string().min(1).max(256).refine((s) => s.trim() === s, 'button ids cannot start or end with spaces'),
  // Button titles: at most 20 characters, shown on the button.
  title: z.string().min(1).max(20),
})

export const InteractiveButtonsInput = z
  .object({
    to: Recipient,
    // Body of an interactive reply-button message: at most 1024 characters.
    text: z.string().min(1).max(1024),
    // One to three reply buttons; titles and ids must be unique within the message.
    buttons: z.array(ReplyButton).min(1).max(3),
    header: HeaderText.optional(),
    footer: FooterText.optional(),
    replyTo: MessageId.optional(),
  })
  .superRefine((v, ctx) => {
    if (new Set(v.buttons.map((b) => b.id)).size !== v.buttons.length) ctx.addIssue({ code: 'custom', path: ['buttons'], message: 'button ids must be unique' })
    if (new Set(v.buttons.map((b) => b.title)).size !== v.buttons.length) ctx.addIssue({ code: 'custom', path: ['buttons'], message: 'button titles must be unique' })
  })
export type InteractiveButtonsInput = z.input<typeof InteractiveButtonsInput>

/** The envelope and text parts both interactive kinds share; each adds its own `type` and `action`. */
function interactive<P extends InteractiveButtonsPart | InteractiveListPart>(
  v: { to: string; replyTo?: string; header?: string; text: string; footer?: string },
  part: Pick<P, 'type' | 'action'>,
): InteractiveMessageBody {
  return {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: v.to,
    ...context(v.replyTo),
    type: 'interactive',
    interactive: {
      type: part.type,
      ...(v.header ? { header: { type: 'text' as const, text: v.header } } : {}),
      body: { text: v.text },
      ...(v.footer ? { footer: { text: v.footer } } : {}),
      action: part.action,
    } as P,
  }
}

export function interactiveButtonsBody(input: InteractiveButtonsInput): InteractiveMessageBody {
  const v = InteractiveButtonsInput.parse(input)
  return interactive<InteractiveButtonsPart>(v, {
    type: 'button',
    action: { buttons: v.buttons.map((b) => ({ type: 'reply' as const, reply: { id: b.id, title: b.title } })) },
  })
}

const ListRow = z.object({
  // Row ids come back in `interactive.list_reply.id`: at most 200 characters.
  id: z.string().min(1).max(200),
  // Row titles at most 24 characters, descriptions at most 72.
  title: z.string().min(1).max(24),
  description: z.string().min(1).max(72).optional(),
})
const ListSection = z.object({
  // Section titles: at most 24 characters; required when there is more than one section.
  title: z.string().min(1).max(24).optional(),
  rows: z.array(ListRow).min(1).max(10),
})

export const InteractiveListInput = z
  .object({
    to: Recipient,
    // Body of a list message: at most 4096 characters.
    text: z.string().min(1).max(4096),
    // The single button that opens the list: at most 20 characters.
    buttonText: z.string().min(1).max(20),
    // At most 10 sections, and at most 10 rows across all of them.
    sections: z.array(ListSection).min(1).max(10),
    header: HeaderText.optional(),
    footer: FooterText.optional(),
    replyTo: MessageId.optional(),
  })
  .superRefine((v, ctx) => {
    const rows = v.sections.flatMap((s) => s.rows)
    if (rows.length > 10) ctx.addIssue({ code: 'custom', path: ['sections'], message: 'a list has at most 10 rows across all sections' })
    if (new Set(rows.map((r) => r.id)).size !== rows.length) ctx.addIssue({ code: 'custom', path: ['sections'], message: 'row ids must be unique' })
    if (v.sections.length > 1) {
      v.sections.forEach((s, i) => {
        if (!s.title) ctx.addIssue({ code: 'custom', path: ['sections', i, 'title'], message: 'sections need a title when there are several' })
      })
    }
  })
export type InteractiveListInput = z.input<typeof InteractiveListInput>

export function interactiveListBody(input: InteractiveListInput): InteractiveMessageBody {
  const v = InteractiveListInput.parse(input)
  return interactive<InteractiveListPart>(v, {
    type: 'list',
    action: {
      button: v.buttonText,
      sections: v.sections.map((s) => ({
        ...(s.title ? { title: s.title } : {}),
        rows: s.rows.map((r) => ({ id: r.id, title: r.title, ...(r.description ? { description: r.description } : {}) })),
      })),
    },
  })
}

// ---- mark as read ----

/** Marks an inbound message (and the ones before it) as read: the user sees blue ticks. */
export function markReadBody(messageId: string): MarkReadBody {
  return { messaging_product: 'whatsapp', status: 'read', message_id: MessageId.parse(messageId) }
}
