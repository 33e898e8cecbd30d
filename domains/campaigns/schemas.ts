import { Decimal } from 'decimal.js'
import { z } from 'zod'

/** Statuses of a campaign, in lifecycle order (lifecycle.ts says which moves are allowed). */
export const CampaignStatus = z.enum(['draft', 'scheduled', 'active', 'paused', 'completed', 'archived'])
export type CampaignStatus = z.infer<typeof CampaignStatus>
export const CampaignType = z.enum(['lead_generation', 'sales', 'awareness', 'traffic', 'engagement', 'app_installs', 'whatsapp'])
export const Platform = z.enum(['meta', 'google', 'tiktok', 'linkedin', 'x', 'pinterest', 'snapchat', 'youtube', 'whatsapp'])
export type Platform = z.infer<typeof Platform>

/** Size limits of the JSON a tenant stores (bytes of its JSON text). */
export const CONFIG_MAX_BYTES = 64 * 1024
export const DRAFT_MAX_BYTES = 256 * 1024
export const ELEMENTS_MAX_BYTES = 256 * 1024
/** Drafts expire this long after their last save. */
export const DRAFT_TTL_DAYS = 7

const jsonBytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v ?? null))
export const withinBytes = <T extends z.ZodType>(schema: T, max: number, what: string) =>
  schema.refine((v) => jsonBytes(v) <= max, { message: `${what} is larger than ${max / 1024} KiB of JSON` })

/** ISO 4217 codes the runtime knows (Intl's list: active codes, as ICU ships them). */
const CURRENCIES = new Set(Intl.supportedValuesOf('currency'))
export const isCurrency = (code: string) => CURRENCIES.has(code)
export const Currency = z.string().length(3, 'an ISO 4217 code: three letters').transform((c) => c.toUpperCase())
  .refine(isCurrency, { message: 'not an ISO 4217 currency code' })

/**
 * Money in, as a decimal string ("1500.00") or a JSON number with at most two decimals, never negative; out as a
 * string with two decimals. Checked with decimal.js: a float never touches the amount.
 */
export const Money = z.union([z.string().max(32), z.number()]).transform((v, ctx) => {
  const text = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'NaN') : v.trim()
  if (!/^\d+(\.\d+)?$/.test(text) && !/^-\d+(\.\d+)?$/.test(text) && !/^\d+(\.\d+)?e[+-]?\d+$/i.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'a decimal amount such as "1500.00"' })
    return z.NEVER
  }
  const d = new Decimal(text)
  if (d.isNegative()) ctx.addIssue({ code: 'custom', message: 'an amount cannot be negative' })
  else if (d.decimalPlaces() > 2) ctx.addIssue({ code: 'custom', message: 'at most two decimal places' })
  else if (d.greaterThanOrEqualTo('1e12')) ctx.addIssue({ code: 'custom', message: 'at most 999999999999.99' })
  return d.toFixed(2)
})

const ShortText = (max = 200) => z.string().trim().min(1).max(max)
const Url = z.url({ protocol: /^https?$/ }).max(2048)
const Instant = z.iso.datetime({ offset: true }).transform((s) => new Date(s))

export const Utm = z.strictObject({
  source: z.string().max(200).optional(),
  medium: z.string().max(200).optional(),
  campaign: z.string().max(200).optional(),
  term: z.string().max(200).optional(),
  content: z.string().max(200).optional(),
})
export type Utm = z.infer<typeof Utm>

// ---------------------------------------------------------------------------------------------------------------
// A campaign's configuration: what the builder's steps collect.

const Audience = z.strictObject({
  locations: z.array(z.string().min(1).max(100)).max(500).optional(),
  ageMin: z.number().int().min(13).max(65).optional(),
  ageMax: z.number().int().min(13).max(65).optional(),
  genders: z.array(z.enum(['all', 'female', 'male'])).max(3).optional(),
  languages: z.array(z.string().min(2).max(35)).max(50).optional(),
  interests: z.array(z.string().min(1).max(200)).max(500).optional(),
  customAudienceIds: z.array(z.string().min(1).max(200)).max(100).optional(),
  description: z.string().max(5000).optional(),
}).refine((a) => a.ageMin === undefined || a.ageMax === undefined || a.ageMin <= a.ageMax, { message: 'ageMin must not exceed ageMax', path: ['ageMax'] })

