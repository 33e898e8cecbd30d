import { z } from 'zod'

/*
 * Zod schemas for WhatsApp Cloud API webhook deliveries (object `whatsapp_business_account`).
 *
 * Every object is loose: Meta adds fields without notice, and we keep whatever it sends so the raw payload can be
 * stored as received. We are strict only on what we rely on: ids, wamids, and timestamps (strings of unix seconds).
 */

/** Meta sends message and status timestamps as strings of unix seconds, never as numbers. */
export const UnixSeconds = z.string().regex(/^\d{1,12}$/, 'a string of unix seconds')

/** Cloud API ids of messages we sent: statuses always name a `wamid.<base64>`. */
export const Wamid = z.string().regex(/^wamid\.\S+$/, 'a wamid (wamid.<base64>)')

const NonEmpty = z.string().min(1)

/**
 * Inbound message ids: any non-empty string. Real ones are wamids, but the "Test" button of Meta's webhook dashboard
 * sends its sample message with `id: "ABGGFlA5Fpa"`, and older On-Premises-style ids had no prefix either.
 */
export const MessageId = NonEmpty

/** Template ids arrive as JSON numbers in management webhooks; strings are accepted so ids beyond 2^53 can be sent intact. */
export const TemplateId = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)])

export const WaError = z.looseObject({
  code: z.number().int(),
  title: z.string().optional(),
  message: z.string().optional(),
  error_data: z.looseObject({ details: z.string().optional() }).optional(),
  href: z.string().optional(),
})
export type WaError = z.infer<typeof WaError>

export const Metadata = z.looseObject({
  display_phone_number: z.string(),
  phone_number_id: NonEmpty,
})

/**
 * `wa_id` is omitted for users who enabled usernames; then only the business-scoped `user_id` (BSUID) is there.
 * `identity_key_hash` is sent when the business turned on the identity change check.
 */
export const Contact = z.looseObject({
  profile: z.looseObject({ name: z.string().optional(), username: z.string().optional() }).optional(),
  wa_id: z.string().optional(),
  user_id: z.string().optional(),
  identity_key_hash: z.string().optional(),
})
export type Contact = z.infer<typeof Contact>

export const MessageContext = z.looseObject({
  from: z.string().optional(),
  id: z.string().optional(),
  forwarded: z.boolean().optional(),
  frequently_forwarded: z.boolean().optional(),
  referred_product: z.looseObject({ catalog_id: z.string(), product_retailer_id: z.string() }).optional(),
})
export type MessageContext = z.infer<typeof MessageContext>

/** Click-to-WhatsApp ad (or post) attribution; only on the first message after the click. */
export const Referral = z.looseObject({
  source_url: z.string().optional(),
  source_id: z.string().optional(),
  source_type: z.string().optional(),
  headline: z.string().optional(),
  body: z.string().optional(),
  media_type: z.string().optional(),
  image_url: z.string().optional(),
  video_url: z.string().optional(),
  thumbnail_url: z.string().optional(),
  ctwa_clid: z.string().optional(),
  welcome_message: z.looseObject({ text: z.string().optional() }).optional(),
})
export type Referral = z.infer<typeof Referral>

// --- message contents, one per type -------------------------------------------------------------------------

const Media = {
  id: NonEmpty,
  mime_type: z.string().optional(),
  sha256: z.string().optional(),
  url: z.string().optional(),
}

export const TextContent = z.looseObject({ body: z.string() })
export const ImageContent = z.looseObject({ ...Media, caption: z.string().optional() })
export const AudioContent = z.looseObject({ ...Media, voice: z.boolean().optional() })
export const VideoContent = z.looseObject({ ...Media, caption: z.string().optional() })
export const DocumentContent = z.looseObject({ ...Media, caption: z.string().optional(), filename: z.string().optional() })
export const StickerContent = z.looseObject({ ...Media, animated: z.boolean().optional() })

