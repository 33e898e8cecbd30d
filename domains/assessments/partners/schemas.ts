import { z } from 'zod'
import { ReportMeta } from '../report-meta.js'

/** Money in JSON: a decimal string with at most two decimals (numeric(14,2) in SQL), never a float. */
export const Money = z.string().regex(/^\d{1,12}(\.\d{1,2})?$/, 'a decimal amount such as "120.50"')
/** A rate in JSON: a decimal string between 0 and 1 with at most four decimals ("0.1250" = 12.5 %). */
export const Rate = z.string().regex(/^(0(\.\d{1,4})?|1(\.0{1,4})?)$/, 'a decimal rate between "0" and "1" such as "0.15"')
/** A sum of money that may be negative (a period with more refunds than sales). */
export const SignedMoney = z.string().regex(/^-?\d{1,14}(\.\d{1,2})?$/, 'a decimal amount such as "-120.50"')
export const Currency = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as "USD"')

export const PARTNER_TIERS = ['standard', 'silver', 'gold', 'platinum'] as const
export const PartnerTier = z.enum(PARTNER_TIERS)
export type PartnerTier = z.infer<typeof PartnerTier>
export const PartnerStatus = z.enum(['active', 'suspended', 'terminated'])

const PartnerCode = z.string().trim().toLowerCase().regex(/^[a-z0-9][a-z0-9_-]{1,39}$/, '2–40 of a-z, 0-9, _ and -, starting with a letter or digit')

export const CreatePartnerBody = z.object({
  code: PartnerCode,
  name: z.string().trim().min(1).max(200),
  commissionRate: Rate,
  tier: PartnerTier.default('standard'),
  currency: Currency.default('USD'),
}).strict()
export type CreatePartnerBody = z.infer<typeof CreatePartnerBody>

export const PatchPartnerBody = z.object({
  name: z.string().trim().min(1).max(200).optional(),
  commissionRate: Rate.optional(),
  tier: PartnerTier.optional(),
  status: PartnerStatus.optional(),
}).strict().refine((b) => Object.keys(b).length > 0, 'nothing to change')
export type PatchPartnerBody = z.infer<typeof PatchPartnerBody>

export const PartnerView = z.object({
  id: z.uuid(),
  code: z.string(),
  name: z.string(),
  commissionRate: Rate,
  tier: PartnerTier,
  status: PartnerStatus,
  currency: Currency,
  balance: Money,
  clawbackDue: Money,
  createdAt: z.string(),
  updatedAt: z.string(),
})
export type PartnerView = z.infer<typeof PartnerView>

export const LinkType = z.enum(['customer', 'campaign'])
export const LinkDestination = z.enum(['web', 'whatsapp'])
const LinkCode = z.string().regex(/^[A-Za-z0-9_-]{4,64}$/, '4–64 of A-Z, a-z, 0-9, _ and -')

export const CreateLinkBody = z.object({
  partnerId: z.uuid(),
  assessmentId: z.uuid(),
  /** Omitted: a random code (12 characters, unguessable). */
  linkCode: LinkCode.optional(),
  campaignName: z.string().trim().max(200).default(''),
  type: LinkType.default('customer'),
  targetAudience: z.string().trim().max(500).default(''),
  focusArea: z.string().trim().max(200).default(''),
  destination: LinkDestination.default('web'),
  phoneNumberId: z.uuid().nullable().default(null),
  active: z.boolean().default(true),
}).strict()
export type CreateLinkBody = z.infer<typeof CreateLinkBody>

export const PatchLinkBody = z.object({
  campaignName: z.string().trim().max(200).optional(),
  type: LinkType.optional(),
  targetAudience: z.string().trim().max(500).optional(),
  focusArea: z.string().trim().max(200).optional(),
  destination: LinkDestination.optional(),
  phoneNumberId: z.uuid().nullable().optional(),
  active: z.boolean().optional(),
}).strict().refine((b) => Object.keys(b).length > 0, 'nothing to change')
export type PatchLinkBody = z.infer<typeof PatchLinkBody>