const PlatformConfig = z.strictObject({
  platform: Platform,
  placements: z.array(z.string().min(1).max(100)).max(50).optional(),
  objective: z.string().max(100).optional(),
  integrationId: z.uuid().optional(),
  dailyBudget: Money.optional(),
})

const CreativeConfig = z.strictObject({
  creativeIds: z.array(z.uuid()).max(50).optional(),
  headline: z.string().max(255).optional(),
  primaryText: z.string().max(5000).optional(),
  description: z.string().max(2000).optional(),
  callToAction: z.string().max(60).optional(),
  landingUrl: Url.optional(),
})

const PublishConfig = z.strictObject({
  mode: z.enum(['manual', 'immediate', 'scheduled']).default('manual'),
  publishAt: z.iso.datetime({ offset: true }).optional(),
  timezone: z.string().max(64).refine((tz) => { try { new Intl.DateTimeFormat('en', { timeZone: tz }); return true } catch { return false } }, 'not an IANA time zone').optional(),
  autoPauseOnBudget: z.boolean().optional(),
}).refine((p) => p.mode !== 'scheduled' || p.publishAt !== undefined, { message: 'a scheduled publish needs publishAt', path: ['publishAt'] })

export const CampaignConfig = withinBytes(z.strictObject({
  audience: Audience.optional(),
  platforms: z.array(PlatformConfig).max(20).refine((ps) => new Set(ps.map((p) => p.platform)).size === ps.length, 'a platform appears twice').optional(),
  creative: CreativeConfig.optional(),
  publish: PublishConfig.optional(),
}), CONFIG_MAX_BYTES, 'config')
export type CampaignConfig = z.infer<typeof CampaignConfig>

const UtmCampaign = z.string().trim().min(1).max(200).regex(/^[^\s]+$/, 'no spaces (it is matched against utm_campaign as sent)')

/** The fields of a campaign a client writes (POST creates with them; PATCH, drafts and rollbacks apply some). */
const campaignFields = {
  name: ShortText(),
  type: CampaignType,
  description: z.string().max(5000),
  budget: Money.nullable(),
  currency: Currency.nullable(),
  startsAt: Instant.nullable(),
  endsAt: Instant.nullable(),
  productId: z.uuid().nullable(),
  utmCampaign: UtmCampaign.nullable(),
  config: CampaignConfig,
}
const datesInOrder = (c: { startsAt?: Date | null; endsAt?: Date | null }) => !c.startsAt || !c.endsAt || c.endsAt >= c.startsAt

export const CreateCampaignBody = z.strictObject({
  ...campaignFields,
  type: CampaignType.default('lead_generation'),
  description: campaignFields.description.default(''),
  budget: campaignFields.budget.default(null),
  currency: campaignFields.currency.default(null),
  startsAt: campaignFields.startsAt.default(null),
  endsAt: campaignFields.endsAt.default(null),
  productId: campaignFields.productId.default(null),
  utmCampaign: campaignFields.utmCampaign.default(null),
  config: CampaignConfig.default({}),
})
  .refine(datesInOrder, { message: 'endsAt must not be before startsAt', path: ['endsAt'] })
  .refine((c) => c.budget === null || c.currency !== null, { message: 'a budget needs its currency', path: ['currency'] })
export type CreateCampaignBody = z.infer<typeof CreateCampaignBody>