const Coordinate = z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)])
export const LocationContent = z.looseObject({
  latitude: Coordinate,
  longitude: Coordinate,
  name: z.string().optional(),
  address: z.string().optional(),
  url: z.string().optional(),
})

export const SharedContact = z.looseObject({
  name: z.looseObject({ formatted_name: z.string().optional() }).optional(),
  phones: z.array(z.looseObject({ phone: z.string().optional(), wa_id: z.string().optional(), type: z.string().optional() })).optional(),
})
export const ContactsContent = z.array(SharedContact).min(1)

export const ButtonReply = z.looseObject({ type: z.literal('button_reply'), button_reply: z.looseObject({ id: z.string(), title: z.string() }) })
export const ListReply = z.looseObject({
  type: z.literal('list_reply'),
  list_reply: z.looseObject({ id: z.string(), title: z.string(), description: z.string().optional() }),
})
/** WhatsApp Flows (and address messages) answer with `nfm_reply`; `response_json` is a JSON *string* holding the flow_token. */
export const NfmReply = z.looseObject({
  type: z.literal('nfm_reply'),
  nfm_reply: z.looseObject({ name: z.string().optional(), body: z.string().optional(), response_json: z.string() }),
})
const KNOWN_INTERACTIVE = ['button_reply', 'list_reply', 'nfm_reply']
/** Newer interactive replies (call_permission_reply, …) are kept as they come. */
export const OtherInteractive = z.looseObject({ type: z.string().refine((t) => !KNOWN_INTERACTIVE.includes(t), 'a known interactive type with a bad shape') })
export const InteractiveContent = z.union([z.discriminatedUnion('type', [ButtonReply, ListReply, NfmReply]), OtherInteractive])

/** A quick-reply button on a template message. */
export const ButtonContent = z.looseObject({ text: z.string(), payload: z.string().optional() })

/** A removed reaction comes with an empty (or missing) emoji. */
export const ReactionContent = z.looseObject({ message_id: NonEmpty, emoji: z.string().optional() })

const Amount = z.union([z.number(), z.string()])
export const OrderContent = z.looseObject({
  catalog_id: z.string(),
  text: z.string().optional(),
  product_items: z.array(z.looseObject({ product_retailer_id: z.string(), quantity: Amount, item_price: Amount.optional(), currency: z.string().optional() })),
})

/**
 * `customer_changed_number` (older) / `user_changed_number` (newer) carry the new number in `wa_id` (very old:
 * `new_wa_id`). `customer_identity_changed` carries the new identity hash in `identity` and the sender in `customer`.
 */
export const SystemContent = z.looseObject({
  body: z.string().optional(),
  type: z.string().optional(),
  wa_id: z.string().optional(),
  new_wa_id: z.union([z.string(), z.number()]).optional(),
  user_id: z.string().optional(),
  customer: z.string().optional(),
  identity: z.string().optional(),
})

/**
 * The security block of a message when the identity change check is on: whether the latest
 * `customer_identity_changed` notice was acknowledged, when Meta saw the change, and the identity hash. Meta's
 * references disagree on the types (boolean or string, string or number), so both are read.
 */
export const MessageIdentity = z.looseObject({
  acknowledged: z.union([z.boolean(), z.string()]).optional(),
  created_timestamp: z.union([z.string(), z.number()]).optional(),
  hash: z.string().optional(),
})
export type MessageIdentity = z.infer<typeof MessageIdentity>

export const UnsupportedContent = z.looseObject({ type: z.string().optional() })

// --- inbound messages ---------------------------------------------------------------------------------------

const MessageBase = {
  id: MessageId,
  from: z.string().min(1).optional(),
  from_user_id: z.string().min(1).optional(),
  timestamp: UnixSeconds,
  context: MessageContext.optional(),
  referral: Referral.optional(),
  errors: z.array(WaError).optional(),
  identity: MessageIdentity.optional(),
}

