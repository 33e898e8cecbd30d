import {
  type InboundMessage, type KnownMessageType, type MessageContext, type MessageIdentity, type MessageStatus, type Referral, type StatusName, type WaError,
  MessageStatus as MessageStatusSchema, isKnownMessageType, parseInboundMessage,
} from './payload.js'

/** A message type we understand, or `unknown` for anything else (a newer type, or a message that failed its schema). */
export type MessageType = KnownMessageType

export interface NormalizedError {
  code: number
  title: string | null
  message: string | null
  details: string | null
}

export interface NormalizedContext {
  /** The message this one replies to (a wamid, or an older unprefixed id). */
  id?: string
  from?: string
  forwarded?: boolean
  frequentlyForwarded?: boolean
  /** Set when the user asked about a catalog product ("Message business" on a product). */
  referredProduct?: { catalogId: string; productRetailerId: string }
}

export interface NormalizedReferral {
  sourceUrl?: string
  sourceId?: string
  sourceType?: string
  headline?: string
  body?: string
  mediaType?: string
  imageUrl?: string
  videoUrl?: string
  thumbnailUrl?: string
  /** Click id for the Conversions API; the attribution window is 7 days from the click. */
  ctwaClid?: string
}

/** A message's identity-check block; `keyHash` is the contact's `identity_key_hash`, when Meta sent one. */
export interface NormalizedIdentity {
  acknowledged: boolean | null
  createdAt: Date | null
  hash: string | null
  keyHash?: string
}

export interface NormalizedMessage {
  wamid: string
  /** The sender's wa_id (phone number). Null for users who enabled usernames: then only `fromUserId` is known. */
  from: string | null
  /** The sender's business-scoped user id (BSUID), when Meta sends one. */
  fromUserId: string | null
  timestamp: Date
  type: MessageType
  /** The type string exactly as Meta sent it; differs from `type` only when `type` is `unknown`. */
  rawType: string
  /**
   * The type-specific object exactly as sent (`message[rawType]`), e.g. `{ id, mime_type, sha256, caption }` for an image or
   * `{ type: 'button_reply', button_reply: { id, title } }` for an interactive reply. Contacts arrive as an array, so they
   * are wrapped: `{ contacts: [...] }`. Types without a body (unknown, request_welcome) give `{}`.
   */
  content: Record<string, unknown>
  context?: NormalizedContext
  referral?: NormalizedReferral
  errors?: NormalizedError[]
  identity?: NormalizedIdentity
  isReaction: boolean
  /** A reaction whose emoji is empty or missing: the user took their reaction back. */
  isReactionRemoval: boolean
}

export interface NormalizedStatus {
  wamid: string
  status: StatusName
  timestamp: Date
  /** The recipient's wa_id; null when the message was sent to a business-scoped user id. */
  recipientId: string | null
  recipientUserId: string | null
  errors: NormalizedError[]
  pricing?: { billable?: boolean; pricingModel?: string; category?: string; type?: string }
  conversation?: { id: string; expiresAt?: Date; originType?: string }
  bizOpaqueCallbackData?: string
}

export const fromUnixSeconds = (seconds: string | number): Date => new Date(Number(seconds) * 1000)

export const normalizeError = (error: WaError): NormalizedError => ({
  code: error.code,
  title: error.title ?? null,
  message: error.message ?? null,
  details: error.error_data?.details ?? null,
})

/** Copies only the keys that are present, so optional fields stay absent rather than `undefined`. */
function pick<T extends object>(entries: [keyof T, unknown][]): T {
  const out: Record<string, unknown> = {}
  for (const [key, value] of entries) if (value !== undefined) out[key as string] = value
  return out as T
}

function normalizeContext(context: MessageContext): NormalizedContext {
  const product = context.referred_product
  return pick<NormalizedContext>([
    ['id', context.id],
    ['from', context.from],
    ['forwarded', context.forwarded],
    ['frequentlyForwarded', context.frequently_forwarded],
    ['referredProduct', product && { catalogId: product.catalog_id, productRetailerId: product.product_retailer_id }],
  ])
}