/** Only the fields given change. `version` (or If-Match) makes the change conditional on the version the client saw. */
export const CampaignPatch = z.strictObject({
  name: campaignFields.name.optional(),
  type: campaignFields.type.optional(),
  description: campaignFields.description.optional(),
  budget: campaignFields.budget.optional(),
  currency: campaignFields.currency.optional(),
  startsAt: campaignFields.startsAt.optional(),
  endsAt: campaignFields.endsAt.optional(),
  productId: campaignFields.productId.optional(),
  utmCampaign: campaignFields.utmCampaign.optional(),
  config: campaignFields.config.optional(),
}).refine(datesInOrder, { message: 'endsAt must not be before startsAt', path: ['endsAt'] })
export type CampaignPatch = z.infer<typeof CampaignPatch>
export const PatchCampaignBody = z.strictObject({ ...CampaignPatch.shape, version: z.number().int().min(1).optional() })
  .refine(datesInOrder, { message: 'endsAt must not be before startsAt', path: ['endsAt'] })
export type PatchCampaignBody = z.infer<typeof PatchCampaignBody>

export const StatusChangeBody = z.strictObject({ status: CampaignStatus, version: z.number().int().min(1).optional() })
export const VersionBody = z.strictObject({ version: z.number().int().min(1).optional() })

export const CampaignView = z.object({
  id: z.uuid(),
  name: z.string(),
  type: CampaignType,
  status: CampaignStatus,
  description: z.string(),
  budget: z.string().nullable(),
  currency: z.string().nullable(),
  startsAt: z.date().nullable(),
  endsAt: z.date().nullable(),
  productId: z.uuid().nullable(),
  utmCampaign: z.string().nullable(),
  config: z.record(z.string(), z.unknown()),
  version: z.number().int(),
  deletedAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
  statusChangedAt: z.date(),
})
export type CampaignView = z.infer<typeof CampaignView>

/** What a snapshot keeps and a rollback restores: the editable fields (not the status, which moves by the lifecycle only). */
export const SNAPSHOT_FIELDS = ['name', 'type', 'description', 'budget', 'currency', 'startsAt', 'endsAt', 'productId', 'utmCampaign', 'config'] as const
export type CampaignState = Pick<CampaignView, (typeof SNAPSHOT_FIELDS)[number]>

export const CreateSnapshotBody = z.strictObject({ label: ShortText() })
export const SnapshotView = z.object({
  id: z.uuid(), campaignId: z.uuid(), label: z.string(), version: z.number().int(), state: z.record(z.string(), z.unknown()),
  createdBy: z.string(), createdAt: z.date(),
})
export type SnapshotView = z.infer<typeof SnapshotView>
/** RFC 6902 operations, as fast-json-patch's compare produces them. */
export const JsonPatchOp = z.object({ op: z.enum(['add', 'remove', 'replace', 'move', 'copy', 'test']), path: z.string(), value: z.unknown().optional(), from: z.string().optional() })

// ---------------------------------------------------------------------------------------------------------------
// Drafts.

export const SaveDraftBody = z.strictObject({
  step: z.union([z.string().max(100), z.number().int().min(0).max(1000).transform(String)]).optional(),
  data: withinBytes(z.record(z.string().max(200), z.unknown()), DRAFT_MAX_BYTES, 'draft data'),
  /** The campaign version the builder opened; defaults to the campaign's version at the first save. */
  baseVersion: z.number().int().min(1).optional(),
})
export type SaveDraftBody = z.infer<typeof SaveDraftBody>
export const DraftView = z.object({
  campaignId: z.uuid(), step: z.string().nullable(), data: z.record(z.string(), z.unknown()), baseVersion: z.number().int(),
  saves: z.number().int(), savedAt: z.date(), expiresAt: z.date(),
})
export type DraftView = z.infer<typeof DraftView>
/** What publishing a draft applies: its data, read as campaign fields (the builder's other step data stays out). */
export const DraftCampaignFields = CampaignPatch

// ---------------------------------------------------------------------------------------------------------------
// Products.