const message = <T extends string, S extends z.ZodType>(type: T, content: S) =>
  z.looseObject({ ...MessageBase, type: z.literal(type), [type]: content } as typeof MessageBase & { type: z.ZodLiteral<T> } & Record<T, S>)

/** One schema per message type we understand, so a bad message reports the issues of its own type. */
export const MESSAGE_SCHEMAS = {
  text: message('text', TextContent),
  image: message('image', ImageContent),
  audio: message('audio', AudioContent),
  video: message('video', VideoContent),
  document: message('document', DocumentContent),
  sticker: message('sticker', StickerContent),
  location: message('location', LocationContent),
  contacts: message('contacts', ContactsContent),
  interactive: message('interactive', InteractiveContent),
  button: message('button', ButtonContent),
  reaction: message('reaction', ReactionContent),
  order: message('order', OrderContent),
  system: message('system', SystemContent),
  unsupported: z.looseObject({ ...MessageBase, type: z.literal('unsupported'), unsupported: UnsupportedContent.optional() }),
  // Older API versions said `unknown` for what is now `unsupported`; both come with `errors[]`.
  unknown: z.looseObject({ ...MessageBase, type: z.literal('unknown') }),
  request_welcome: z.looseObject({ ...MessageBase, type: z.literal('request_welcome') }),
} as const

export type KnownMessageType = keyof typeof MESSAGE_SCHEMAS
export const KNOWN_MESSAGE_TYPES = Object.keys(MESSAGE_SCHEMAS) as KnownMessageType[]
export const isKnownMessageType = (type: unknown): type is KnownMessageType => typeof type === 'string' && Object.hasOwn(MESSAGE_SCHEMAS, type)

/** A message of a type Meta added after this file was written: the envelope is checked, the content kept as is. */
export const OtherMessage = z.looseObject({ ...MessageBase, type: z.string().refine((t) => !isKnownMessageType(t), 'a known message type with a bad shape') })

const hasSender = (m: { from?: string | undefined; from_user_id?: string | undefined }) => Boolean(m.from ?? m.from_user_id)
const SENDER_REQUIRED = { message: 'a message needs `from` or `from_user_id`', path: ['from'] }

export const InboundMessage = z
  .union([z.discriminatedUnion('type', Object.values(MESSAGE_SCHEMAS) as unknown as [typeof MESSAGE_SCHEMAS.text, ...(typeof MESSAGE_SCHEMAS)[KnownMessageType][]]), OtherMessage])
  .refine(hasSender, SENDER_REQUIRED)
export type InboundMessage = z.infer<(typeof MESSAGE_SCHEMAS)[KnownMessageType]> | z.infer<typeof OtherMessage>

const withSender = (schema: z.ZodType<InboundMessage>) => schema.refine(hasSender, SENDER_REQUIRED)
const BY_TYPE = new Map(KNOWN_MESSAGE_TYPES.map((type) => [type, withSender(MESSAGE_SCHEMAS[type] as z.ZodType<InboundMessage>)]))
const OTHER = withSender(OtherMessage)

/** Parses one inbound message with the schema of its own `type`, so errors name the right fields. */
export function parseInboundMessage(raw: unknown) {
  const type = typeof raw === 'object' && raw !== null ? (raw as { type?: unknown }).type : undefined
  return ((isKnownMessageType(type) && BY_TYPE.get(type)) || OTHER).safeParse(raw)
}

// --- statuses of messages we sent ----------------------------------------------------------------------------

export const StatusName = z.enum(['sent', 'delivered', 'read', 'played', 'failed'])
export type StatusName = z.infer<typeof StatusName>

export const Pricing = z.looseObject({
  billable: z.boolean().optional(),
  pricing_model: z.string().optional(),
  category: z.string().optional(),
  type: z.string().optional(),
})

export const Conversation = z.looseObject({
  id: z.string(),
  expiration_timestamp: z.union([UnixSeconds, z.number().int()]).optional(),
  origin: z.looseObject({ type: z.string() }).optional(),
})

