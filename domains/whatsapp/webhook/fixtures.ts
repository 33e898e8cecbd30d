import { randomBytes, randomInt } from 'node:crypto'

/*
 * Builders for WhatsApp Cloud API webhook bodies, shaped exactly like Meta's (snake_case, timestamps as strings of unix
 * seconds, wamids as `wamid.<base64>`). For tests and benchmarks: every id defaults to a fresh random one, every
 * timestamp to now.
 *
 *   const msg = replyTo(textMessage({ from: '5511988887777', body: 'oi' }), previousWamid)
 *   const body = delivery({ phoneNumberId, messages: [msg], statuses: [statusUpdate({ id: sentWamid, status: 'read', recipientId })] })
 */

export const DEFAULT_WABA_ID = '102290129340398'
export const DEFAULT_PHONE_NUMBER_ID = '106540352242922'
export const DEFAULT_DISPLAY_PHONE_NUMBER = '15550783881'

export type Timestamp = string | number | Date

export type RawMessage = { id: string; from: string; timestamp: string; type: string } & Record<string, unknown>
export type RawStatus = { id: string; status: string; timestamp: string; recipient_id: string } & Record<string, unknown>
export type RawError = { code: number; title: string; message: string; error_data: { details: string }; href?: string }
export type RawChange = { field: string; value: unknown }
export type RawEntry = { id: string; time?: number; changes: RawChange[] }
export type RawDelivery = { object: 'whatsapp_business_account'; entry: RawEntry[] }

/** A random wamid; Meta's are base64 of an opaque binary id. */
export const newWamid = (): string => `wamid.${randomBytes(30).toString('base64')}`

export const unixSeconds = (t: Timestamp = new Date()): string =>
  t instanceof Date ? String(Math.floor(t.getTime() / 1000)) : String(t)

const randomDigits = (length: number): string => Array.from({ length }, (_, i) => randomInt(i === 0 ? 1 : 0, 10)).join('')

/** A random template id: a number, as Meta sends it (15 digits stay below 2^53). */
export const newTemplateId = (): number => Number(randomDigits(15))

const sha = (): string => randomBytes(32).toString('base64')
const mediaId = (): string => randomDigits(16)

interface MessageInput {
  from: string
  id?: string
  timestamp?: Timestamp
}

const base = (input: MessageInput, type: string): RawMessage => ({
  from: input.from,
  id: input.id ?? newWamid(),
  timestamp: unixSeconds(input.timestamp),
  type,
})

export const textMessage = (input: MessageInput & { body: string }): RawMessage => ({ ...base(input, 'text'), text: { body: input.body } })

interface MediaInput extends MessageInput {
  mediaId?: string
  mimeType?: string
  sha256?: string
}

const media = (input: MediaInput, mimeType: string) => ({
  id: input.mediaId ?? mediaId(),
  mime_type: input.mimeType ?? mimeType,
  sha256: input.sha256 ?? sha(),
})

export const imageMessage = (input: MediaInput & { caption?: string }): RawMessage => ({
  ...base(input, 'image'),
  image: { ...media(input, 'image/jpeg'), ...(input.caption === undefined ? {} : { caption: input.caption }) },
})

/** `voice: true` is a push-to-talk recording (OGG/Opus); false an audio file. */
export const audioMessage = (input: MediaInput & { voice?: boolean }): RawMessage => ({
  ...base(input, 'audio'),
  audio: { ...media(input, input.voice ? 'audio/ogg; codecs=opus' : 'audio/mpeg'), voice: input.voice ?? false },
})

export const videoMessage = (input: MediaInput & { caption?: string }): RawMessage => ({
  ...base(input, 'video'),
  video: { ...media(input, 'video/mp4'), ...(input.caption === undefined ? {} : { caption: input.caption }) },
})