export const CreateProductBody = z.strictObject({
  name: ShortText(),
  sku: z.string().trim().min(1).max(64).nullable().default(null),
  description: z.string().max(5000).default(''),
  price: Money.nullable().default(null),
  currency: Currency.nullable().default(null),
  url: Url.nullable().default(null),
  utm: Utm.default({}),
}).refine((p) => p.price === null || p.currency !== null, { message: 'a price needs its currency', path: ['currency'] })
export type CreateProductBody = z.infer<typeof CreateProductBody>
export const PatchProductBody = z.strictObject({
  name: ShortText().optional(), sku: z.string().trim().min(1).max(64).nullable().optional(), description: z.string().max(5000).optional(),
  price: Money.nullable().optional(), currency: Currency.nullable().optional(), url: Url.nullable().optional(), utm: Utm.optional(),
})
export type PatchProductBody = z.infer<typeof PatchProductBody>

export const AddImageBody = z.strictObject({
  url: Url,
  alt: z.string().max(500).default(''),
  kind: z.enum(['image', 'background']).default('image'),
  /** For a background version: the image it was made from (of the same product). */
  parentImageId: z.uuid().nullable().default(null),
  primary: z.boolean().default(false),
  position: z.number().int().min(0).max(10000).default(0),
  width: z.number().int().min(1).max(20000).nullable().default(null),
  height: z.number().int().min(1).max(20000).nullable().default(null),
}).refine((i) => !(i.primary && i.kind === 'background'), { message: 'a background version cannot be the primary image', path: ['primary'] })
  .refine((i) => i.parentImageId === null || i.kind === 'background', { message: 'only a background version names a parent image', path: ['parentImageId'] })
export type AddImageBody = z.infer<typeof AddImageBody>

export const ProductImageView = z.object({
  id: z.uuid(), productId: z.uuid(), kind: z.enum(['image', 'background']), parentImageId: z.uuid().nullable(), url: z.string(), alt: z.string(),
  isPrimary: z.boolean(), position: z.number().int(), width: z.number().int().nullable(), height: z.number().int().nullable(), createdAt: z.date(),
})
export type ProductImageView = z.infer<typeof ProductImageView>
export const ProductView = z.object({
  id: z.uuid(), name: z.string(), sku: z.string().nullable(), description: z.string(), price: z.string().nullable(), currency: z.string().nullable(),
  url: z.string().nullable(), utm: Utm, deletedAt: z.date().nullable(), createdAt: z.date(), updatedAt: z.date(),
})
export type ProductView = z.infer<typeof ProductView>

// ---------------------------------------------------------------------------------------------------------------
// Creatives.

const Element = z.object({
  type: z.enum(['text', 'image', 'shape', 'logo', 'button', 'video', 'background']),
  id: z.string().max(100).optional(),
  x: z.number().min(-10000).max(10000),
  y: z.number().min(-10000).max(10000),
  width: z.number().min(0).max(10000),
  height: z.number().min(0).max(10000),
  rotation: z.number().min(-360).max(360).optional(),
  zIndex: z.number().int().min(-1000).max(1000).optional(),
  text: z.string().max(5000).optional(),
  assetId: z.uuid().optional(),
  src: Url.optional(),
  style: z.record(z.string().max(60), z.union([z.string().max(500), z.number(), z.boolean()])).optional(),
}).strict()
export const Elements = withinBytes(z.array(Element).max(500), ELEMENTS_MAX_BYTES, 'elements')
export const CreativeFormat = z.enum(['image', 'video', 'carousel', 'story', 'text'])