export const MessageStatus = z.looseObject({
  id: Wamid,
  status: StatusName,
  timestamp: UnixSeconds,
  // Omitted when the message was sent to a business-scoped user id; then `recipient_user_id` is set.
  recipient_id: z.string().optional(),
  recipient_user_id: z.string().optional(),
  errors: z.array(WaError).optional(),
  conversation: Conversation.optional(),
  pricing: Pricing.optional(),
  biz_opaque_callback_data: z.string().optional(),
})
export type MessageStatus = z.infer<typeof MessageStatus>

// --- change values, one per webhook field ---------------------------------------------------------------------

export const MessagesValue = z.looseObject({
  messaging_product: z.literal('whatsapp'),
  metadata: Metadata,
  contacts: z.array(Contact).optional(),
  messages: z.array(InboundMessage).optional(),
  statuses: z.array(MessageStatus).optional(),
  errors: z.array(WaError).optional(),
})
export type MessagesValue = z.infer<typeof MessagesValue>

/** The `messages` value with its arrays unchecked, so one bad message does not sink its neighbours. */
export const MessagesValueShell = MessagesValue.extend({
  contacts: z.array(z.unknown()).optional(),
  messages: z.array(z.unknown()).optional(),
  statuses: z.array(z.unknown()).optional(),
  errors: z.array(z.unknown()).optional(),
})

const TemplateRef = {
  message_template_id: TemplateId,
  message_template_name: z.string(),
  message_template_language: z.string(),
}

/**
 * event: APPROVED, REJECTED, PENDING, PAUSED, DISABLED, FLAGGED, IN_APPEAL, PENDING_DELETION, ARCHIVED, UNARCHIVED,
 * LOCKED, REINSTATED, LIMIT_EXCEEDED, … `reason` is `NONE` when there is none and null for a scheduled deletion; a
 * rejection for INVALID_FORMAT adds `rejection_info` with Meta's explanation and its recommendation, as text.
 */
export const TemplateStatusValue = z.looseObject({
  ...TemplateRef,
  event: NonEmpty,
  reason: z.string().nullable().optional(),
  message_template_category: z.string().optional(),
  disable_info: z.looseObject({}).optional(),
  other_info: z.looseObject({}).optional(),
  rejection_info: z.looseObject({ reason: z.string().optional(), recommendation: z.string().optional() }).optional(),
})
export type TemplateStatusValue = z.infer<typeof TemplateStatusValue>

/** Scores: GREEN, YELLOW, RED, UNKNOWN. */
export const TemplateQualityValue = z.looseObject({
  ...TemplateRef,
  previous_quality_score: z.string(),
  new_quality_score: z.string(),
})
export type TemplateQualityValue = z.infer<typeof TemplateQualityValue>

/** Two shapes: an impending change (`correct_category`, `category_update_timestamp`) or a done one (`previous_category`). */
export const TemplateCategoryValue = z.looseObject({
  ...TemplateRef,
  previous_category: z.string().optional(),
  new_category: z.string().optional(),
  correct_category: z.string().optional(),
  category_update_timestamp: z.number().int().optional(),
})
export type TemplateCategoryValue = z.infer<typeof TemplateCategoryValue>

/** event: VERIFIED_ACCOUNT, ACCOUNT_VIOLATION, ACCOUNT_RESTRICTION, DISABLED_UPDATE, PARTNER_ADDED, ACCOUNT_DELETED, … */
export const AccountUpdateValue = z.looseObject({
  event: NonEmpty,
  phone_number: z.string().optional(),
  ban_info: z.looseObject({ waba_ban_state: z.string().optional(), waba_ban_date: z.string().optional() }).optional(),
  // `expiration` is ISO text ("2026-04-19T13:59:20+0000") in Meta's examples and unix seconds in real deliveries.
  restriction_info: z.array(z.looseObject({ restriction_type: z.string().optional(), expiration: z.union([z.string(), z.number()]).nullable().optional() })).optional(),
  violation_info: z.looseObject({ violation_type: z.string().optional() }).optional(),
})
export type AccountUpdateValue = z.infer<typeof AccountUpdateValue>