export const documentMessage = (input: MediaInput & { filename?: string; caption?: string }): RawMessage => ({
  ...base(input, 'document'),
  document: {
    ...media(input, 'application/pdf'),
    filename: input.filename ?? 'document.pdf',
    ...(input.caption === undefined ? {} : { caption: input.caption }),
  },
})

export const stickerMessage = (input: MediaInput & { animated?: boolean }): RawMessage => ({
  ...base(input, 'sticker'),
  sticker: { ...media(input, 'image/webp'), animated: input.animated ?? false },
})

export const locationMessage = (
  input: MessageInput & { latitude?: number; longitude?: number; name?: string; address?: string; url?: string },
): RawMessage => ({
  ...base(input, 'location'),
  location: {
    latitude: input.latitude ?? -23.5613,
    longitude: input.longitude ?? -46.6565,
    ...(input.name === undefined ? {} : { name: input.name }),
    ...(input.address === undefined ? {} : { address: input.address }),
    ...(input.url === undefined ? {} : { url: input.url }),
  },
})

export const contactsMessage = (input: MessageInput & { contacts?: { name: string; phone: string; waId?: string }[] }): RawMessage => ({
  ...base(input, 'contacts'),
  contacts: (input.contacts ?? [{ name: 'Ana Souza', phone: '+55 11 98888-7777', waId: '5511988887777' }]).map((c) => ({
    name: { formatted_name: c.name, first_name: c.name.split(' ')[0] },
    phones: [{ phone: c.phone, ...(c.waId === undefined ? {} : { wa_id: c.waId }), type: 'CELL' }],
  })),
})

export const interactiveButtonReply = (input: MessageInput & { replyId: string; title: string }): RawMessage => ({
  ...base(input, 'interactive'),
  interactive: { type: 'button_reply', button_reply: { id: input.replyId, title: input.title } },
})

export const interactiveListReply = (input: MessageInput & { replyId: string; title: string; description?: string }): RawMessage => ({
  ...base(input, 'interactive'),
  interactive: {
    type: 'list_reply',
    list_reply: { id: input.replyId, title: input.title, ...(input.description === undefined ? {} : { description: input.description }) },
  },
})

/** A completed WhatsApp Flow: Meta sends the answers as a JSON *string*, with the flow_token we sent inside it. */
export const flowReply = (input: MessageInput & { response?: Record<string, unknown>; flowToken?: string; body?: string; name?: string }): RawMessage => ({
  ...base(input, 'interactive'),
  interactive: {
    type: 'nfm_reply',
    nfm_reply: {
      name: input.name ?? 'flow',
      body: input.body ?? 'Sent',
      response_json: JSON.stringify({ flow_token: input.flowToken ?? 'unused', ...input.response }),
    },
  },
})

/** A tap on a template's quick-reply button (type `button`, not `interactive`). */
export const templateButtonReply = (input: MessageInput & { text: string; payload?: string }): RawMessage => ({
  ...base(input, 'button'),
  button: { payload: input.payload ?? input.text, text: input.text },
})

/** `emoji: ''` is how a removed reaction looks. */
export const reactionMessage = (input: MessageInput & { messageId: string; emoji: string }): RawMessage => ({
  ...base(input, 'reaction'),
  reaction: { message_id: input.messageId, emoji: input.emoji },
})

export const orderMessage = (
  input: MessageInput & {
    catalogId?: string
    text?: string
    items?: { productRetailerId: string; quantity: number; itemPrice: number; currency: string }[]
  },
): RawMessage => ({
  ...base(input, 'order'),
  order: {
    catalog_id: input.catalogId ?? randomDigits(15),
    ...(input.text === undefined ? {} : { text: input.text }),
    product_items: (input.items ?? [{ productRetailerId: 'sku-1', quantity: 1, itemPrice: 99.9, currency: 'BRL' }]).map((i) => ({
      product_retailer_id: i.productRetailerId,
      quantity: i.quantity,
      item_price: i.itemPrice,
      currency: i.currency,
    })),
  },
})