export const CreateCreativeBody = z.strictObject({
  campaignId: z.uuid().nullable().default(null),
  title: ShortText(),
  format: CreativeFormat,
  width: z.number().int().min(1).max(10000),
  height: z.number().int().min(1).max(10000),
  elements: Elements.default([]),
})
export type CreateCreativeBody = z.infer<typeof CreateCreativeBody>
export const PatchCreativeBody = z.strictObject({
  campaignId: z.uuid().nullable().optional(),
  title: ShortText().optional(),
  format: CreativeFormat.optional(),
  width: z.number().int().min(1).max(10000).optional(),
  height: z.number().int().min(1).max(10000).optional(),
  elements: Elements.optional(),
  version: z.number().int().min(1).optional(),
})
export type PatchCreativeBody = z.infer<typeof PatchCreativeBody>
export const CreativeView = z.object({
  id: z.uuid(), campaignId: z.uuid().nullable(), title: z.string(), format: CreativeFormat, width: z.number().int(), height: z.number().int(),
  elements: z.array(z.unknown()), version: z.number().int(), deletedAt: z.date().nullable(), createdAt: z.date(), updatedAt: z.date(),
})
export type CreativeView = z.infer<typeof CreativeView>
export const CreativeVersionView = z.object({
  version: z.number().int(), title: z.string(), format: CreativeFormat, width: z.number().int(), height: z.number().int(), elements: z.array(z.unknown()),
  createdBy: z.string(), createdAt: z.date(),
})
export type CreativeVersionView = z.infer<typeof CreativeVersionView>
export const AddAssetBody = z.strictObject({
  kind: z.enum(['image', 'video', 'logo', 'font', 'audio']),
  url: Url,
  mimeType: z.string().max(100).regex(/^[a-z]+\/[a-z0-9.+-]+$/i, 'a MIME type such as image/png').nullable().default(null),
  bytes: z.number().int().min(0).max(5e9).nullable().default(null),
  width: z.number().int().min(1).max(20000).nullable().default(null),
  height: z.number().int().min(1).max(20000).nullable().default(null),
  checksum: z.string().max(128).nullable().default(null),
})
export type AddAssetBody = z.infer<typeof AddAssetBody>
export const AssetView = z.object({
  id: z.uuid(), creativeId: z.uuid(), kind: z.string(), url: z.string(), mimeType: z.string().nullable(), bytes: z.coerce.number().nullable(),
  width: z.number().int().nullable(), height: z.number().int().nullable(), checksum: z.string().nullable(), createdAt: z.date(),
})
export type AssetView = z.infer<typeof AssetView>

// ---------------------------------------------------------------------------------------------------------------
// Platform integrations, publications, AI generations.

const Token = z.string().min(8).max(4096)
export const ConnectIntegrationBody = z.strictObject({
  platform: Platform,
  accountId: z.string().trim().min(1).max(200),
  label: z.string().max(200).default(''),
  accessToken: Token,
  refreshToken: Token.nullable().default(null),
  tokenExpiresAt: Instant.nullable().default(null),
  scopes: z.array(z.string().min(1).max(200)).max(100).default([]),
})
export type ConnectIntegrationBody = z.infer<typeof ConnectIntegrationBody>
export const PatchIntegrationBody = z.strictObject({
  label: z.string().max(200).optional(),
  accessToken: Token.optional(),
  refreshToken: Token.nullable().optional(),
  tokenExpiresAt: Instant.nullable().optional(),
  scopes: z.array(z.string().min(1).max(200)).max(100).optional(),
  status: z.enum(['active', 'error']).optional(),
  lastError: z.string().max(1000).nullable().optional(),
})
export type PatchIntegrationBody = z.infer<typeof PatchIntegrationBody>
/** Never the tokens: only whether there are any. */
export const IntegrationView = z.object({
  id: z.uuid(), platform: Platform, accountId: z.string(), label: z.string(), hasAccessToken: z.boolean(), hasRefreshToken: z.boolean(),
  tokenExpiresAt: z.date().nullable(), scopes: z.array(z.string()), status: z.enum(['active', 'error', 'disconnected']), lastError: z.string().nullable(),
  createdAt: z.date(), updatedAt: z.date(),
})
export type IntegrationView = z.infer<typeof IntegrationView>