function normalizeReferral(referral: Referral): NormalizedReferral {
  return pick<NormalizedReferral>([
    ['sourceUrl', referral.source_url],
    ['sourceId', referral.source_id],
    ['sourceType', referral.source_type],
    ['headline', referral.headline],
    ['body', referral.body],
    ['mediaType', referral.media_type],
    ['imageUrl', referral.image_url],
    ['videoUrl', referral.video_url],
    ['thumbnailUrl', referral.thumbnail_url],
    ['ctwaClid', referral.ctwa_clid],
  ])
}

const UNIX_SECONDS = /^\d{1,12}$/

/** Unix seconds (number or digit string) or a date text as Meta writes it ("2026-04-19T13:59:20+0000"); null if neither. */
export function toTimestamp(value: unknown): Date | null {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return fromUnixSeconds(value)
  if (typeof value !== 'string' || value === '') return null
  if (UNIX_SECONDS.test(value)) return fromUnixSeconds(value)
  const date = new Date(value.replace(/([+-]\d{2})(\d{2})$/, '$1:$2'))
  return Number.isNaN(date.getTime()) ? null : date
}

export function normalizeIdentity(identity: MessageIdentity): NormalizedIdentity {
  const ack = identity.acknowledged
  return {
    acknowledged: typeof ack === 'boolean' ? ack : ack === undefined ? null : ack === 'true',
    createdAt: toTimestamp(identity.created_timestamp),
    hash: identity.hash ?? null,
  }
}

export const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/** `message[rawType]` as a JSON object: arrays (contacts) are wrapped under their type, anything else gives `{}`. */
export function contentOf(message: Record<string, unknown>, rawType: string): Record<string, unknown> {
  const body = message[rawType]
  if (Array.isArray(body)) return { [rawType]: body }
  return isObject(body) ? body : {}
}

/** Turns a message that already passed its schema into our shape. */
export function toNormalizedMessage(message: InboundMessage): NormalizedMessage {
  const raw = message as Record<string, unknown> & InboundMessage
  const rawType = message.type
  const type: MessageType = isKnownMessageType(rawType) ? rawType : 'unknown'
  const content = contentOf(raw, rawType)
  const isReaction = type === 'reaction'
  const normalized: NormalizedMessage = {
    wamid: message.id,
    from: message.from ?? null,
    fromUserId: message.from_user_id ?? null,
    timestamp: fromUnixSeconds(message.timestamp),
    type,
    rawType,
    content,
    isReaction,
    isReactionRemoval: isReaction && !content.emoji,
  }
  if (message.context) normalized.context = normalizeContext(message.context)
  if (message.referral) normalized.referral = normalizeReferral(message.referral)
  if (message.errors?.length) normalized.errors = message.errors.map(normalizeError)
  if (message.identity) normalized.identity = normalizeIdentity(message.identity)
  return normalized
}

/** Validates and normalizes one inbound message object. Throws a ZodError when it does not match Meta's shape. */
export function normalizeMessage(raw: unknown): NormalizedMessage {
  const parsed = parseInboundMessage(raw)
  if (!parsed.success) throw parsed.error
  return toNormalizedMessage(parsed.data)
}

export function toNormalizedStatus(status: MessageStatus): NormalizedStatus {
  const normalized: NormalizedStatus = {
    wamid: status.id,
    status: status.status,
    timestamp: fromUnixSeconds(status.timestamp),
    recipientId: status.recipient_id ?? null,
    recipientUserId: status.recipient_user_id ?? null,
    errors: (status.errors ?? []).map(normalizeError),
  }
  if (status.pricing) {
    const p = status.pricing
    normalized.pricing = pick<NonNullable<NormalizedStatus['pricing']>>([['billable', p.billable], ['pricingModel', p.pricing_model], ['category', p.category], ['type', p.type]])
  }
  if (status.conversation) {
    const c = status.conversation
    normalized.conversation = pick<NonNullable<NormalizedStatus['conversation']>>([
      ['id', c.id],
      ['expiresAt', c.expiration_timestamp === undefined ? undefined : fromUnixSeconds(c.expiration_timestamp)],
      ['originType', c.origin?.type],
    ])
  }
  if (status.biz_opaque_callback_data !== undefined) normalized.bizOpaqueCallbackData = status.biz_opaque_callback_data
  return normalized
}

/** Validates and normalizes one status object. Throws a ZodError when it does not match Meta's shape. */
export function normalizeStatus(raw: unknown): NormalizedStatus {
  return toNormalizedStatus(MessageStatusSchema.parse(raw))
}