/** A user changed their number; `from` is the old one. Meta sends no `contacts[]` with system messages. */
export const systemMessage = (input: MessageInput & { newWaId: string; systemType?: string; body?: string }): RawMessage => ({
  ...base(input, 'system'),
  system: {
    body: input.body ?? `User changed from ${input.from} to ${input.newWaId}`,
    wa_id: input.newWaId,
    type: input.systemType ?? 'user_changed_number',
  },
})

/**
 * What the "Test" button of Meta's webhook dashboard sends for the `messages` field: Meta's sample text message, whose
 * id is not a wamid. Delivered to a real number's metadata here so it can be followed through processing.
 */
export const dashboardTestMessage = (input: Partial<MessageInput> & { body?: string } = {}): RawMessage => ({
  from: input.from ?? '16315551181',
  id: input.id ?? 'ABGGFlA5Fpa',
  timestamp: unixSeconds(input.timestamp ?? 1504902988),
  type: 'text',
  text: { body: input.body ?? 'this is a text message' },
})

/** Adds the identity-check block Meta puts on messages when the business enabled it. */
export const withIdentity = <M extends RawMessage>(
  msg: M,
  identity: { acknowledged?: boolean | string; created_timestamp?: string | number; hash?: string } = {},
): M => ({
  ...msg,
  identity: { acknowledged: true, created_timestamp: unixSeconds(), hash: randomBytes(8).toString('base64'), ...identity },
})

/** The notice Meta sends when a user's security identity changed (new device, reinstall); `from` is the user. */
export const identityChangedMessage = (input: MessageInput & { identity?: string }): RawMessage => ({
  ...base(input, 'system'),
  system: {
    body: `${input.from}'s security code changed`,
    identity: input.identity ?? randomBytes(8).toString('base64'),
    customer: input.from,
    type: 'customer_identity_changed',
  },
})

/** What Meta sends for a message type the Cloud API cannot deliver (edits, polls, view-once, …). */
export const unsupportedMessage = (input: MessageInput & { unsupportedType?: string }): RawMessage => ({
  ...base(input, 'unsupported'),
  unsupported: { type: input.unsupportedType ?? 'edit' },
  errors: [
    { code: 131051, title: 'Message type unknown', message: 'Message type unknown', error_data: { details: 'Message type is currently not supported.' } },
  ],
})

/** Marks `msg` as a reply to `contextId`, a message the business sent from `businessNumber`. */
export const replyTo = <M extends RawMessage>(msg: M, contextId: string, businessNumber = DEFAULT_DISPLAY_PHONE_NUMBER): M => ({
  ...msg,
  context: { from: businessNumber, id: contextId },
})

export const forwarded = <M extends RawMessage>(msg: M, options: { frequently?: boolean } = {}): M => ({
  ...msg,
  context: options.frequently ? { frequently_forwarded: true } : { forwarded: true },
})

/** Adds click-to-WhatsApp ad attribution, as on the first message after an ad click. */
export const withReferral = <M extends RawMessage>(
  msg: M,
  overrides: Partial<Record<'source_url' | 'source_id' | 'source_type' | 'headline' | 'body' | 'media_type' | 'image_url' | 'video_url' | 'thumbnail_url' | 'ctwa_clid', string>> = {},
): M => {
  const video = overrides.media_type === 'video'
  return {
    ...msg,
    referral: {
      source_url: 'https://fb.me/2ZIbTnqdR',
      source_id: randomDigits(17),
      source_type: 'ad',
      headline: 'Fale com a gente',
      body: 'Tire suas dúvidas pelo WhatsApp',
      media_type: 'image',
      ...(video
        ? { video_url: 'https://scontent.xx.fbcdn.net/v/video.mp4', thumbnail_url: 'https://scontent.xx.fbcdn.net/v/thumb.jpg' }
        : { image_url: 'https://scontent.xx.fbcdn.net/v/image.jpg' }),
      ctwa_clid: randomBytes(24).toString('base64url'),
      ...overrides,
    },
  }
}

