import { z } from 'zod'

export const DISPATCH_BROADCAST_TASK = 'campaigns__dispatch_broadcast'

/** Job payload. Old jobs may carry old shapes: the task parses its payload first. */
export const DispatchBroadcastPayload = z.object({ tenantId: z.uuid(), broadcastId: z.uuid() })

export const BroadcastStatus = z.enum(['draft', 'scheduled', 'sending', 'paused', 'completed', 'stopped', 'failed'])
export type BroadcastStatus = z.infer<typeof BroadcastStatus>

// ---------------------------------------------------------------------------------------------------------
// Audience.

const Day = z.iso.date().or(z.iso.datetime({ offset: true }))
/** Custom field keys as the lead API writes them (marketing.leads.fields). */
const FieldKey = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'field keys are letters, digits, _ . -')

export const LeadFilter = z.strictObject({
  tags: z.array(z.string().min(1).max(64)).max(20).optional(),
  /** `all` (default): a lead carries every tag; `any`: at least one. */
  tagMatch: z.enum(['all', 'any']).default('all'),
  status: z.array(z.enum(['new', 'contacted', 'qualified', 'converted', 'lost'])).min(1).max(5).optional(),
  source: z.array(z.string().min(1).max(64)).min(1).max(20).optional(),
  /** created_at >= createdFrom and < createdTo (dates are UTC midnights; give an offset for another zone). */
  createdFrom: Day.optional(),
  createdTo: Day.optional(),
  /** Custom fields that must equal these values (marketing.leads.fields @> this object). */
  fields: z.record(FieldKey, z.union([z.string().max(500), z.number(), z.boolean()])).refine((f) => Object.keys(f).length <= 20, 'at most 20 fields').optional(),
})
export type LeadFilter = z.infer<typeof LeadFilter>

export const MAX_LIST_ENTRIES = 100_000

export const AudienceInput = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('filter'), filter: LeadFilter }),
  z.strictObject({
    type: z.literal('list'),
    /** Phones as people type them; normalised to E.164 with the tenant's default country. */
    phones: z.array(z.string().max(64)).max(MAX_LIST_ENTRIES).optional(),
    leadIds: z.array(z.uuid()).max(MAX_LIST_ENTRIES).optional(),
  }).refine((a) => (a.phones?.length ?? 0) + (a.leadIds?.length ?? 0) > 0, 'give phones or leadIds'),
])
export type AudienceInput = z.infer<typeof AudienceInput>

/** What is stored: a filter, or the list resolved to lead ids (phones are not kept). */
export type StoredAudience = { type: 'filter'; filter: LeadFilter } | { type: 'list'; leadIds: string[]; unknownPhones: number; invalidPhones: number }

// ---------------------------------------------------------------------------------------------------------
// Template parameters: where each value comes from.

/** Lead fields a parameter may read; `fields.<key>` reads a custom field. */
export const LEAD_FIELDS = ['name', 'first_name', 'profile_name', 'company', 'email', 'phone', 'source', 'status'] as const

export const ParameterSource = z.union([
  z.strictObject({
    field: z.union([z.enum(LEAD_FIELDS), z.string().regex(/^fields\.[A-Za-z0-9_.-]{1,64}$/, 'a lead field or fields.<key>')]),
    /** Used when the lead has no value; without one, the recipient is refused (missing_parameter). */
    fallback: z.string().min(1).max(1024).optional(),
  }),
  z.strictObject({ value: z.string().min(1).max(1024) }),
])
export type ParameterSource = z.infer<typeof ParameterSource>

export const ParameterMapping = z.strictObject({
  /** The text header's variable. */
  header: ParameterSource.optional(),
  /** One per body variable, in order ({{1}}, {{2}}, …). */
  body: z.array(ParameterSource).max(20).default([]),
  /** Dynamic URL and copy-code buttons, by the button's index. */
  buttons: z.array(z.strictObject({ index: z.number().int().min(0).max(9), subType: z.enum(['url', 'copy_code']), source: ParameterSource })).max(10).default([]),
})
export type ParameterMapping = z.infer<typeof ParameterMapping>

// ---------------------------------------------------------------------------------------------------------
// API bodies.

/** A local date-time in the tenant's timezone (`2026-12-05T09:00`), or an instant with its offset. */
/** An experiment's key, as POST /v1/messages takes it. */
const ExperimentKey = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'an experiment key').max(100)

export const ScheduleAt = z.union([
  z.iso.datetime({ offset: true }),
  z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/, 'a local date-time like 2026-12-05T09:00 (tenant timezone) or an ISO instant'),
])