const Count = z.number().int().min(0).max(1e13)
export const PublicationMetrics = z.strictObject({
  impressions: Count.optional(),
  reach: Count.optional(),
  clicks: Count.optional(),
  leads: Count.optional(),
  conversions: Count.optional(),
  spend: Money.optional(),
  currency: Currency.optional(),
}).refine((m) => m.spend === undefined || m.currency !== undefined, { message: 'spend needs its currency', path: ['currency'] })
export const PublicationStatus = z.enum(['pending', 'publishing', 'published', 'paused', 'failed', 'removed'])
export const UpsertPublicationBody = z.strictObject({
  integrationId: z.uuid().nullable().optional(),
  externalId: z.string().trim().min(1).max(200).nullable().optional(),
  status: PublicationStatus,
  metrics: PublicationMetrics.optional(),
  /** When the platform's numbers were read; now when metrics are given without it. */
  syncedAt: Instant.optional(),
  lastError: z.string().max(1000).nullable().optional(),
})
export type UpsertPublicationBody = z.infer<typeof UpsertPublicationBody>
export const PublicationView = z.object({
  id: z.uuid(), campaignId: z.uuid(), platform: Platform, integrationId: z.uuid().nullable(), externalId: z.string().nullable(), status: PublicationStatus,
  metrics: z.record(z.string(), z.unknown()), lastSyncedAt: z.date().nullable(), lastError: z.string().nullable(), createdAt: z.date(), updatedAt: z.date(),
})
export type PublicationView = z.infer<typeof PublicationView>

export const AiGenerationType = z.enum(['copy', 'headline', 'image', 'background', 'audience', 'media_plan', 'other'])
const Cost = z.union([z.string().max(32), z.number()]).transform((v, ctx) => {
  const text = String(v).trim()
  if (!/^\d+(\.\d+)?$/.test(text)) { ctx.addIssue({ code: 'custom', message: 'a non-negative decimal amount such as "0.0042"' }); return z.NEVER }
  const d = new Decimal(text)
  if (d.decimalPlaces() > 6) ctx.addIssue({ code: 'custom', message: 'at most six decimal places' })
  if (d.greaterThanOrEqualTo('1e8')) ctx.addIssue({ code: 'custom', message: 'too large' })
  return d.toFixed(6)
})
export const RecordAiGenerationBody = z.strictObject({
  type: AiGenerationType,
  prompt: z.string().min(1).max(20000),
  service: z.string().trim().min(1).max(100),
  model: z.string().max(100).nullable().default(null),
  status: z.enum(['succeeded', 'failed']).default('succeeded'),
  output: withinBytes(z.unknown(), CONFIG_MAX_BYTES, 'output').nullable().default(null),
  error: z.string().max(1000).nullable().default(null),
  cost: Cost.nullable().default(null),
  costCurrency: Currency.default('USD'),
  inputTokens: z.number().int().min(0).max(1e9).nullable().default(null),
  outputTokens: z.number().int().min(0).max(1e9).nullable().default(null),
  startedAt: Instant,
  completedAt: Instant,
  campaignId: z.uuid().nullable().default(null),
  creativeId: z.uuid().nullable().default(null),
}).refine((g) => g.completedAt >= g.startedAt, { message: 'completedAt must not be before startedAt', path: ['completedAt'] })
export type RecordAiGenerationBody = z.infer<typeof RecordAiGenerationBody>
export const AiGenerationView = z.object({
  id: z.uuid(), type: AiGenerationType, prompt: z.string(), service: z.string(), model: z.string().nullable(), status: z.enum(['succeeded', 'failed']),
  output: z.unknown().nullable(), error: z.string().nullable(), cost: z.string().nullable(), costCurrency: z.string(), inputTokens: z.number().int().nullable(),
  outputTokens: z.number().int().nullable(), startedAt: z.date(), completedAt: z.date(), durationMs: z.number().int(), campaignId: z.uuid().nullable(),
  creativeId: z.uuid().nullable(), createdBy: z.string(), createdAt: z.date(),
})
export type AiGenerationView = z.infer<typeof AiGenerationView>

/** The cron task's payload (none needed; old shapes tolerated). */
export const ExpireDraftsPayload = z.object({}).loose()