export const waError = (code: number, title: string, details = title): RawError => ({
  code,
  title,
  message: title,
  error_data: { details },
  href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
})

export type StatusName = 'sent' | 'delivered' | 'read' | 'played' | 'failed'

/**
 * A status of a message we sent. Non-failed statuses get per-message pricing by default (pass `pricing: null` to leave it
 * out); failed ones get a 131026 "undeliverable" error unless `errors` is given, and no pricing.
 */
export const statusUpdate = (input: {
  id: string
  status: StatusName
  recipientId: string
  timestamp?: Timestamp
  errors?: RawError[]
  pricing?: { billable?: boolean; pricing_model?: string; category?: string; type?: string } | null
  conversation?: { id: string; expiration_timestamp?: string; origin?: { type: string } } | null
  bizOpaqueCallbackData?: string
}): RawStatus => {
  const failed = input.status === 'failed'
  const errors = input.errors ?? (failed ? [waError(131026, 'Message undeliverable', 'Message Undeliverable.')] : undefined)
  const pricing = input.pricing === undefined
    ? failed ? undefined : { billable: true, pricing_model: 'PMP', category: 'utility', type: 'regular' }
    : input.pricing ?? undefined
  return {
    id: input.id,
    status: input.status,
    timestamp: unixSeconds(input.timestamp),
    recipient_id: input.recipientId,
    ...(input.conversation ? { conversation: input.conversation } : {}),
    ...(pricing ? { pricing } : {}),
    ...(errors ? { errors } : {}),
    ...(input.bizOpaqueCallbackData === undefined ? {} : { biz_opaque_callback_data: input.bizOpaqueCallbackData }),
  }
}

export interface DeliveryInput {
  wabaId?: string
  phoneNumberId?: string
  displayPhoneNumber?: string
  messages?: RawMessage[]
  statuses?: RawStatus[]
  /** Profiles to send; by default one per distinct sender of a non-system message, named `Lead <wa_id>`. */
  contacts?: { waId: string; name: string; identityKeyHash?: string }[]
  /** Value-level errors, e.g. `waError(130429, 'Rate limit hit')`. */
  errors?: RawError[]
}

/** The `value` of one `messages` change. */
export function messagesValue(input: Omit<DeliveryInput, 'wabaId'> = {}): Record<string, unknown> {
  const messages = input.messages ?? []
  const senders = [...new Set(messages.filter((m) => m.type !== 'system').map((m) => m.from))]
  const contacts = input.contacts ?? senders.map((waId) => ({ waId, name: `Lead ${waId}` }))
  return {
    messaging_product: 'whatsapp',
    metadata: {
      display_phone_number: input.displayPhoneNumber ?? DEFAULT_DISPLAY_PHONE_NUMBER,
      phone_number_id: input.phoneNumberId ?? DEFAULT_PHONE_NUMBER_ID,
    },
    ...(contacts.length
      ? { contacts: contacts.map((c) => ({ profile: { name: c.name }, wa_id: c.waId, ...('identityKeyHash' in c && c.identityKeyHash ? { identity_key_hash: c.identityKeyHash } : {}) })) }
      : {}),
    ...(messages.length ? { messages } : {}),
    ...(input.statuses?.length ? { statuses: input.statuses } : {}),
    ...(input.errors?.length ? { errors: input.errors } : {}),
  }
}

export const envelope = (entries: RawEntry[]): RawDelivery => ({ object: 'whatsapp_business_account', entry: entries })

/** A full webhook body with one entry holding one `messages` change. */
export const delivery = (input: DeliveryInput = {}): RawDelivery =>
  envelope([{ id: input.wabaId ?? DEFAULT_WABA_ID, changes: [{ field: 'messages', value: messagesValue(input) }] }])