export const CreateBroadcastBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  campaignId: z.uuid().optional(),
  /** Our id of the number to send from; defaults to the tenant's only active number. */
  phoneNumberId: z.uuid().optional(),
  template: z.strictObject({
    name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'template names are lowercase letters, digits and underscores'),
    language: z.string().regex(/^[a-z]{2,3}(_[A-Za-z]{2,4})?$/, 'a language code like en or pt_BR'),
  }),
  parameters: ParameterMapping.default({ body: [], buttons: [] }),
  /**
   * An experiment (its key) whose variations are templates: each recipient gets their variation's `value.template`
   * (`name`, `language`; the parameters are this broadcast's), a variation without one and a lead the experiment does
   * not take get `template`. The exposure is recorded when Meta reports the message delivered.
   */
  experiment: ExperimentKey.optional(),
  audience: AudienceInput,
  failureThreshold: z.number().gt(0).max(1).optional(),
  failureMinSample: z.number().int().min(1).max(100_000).optional(),
})
export type CreateBroadcastBody = z.infer<typeof CreateBroadcastBody>

// Every field optional and without defaults: what is left out stays as it is.
export const UpdateBroadcastBody = CreateBroadcastBody.partial().extend({
  parameters: ParameterMapping.optional(),
  /** null: the broadcast no longer names an experiment. */
  experiment: ExperimentKey.nullable().optional(),
  version: z.number().int().min(1).optional(),
})
export type UpdateBroadcastBody = z.infer<typeof UpdateBroadcastBody>

export const ScheduleBroadcastBody = z.strictObject({ scheduledAt: ScheduleAt })
export const BroadcastParams = z.object({ broadcastId: z.uuid() })

export const ListBroadcastsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
  status: BroadcastStatus.optional(),
  campaignId: z.uuid().optional(),
})

export const RecipientStatus = z.enum(['pending', 'queued', 'sent', 'delivered', 'read', 'replied', 'failed', 'skipped'])
export type RecipientStatus = z.infer<typeof RecipientStatus>

export const ListRecipientsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  /** The last id of the previous page. */
  after: z.coerce.number().int().min(0).optional(),
  status: RecipientStatus.optional(),
})

// ---------------------------------------------------------------------------------------------------------
// Views.

/** What became of the messages, counted the same way for the whole broadcast and per variation. */
const messageCounts = {
  queued: z.number(),
  sent: z.number(),
  delivered: z.number(),
  read: z.number(),
  replied: z.number(),
  failed: z.number(),
}

export const BroadcastStats = z.object({
  recipients: z.number(),
  pending: z.number(),
  ...messageCounts,
  skipped: z.number(),
  skippedBy: z.record(z.string(), z.number()),
  failedBy: z.record(z.string(), z.number()),
  /**
   * When the broadcast names an experiment: the recipients dispatched so far, per variation they were sent
   * (`variationKey` null: the experiment did not take the lead, and the broadcast's own template went).
   */
  variations: z.array(z.object({
    variationKey: z.string().nullable(),
    dispatched: z.number(),
    ...messageCounts,
  })).optional(),
})
export type BroadcastStats = z.infer<typeof BroadcastStats>

export const BroadcastView = z.object({
  id: z.uuid(),
  name: z.string(),
  campaignId: z.uuid().nullable(),
  status: BroadcastStatus,
  statusReason: z.string().nullable(),
  statusDetail: z.string().nullable(),
  /** What may come next from here. */
  allowedTransitions: z.array(z.string()),
  phoneNumberId: z.uuid().nullable(),
  template: z.object({ id: z.uuid().nullable(), name: z.string(), language: z.string() }),
  /** The experiment whose variations pick each recipient's template (null: none, or it was deleted). */
  experiment: z.object({ id: z.uuid(), key: z.string() }).nullable(),
  audience: z.unknown(),
  parameters: z.unknown(),
  scheduledAt: z.date().nullable(),
  scheduleTimezone: z.string().nullable(),
  failureThreshold: z.number(),
  failureMinSample: z.number(),
  version: z.number(),
  materialisedAt: z.date().nullable(),
  startedAt: z.date().nullable(),
  finishedAt: z.date().nullable(),
  createdAt: z.date(),
  updatedAt: z.date(),
  stats: BroadcastStats.optional(),
  /** Present on create/update of a phone list: the entries that matched no lead, or were not phone numbers. */
  audienceReport: z.object({
    unknownPhones: z.array(z.object({ index: z.number(), phone: z.string() })),
    invalidPhones: z.array(z.object({ index: z.number(), phone: z.string() })),
    unknownLeadIds: z.array(z.uuid()),
  }).optional(),
})
export type BroadcastView = z.infer<typeof BroadcastView>

export const RecipientView = z.object({
  id: z.number(),
  leadId: z.uuid().nullable(),
  status: RecipientStatus,
  /** The experiment's variation this recipient was sent (null: none, or not sent yet). */
  variationKey: z.string().nullable(),
  skipReason: z.string().nullable(),
  skipDetail: z.string().nullable(),
  messageId: z.uuid().nullable(),
  errorCode: z.number().nullable(),
  queuedAt: z.date().nullable(),
  settledAt: z.date().nullable(),
})
export type RecipientView = z.infer<typeof RecipientView>