export const LinkView = z.object({
  id: z.uuid(),
  partnerId: z.uuid(),
  assessmentId: z.uuid(),
  linkCode: z.string(),
  campaignName: z.string(),
  type: LinkType,
  targetAudience: z.string(),
  focusArea: z.string(),
  destination: LinkDestination,
  phoneNumberId: z.uuid().nullable(),
  active: z.boolean(),
  /** The public URL visitors open (PUBLIC_WEBHOOKS_URL + /l/<code>). */
  url: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
})
export type LinkView = z.infer<typeof LinkView>

export const CreateProductBody = z.object({
  sku: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/),
  title: z.string().trim().min(1).max(200),
  price: Money,
  currency: Currency,
  commissionRate: Rate.nullable().default(null),
  active: z.boolean().default(true),
}).strict()
export type CreateProductBody = z.infer<typeof CreateProductBody>

export const PatchProductBody = z.object({
  title: z.string().trim().min(1).max(200).optional(),
  price: Money.optional(),
  commissionRate: Rate.nullable().optional(),
  active: z.boolean().optional(),
}).strict().refine((b) => Object.keys(b).length > 0, 'nothing to change')
export type PatchProductBody = z.infer<typeof PatchProductBody>

export const ProductView = z.object({
  id: z.uuid(), sku: z.string(), title: z.string(), price: Money, currency: Currency, commissionRate: Rate.nullable(), active: z.boolean(),
  createdAt: z.string(), updatedAt: z.string(),
})
export type ProductView = z.infer<typeof ProductView>

/** Who bought, as far as the shop knows: any of these finds the attribution (session, then lead, then visitor, then code). */
export const PurchaseSubject = z.object({
  sessionId: z.uuid().optional(),
  leadId: z.uuid().optional(),
  visitorId: z.string().min(1).max(64).optional(),
  /** The partner link the shop's checkout carried (e.g. a ?ref= it kept): a last touch when nothing else is known. */
  linkCode: LinkCode.optional(),
}).strict()

export const RecordPurchaseBody = z.object({
  /** The shop's transaction id: recording it again returns the same purchase and commission. */
  transactionId: z.string().min(1).max(200),
  sku: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/),
  quantity: z.number().int().min(1).max(10_000).default(1),
  /** Defaults to the product's price × quantity. */
  amount: Money.optional(),
  currency: Currency.optional(),
  purchasedAt: z.iso.datetime({ offset: true }).optional(),
  customer: PurchaseSubject.default({}),
}).strict()
export type RecordPurchaseBody = z.infer<typeof RecordPurchaseBody>

/** The shop's webhook: a purchase, or the refund of one recorded earlier. */
export const ShopWebhookBody = z.discriminatedUnion('type', [
  z.object({ type: z.literal('purchase.completed'), data: RecordPurchaseBody }),
  z.object({ type: z.literal('purchase.refunded'), data: z.object({ transactionId: z.string().min(1).max(200), refundedAt: z.iso.datetime({ offset: true }).optional() }).strict() }),
])
export type ShopWebhookBody = z.infer<typeof ShopWebhookBody>

export const CommissionStatus = z.enum(['pending', 'approved', 'paid', 'rejected', 'reversed'])
export const CommissionView = z.object({
  id: z.uuid(),
  purchaseId: z.uuid(),
  partnerId: z.uuid(),
  baseAmount: Money,
  baseRate: Rate,
  rateSource: z.enum(['product', 'partner']),
  tier: PartnerTier,
  tierMultiplier: z.string(),
  rate: Rate,
  amount: Money,
  currency: Currency,
  status: CommissionStatus,
  decidedBy: z.string().nullable(),
  reason: z.string().nullable(),
  approvedAt: z.string().nullable(),
  paidAt: z.string().nullable(),
  rejectedAt: z.string().nullable(),
  reversedAt: z.string().nullable(),
  createdAt: z.string(),
})
export type CommissionView = z.infer<typeof CommissionView>

