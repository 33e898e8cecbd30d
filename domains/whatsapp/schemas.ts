import { z } from 'zod'

export const PROCESS_DELIVERIES_TASK = 'whatsapp__process_deliveries'
export const PROCESS_DELIVERY_TASK = 'whatsapp__process_delivery'

/** Job payloads. Old jobs may carry old shapes: every task parses its payload first. */
export const ProcessDeliveriesPayload = z.object({ deliveryIds: z.array(z.coerce.string().regex(/^\d+$/)).min(1) })
export const ProcessDeliveryPayload = z.object({ deliveryId: z.coerce.string().regex(/^\d+$/) })

const MetaId = z.string().regex(/^\d{5,30}$/, "Meta's numeric id")

export const RegisterNumberBody = z.object({
  phoneNumberId: MetaId,
  wabaId: MetaId,
  displayPhoneNumber: z.string().trim().min(5).max(30),
  verifiedName: z.string().trim().min(1).max(200).optional(),
  accessToken: z.string().min(20).max(2000),
  app: z.discriminatedUnion('mode', [
    z.object({ mode: z.literal('platform') }),
    z.object({
      mode: z.literal('own'),
      appId: MetaId.optional(),
      appSecret: z.string().min(16).max(200),
      verifyToken: z.string().min(16).max(200),
    }),
  ]).default({ mode: 'platform' }),
})
export type RegisterNumberBody = z.infer<typeof RegisterNumberBody>

export const UpdateNumberBody = z.object({
  accessToken: z.string().min(20).max(2000).optional(),
  status: z.enum(['active', 'disabled']).optional(),
}).refine((b) => Object.keys(b).length > 0, 'nothing to update')

export const PhoneNumberView = z.object({
  id: z.uuid(),
  phoneNumberId: z.string(),
  wabaId: z.string(),
  displayPhoneNumber: z.string(),
  verifiedName: z.string().nullable(),
  /** The last quality event (FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE) Meta reported; Meta's webhooks carry no GREEN/YELLOW/RED. */
  qualityRating: z.string().nullable(),
  /** The last phone_number_quality_update event of any kind, e.g. THROUGHPUT_UPGRADE or ONBOARDING. */
  qualityEvent: z.string().nullable(),
  messagingLimit: z.string().nullable(),
  /** The business portfolio's daily limit (max_daily_conversations_per_business), e.g. TIER_2K. */
  maxDailyConversations: z.string().nullable(),
  /** HIGH once Meta reported THROUGHPUT_UPGRADE; null while only the default throughput is known. */
  throughputLevel: z.string().nullable(),
  status: z.string(),
  appMode: z.enum(['platform', 'own']),
  metaAppId: z.string().nullable(),
  tokenInvalidAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type PhoneNumberView = z.infer<typeof PhoneNumberView>

export const StatusHistoryEntry = z.object({
  status: z.string(),
  occurredAt: z.date(),
  errors: z.unknown().nullable(),
  pricing: z.unknown().nullable(),
  conversation: z.unknown().nullable(),
})

export const MessageView = z.object({
  id: z.uuid(),
  leadId: z.uuid().nullable(),
  direction: z.enum(['inbound', 'outbound']),
  wamid: z.string().nullable(),
  waId: z.string(),
  type: z.string(),
  content: z.unknown(),
  context: z.unknown().nullable(),
  referral: z.unknown().nullable(),
  errors: z.unknown().nullable(),
  status: z.string(),
  statusAt: z.date().nullable(),
  errorCode: z.number().nullable(),
  errorTitle: z.string().nullable(),
  pricing: z.unknown().nullable(),
  occurredAt: z.date(),
  statusHistory: z.array(StatusHistoryEntry).optional(),
})
export type MessageView = z.infer<typeof MessageView>

export const DeliveryView = z.object({
  id: z.string(),
  receivedAt: z.date(),
  /** The app whose secret verified it: 'platform', 'own:<app key>', or 'unbound' (older rows). */
  signedBy: z.string(),
  status: z.string(),
  attempts: z.number(),
  lastError: z.string().nullable(),
  itemCount: z.number().nullable(),
  quarantinedCount: z.number(),
  processedAt: z.date().nullable(),
})

export const QuarantinedItemView = z.object({
  id: z.string(),
  deliveryId: z.string(),
  itemKey: z.string(),
  routeKey: z.string(),
  kind: z.string(),
  reason: z.string(),
  item: z.unknown(),
  createdAt: z.date(),
  releasedAt: z.date().nullable(),
})

/** A signed delivery PostgreSQL cannot store as jsonb, kept as raw bytes (migration 0008). */
export const UnparseableDeliveryView = z.object({
  id: z.string(),
  receivedAt: z.date(),
  signedBy: z.string(),
  reason: z.string(),
  byteCount: z.number(),
  bodySha256: z.string(),
})
export const UnparseableDeliveryDetail = UnparseableDeliveryView.extend({ rawBase64: z.string() })