/** One body holding the entries of several, in order (Meta batches entries of different WABAs this way). */
export const mergeDeliveries = (...deliveries: RawDelivery[]): RawDelivery => envelope(deliveries.flatMap((d) => d.entry))

/** A body for a management field; `time` (unix seconds) defaults to now, as in Meta's management webhooks. */
export const managementDelivery = (wabaId: string, field: string, value: unknown, time: number = Math.floor(Date.now() / 1000)): RawDelivery =>
  envelope([{ id: wabaId, time, changes: [{ field, value }] }])

interface TemplateInput {
  templateId?: number
  name?: string
  language?: string
}

const template = (input: TemplateInput) => ({
  message_template_id: input.templateId ?? newTemplateId(),
  message_template_name: input.name ?? 'welcome_lead',
  message_template_language: input.language ?? 'pt_BR',
})

/** Value of `message_template_status_update`; Meta says reason `NONE` when there is none. */
export const templateStatusUpdate = (
  input: TemplateInput & { event?: string; reason?: string; category?: string; rejectionInfo?: { reason: string; recommendation: string } } = {},
) => ({
  event: input.event ?? 'APPROVED',
  ...template(input),
  reason: input.reason ?? (input.event === 'REJECTED' ? 'INVALID_FORMAT' : 'NONE'),
  ...(input.category === undefined ? {} : { message_template_category: input.category }),
  ...(input.rejectionInfo === undefined ? {} : { rejection_info: input.rejectionInfo }),
})

export const templateQualityUpdate = (input: TemplateInput & { previousScore?: string; newScore?: string } = {}) => ({
  previous_quality_score: input.previousScore ?? 'GREEN',
  new_quality_score: input.newScore ?? 'YELLOW',
  ...template(input),
})

/** A completed change by default; pass `correctCategory` (and `categoryUpdateTimestamp`) for an impending-change notice. */
export const templateCategoryUpdate = (
  input: TemplateInput & { previousCategory?: string; newCategory?: string; correctCategory?: string; categoryUpdateTimestamp?: number } = {},
) => ({
  ...template(input),
  ...(input.correctCategory === undefined
    ? { previous_category: input.previousCategory ?? 'UTILITY', new_category: input.newCategory ?? 'MARKETING' }
    : {
        correct_category: input.correctCategory,
        new_category: input.newCategory ?? input.correctCategory,
        category_update_timestamp: input.categoryUpdateTimestamp ?? Math.floor(Date.now() / 1000) + 86_400,
      }),
})

export const accountUpdate = (input: { event?: string } & Record<string, unknown> = {}) => ({ ...input, event: input.event ?? 'VERIFIED_ACCOUNT' })

/** Pass `currentLimit: null` for the 2026 shape, which only has `max_daily_conversations_per_business`. */
export const phoneNumberQualityUpdate = (
  input: { displayPhoneNumber?: string; event?: string; currentLimit?: string | null; oldLimit?: string; maxDailyConversations?: string } = {},
) => ({
  display_phone_number: input.displayPhoneNumber ?? DEFAULT_DISPLAY_PHONE_NUMBER,
  event: input.event ?? 'UPGRADE',
  ...(input.currentLimit === null ? {} : { current_limit: input.currentLimit ?? 'TIER_10K' }),
  ...(input.oldLimit === undefined ? {} : { old_limit: input.oldLimit }),
  ...(input.maxDailyConversations === undefined ? {} : { max_daily_conversations_per_business: input.maxDailyConversations }),
})

export const phoneNumberNameUpdate = (input: { displayPhoneNumber?: string; decision?: string; requestedName?: string } = {}) => ({
  display_phone_number: input.displayPhoneNumber ?? DEFAULT_DISPLAY_PHONE_NUMBER,
  decision: input.decision ?? 'APPROVED',
  requested_verified_name: input.requestedName ?? 'Acme Leads',
  rejection_reason: null,
})