export const PurchaseView = z.object({
  id: z.uuid(),
  transactionId: z.string(),
  source: z.enum(['api', 'webhook']),
  productId: z.uuid(),
  quantity: z.number().int(),
  amount: Money,
  currency: Currency,
  leadId: z.uuid().nullable(),
  sessionId: z.uuid().nullable(),
  partnerId: z.uuid().nullable(),
  linkId: z.uuid().nullable(),
  firstPartnerId: z.uuid().nullable(),
  firstLinkId: z.uuid().nullable(),
  status: z.enum(['completed', 'refunded']),
  purchasedAt: z.string(),
  refundedAt: z.string().nullable(),
  commission: CommissionView.nullable(),
})
export type PurchaseView = z.infer<typeof PurchaseView>

export const DecisionBody = z.object({ reason: z.string().trim().max(500).optional() }).strict()

export const WithdrawalStatus = z.enum(['requested', 'approved', 'completed', 'rejected'])
export const RequestWithdrawalBody = z.object({ amount: Money.refine((v) => Number(v) > 0, 'more than zero') }).strict()
export const CompleteWithdrawalBody = z.object({ reference: z.string().trim().min(1).max(200) }).strict()
export const WithdrawalView = z.object({
  id: z.uuid(),
  partnerId: z.uuid(),
  amount: Money,
  currency: Currency,
  status: WithdrawalStatus,
  requestedBy: z.string(),
  decidedBy: z.string().nullable(),
  reference: z.string().nullable(),
  reason: z.string().nullable(),
  requestedAt: z.string(),
  approvedAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  rejectedAt: z.string().nullable(),
})
export type WithdrawalView = z.infer<typeof WithdrawalView>

export const LedgerEntryView = z.object({
  id: z.string(),
  kind: z.enum(['commission_approved', 'commission_reversed', 'clawback', 'withdrawal_requested', 'withdrawal_released']),
  amount: z.string(),
  balanceAfter: Money,
  currency: Currency,
  commissionId: z.uuid().nullable(),
  withdrawalId: z.uuid().nullable(),
  actor: z.string(),
  createdAt: z.string(),
})
export type LedgerEntryView = z.infer<typeof LedgerEntryView>

export const ReportCounts = z.object({
  clicks: z.number().int(),
  uniqueVisitors: z.number().int(),
  inactiveClicks: z.number().int(),
  starts: z.number().int(),
  completions: z.number().int(),
  /** Net of refunds in the period: a period can have more refunds than sales. */
  conversions: z.number().int(),
  revenue: SignedMoney,
  /** Amounts that entered each status in the period (created: pending, at the purchase's time). */
  commissions: z.object({ created: SignedMoney, approved: SignedMoney, paid: SignedMoney, rejected: SignedMoney, reversed: SignedMoney }),
})
export const PartnerReport = z.object({
  partnerId: z.uuid(),
  currency: Currency,
  from: z.string(),
  to: z.string(),
  totals: ReportCounts,
  links: z.array(ReportCounts.extend({ linkId: z.uuid(), linkCode: z.string() })),
  meta: ReportMeta,
})
export type PartnerReport = z.infer<typeof PartnerReport>
export const ReportQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
})

export const ShopEndpointView = z.object({
  url: z.string(),
  publicKey: z.string(),
  /** Shown once, when created or rotated. */
  secret: z.string().optional(),
  rotatedAt: z.string(),
})

export const CreatePartnerKeyBody = z.object({ label: z.string().trim().min(1).max(100) }).strict()
export const PartnerKeyView = z.object({
  id: z.uuid(), partnerId: z.uuid(), label: z.string(), prefix: z.string(), createdBy: z.string(), createdAt: z.string(),
  lastUsedAt: z.string().nullable(), revokedAt: z.string().nullable(),
  /** Shown once, when created. */
  key: z.string().optional(),
})
export const PartnerClickView = z.object({
  id: z.string(), linkId: z.uuid(), linkCode: z.string(), outcome: z.enum(['web', 'whatsapp', 'inactive']), isBot: z.boolean(), clickedAt: z.string(),
})

/** assessments__prune_click_details takes no parameters (a cron task). */
export const PruneClickDetailsPayload = z.object({}).loose()