/**
 * event: FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE (quality and messaging limit), ONBOARDING (still registering),
 * THROUGHPUT_UPGRADE (the number moved to higher throughput; `current_limit` then says TIER_UNLIMITED, a throughput
 * level, not a messaging limit). Limits: TIER_50, TIER_250, TIER_1K/2K, TIER_10K, TIER_100K, TIER_UNLIMITED, TIER_NOT_SET.
 * Meta drops `current_limit`/`old_limit` in 2026 for the portfolio-wide `max_daily_conversations_per_business`.
 */
export const PhoneNumberQualityValue = z.looseObject({
  display_phone_number: z.string(),
  event: NonEmpty,
  current_limit: z.string().optional(),
  old_limit: z.string().optional(),
  // Meta is replacing current_limit with this one.
  max_daily_conversations_per_business: z.union([z.string(), z.number()]).optional(),
})
export type PhoneNumberQualityValue = z.infer<typeof PhoneNumberQualityValue>

/** decision: APPROVED, REJECTED, DEFERRED. */
export const PhoneNumberNameValue = z.looseObject({
  display_phone_number: z.string(),
  decision: z.string(),
  requested_verified_name: z.string().optional(),
  rejection_reason: z.string().nullable().optional(),
})
export type PhoneNumberNameValue = z.infer<typeof PhoneNumberNameValue>

export const FIELD_SCHEMAS = {
  messages: MessagesValue,
  message_template_status_update: TemplateStatusValue,
  message_template_quality_update: TemplateQualityValue,
  template_category_update: TemplateCategoryValue,
  account_update: AccountUpdateValue,
  phone_number_quality_update: PhoneNumberQualityValue,
  phone_number_name_update: PhoneNumberNameValue,
} as const
export type KnownField = keyof typeof FIELD_SCHEMAS
export const isKnownField = (field: unknown): field is KnownField => typeof field === 'string' && Object.hasOwn(FIELD_SCHEMAS, field)

const knownChange = <F extends KnownField>(field: F) => z.looseObject({ field: z.literal(field), value: FIELD_SCHEMAS[field] })

export const KnownChange = z.discriminatedUnion('field', [
  knownChange('messages'),
  knownChange('message_template_status_update'),
  knownChange('message_template_quality_update'),
  knownChange('template_category_update'),
  knownChange('account_update'),
  knownChange('phone_number_quality_update'),
  knownChange('phone_number_name_update'),
])

/** Fields we do not model (calls, flows, user_preferences, history, …) still parse, with the value kept untouched. */
export const UnknownChange = z.looseObject({
  field: z.string().refine((f) => !isKnownField(f), 'a known field with a bad value'),
  value: z.unknown(),
})

export const WebhookChange = z.union([KnownChange, UnknownChange])
export type WebhookChange = z.infer<typeof WebhookChange>

const envelope = <C extends z.ZodType>(change: C) =>
  z.looseObject({
    object: z.literal('whatsapp_business_account'),
    entry: z.array(
      z.looseObject({
        id: NonEmpty, // the WhatsApp Business Account id
        time: z.number().optional(), // unix seconds; management fields only
        changes: z.array(change),
      }),
    ),
  })

/** A whole delivery, fully typed. Strict: any malformed message fails it; `splitDelivery` is the forgiving reader. */
export const WebhookPayload = envelope(WebhookChange)
export type WebhookPayload = z.infer<typeof WebhookPayload>

/** Only the envelope: each change value is checked later, one by one. */
export const WebhookEnvelope = envelope(z.looseObject({ field: z.string(), value: z.unknown() }))
export type WebhookEnvelope = z.infer<typeof WebhookEnvelope>
