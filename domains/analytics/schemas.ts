import { z } from 'zod'
import { Enrichment } from './enrichment/schemas.js'

/**
 * One analytics event as a producer records it. Producers inside the product (WhatsApp ingestion, forms) build
 * these from rows they already validated; the event intake of a later release parses outside input with it.
 */
export const EventRow = z.object({
  /** `<domain>.<what_happened>`, e.g. `whatsapp.message_received`, `form.submitted`. */
  name: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/).max(120),
  leadId: z.uuid().nullable().default(null),
  occurredAt: z.union([z.date(), z.iso.datetime({ offset: true })]),
  properties: z.record(z.string(), z.unknown()).default({}),
  /** The same outside fact recorded twice (a replay, a redelivery) is one event: the key decides, per tenant. */
  dedupeKey: z.string().min(1).max(300).nullable().default(null),
  /** Which part of the product recorded it: `whatsapp`, `web_form`, `bot`, `api`. */
  source: z.string().min(1).max(60).nullable().default(null),
  /** Client events (POST /v1/events) only: the client's id, its type, visitor, session and page context. */
  eventId: z.uuid().nullable().default(null),
  type: z.string().max(40).nullable().default(null),
  anonymousId: z.string().max(200).nullable().default(null),
  sessionId: z.string().max(200).nullable().default(null),
  context: z.record(z.string(), z.unknown()).nullable().default(null),
  /**
   * What enrichEvent derived from the context (and the lead's phone), stored in the event's enrichment columns
   * (migration 0020: acq_source, acq_channel, device, country, …). Client events only; other producers leave it out.
   */
  enrichment: Enrichment.nullable().default(null),
  /**
   * Platform events that know where their lead came from (lead.created): the acquisition columns alone, for events
   * with no page or user agent to enrich. Ignored when `enrichment` is set.
   */
  attribution: z.lazy(() => Attribution).nullable().default(null),
})
export type EventRow = z.input<typeof EventRow>

/** A platform event's acquisition: acq_source, acq_channel, referrer_host, utm, country (platform-events.ts, leadAttribution). */
export const Attribution = z.object({
  source: z.string().max(200).nullable(),
  channel: z.string().max(40),
  referrerHost: z.string().max(253).nullable().optional(),
  utm: z.record(z.string(), z.string().nullable()).optional(),
  country: z.string().regex(/^[A-Z]{2}$/).optional(),
  countryFrom: z.enum(['phone', 'locale']).optional(),
})
export type Attribution = z.infer<typeof Attribution>

/** The backfill a new anonymousId → lead link enqueues (identity-queries.ts insertIdentities names it). */
export const LINK_ANONYMOUS_TASK = 'analytics__link_anonymous'
export const LinkAnonymousPayload = z.object({ tenantId: z.uuid(), anonymousIds: z.array(z.string().min(1).max(200)).min(1).max(1000) })

/** Events one intake request may carry; more is a 413 (checked before validation, so the count is not a 400). */
export const MAX_EVENTS_PER_BATCH = 1000
/** An event's `properties`, serialized, at most (bytes of JSON). */
export const MAX_PROPERTIES_BYTES = 8192
/** Clocks drift: an `occurredAt` up to this far ahead is accepted, beyond it refused. Any past is late data, accepted. */
export const MAX_FUTURE_SKEW_MS = 10 * 60_000

const shortText = (max: number) => z.string().min(1).max(max)
/**
 * Whether a string is an http(s) URL the WHATWG parser accepts. A site's events name the same few pages and referrers
 * over and over, so the answers are kept (bounded, oldest out first): parsing is most of what checking a URL costs.
 */
const httpUrls = new Map<string, boolean>()
const HTTP_URLS_MAX = 2000
export const isHttpUrl = (v: string): boolean => {
  let ok = httpUrls.get(v)
  if (ok === undefined) {
    ok = /^https?:\/\//i.test(v) && URL.canParse(v)
    if (httpUrls.size >= HTTP_URLS_MAX) httpUrls.delete(httpUrls.keys().next().value!)
    httpUrls.set(v, ok)
  }
  return ok
}
const httpUrl = z.string().max(2000).refine(isHttpUrl, 'an http(s) URL')

/** Where the event happened, as the page or the client knows it. Unknown keys are dropped. */
export const EventContext = z.object({
  page: z.object({
    url: httpUrl.optional(),
    path: z.string().max(2000).optional(),
    title: z.string().max(500).optional(),
    referrer: z.union([httpUrl, z.literal('')]).optional(),
  }).optional(),
  utm: z.object({
    source: shortText(200).optional(),
    medium: shortText(200).optional(),
    campaign: shortText(200).optional(),
    term: shortText(200).optional(),
    content: shortText(200).optional(),
  }).optional(),
  userAgent: z.string().max(1000).optional(),
  locale: z.string().max(35).optional(),
}).default({})
export type EventContext = z.infer<typeof EventContext>

/**
 * The JSON text a large validated `properties` object was measured as, so that storing it does not serialize it
 * again (propertiesJson). Keyed by the object itself: it goes with the request. Validated values are read-only from
 * here on, so serializing one again gives the same text. Only large texts are kept: a WeakMap entry (an ephemeron,
 * which every garbage collection then visits) costs more than serializing a small object twice, ~0.75 µs per event
 * more CPU for the usual few-key properties (parse, measure and store, measured in process).
 */
const propertiesTexts = new WeakMap<object, string>()
const KEEP_TEXT_FROM = 512
export function propertiesFit(p: Record<string, unknown>): boolean {
  const text = JSON.stringify(p)
  if (text.length >= KEEP_TEXT_FROM) propertiesTexts.set(p, text)
  return Buffer.byteLength(text) <= MAX_PROPERTIES_BYTES
}
/** An event's `properties` as JSON: the text IntakeEvent measured, or (for any other object) serialized now. */
export const propertiesJson = (p: Record<string, unknown>): string => propertiesTexts.get(p) ?? JSON.stringify(p)

/** An outside event's `name`: free-form but tidy (`Signup clicked`, `pricing.viewed`, `page`). */
export const EVENT_NAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N} ._:/-]*$/u

/** One event from outside (a tenant's server with an API key, or a web page with a site key). */
export const IntakeEvent = z.object({
  /** Client-generated: the idempotency key. The same id sent again is stored once. */
  id: z.uuid(),
  /** Free-form but tidy: `Signup clicked`, `pricing.viewed`, `page`. */
  name: z.string().min(1).max(120).regex(EVENT_NAME_PATTERN, 'letters, digits, spaces and . _ : / -'),
  type: z.enum(['page', 'track', 'identify', 'screen']),
  occurredAt: z.iso.datetime({ offset: true })
    // `!(… > …)`: a value that is not a date at all is reported once, by the format check.
    .refine((v) => !(Date.parse(v) > Date.now() + MAX_FUTURE_SKEW_MS), `more than ${MAX_FUTURE_SKEW_MS / 60_000} minutes in the future`),
  anonymousId: z.string().min(1).max(200).optional(),
  leadId: z.uuid().optional(),
  sessionId: z.string().min(1).max(200).optional(),
  properties: z.record(z.string(), z.unknown()).default({})
    .refine(propertiesFit, `larger than ${MAX_PROPERTIES_BYTES} bytes serialized`),
  context: EventContext,
}).refine((e) => e.anonymousId !== undefined || e.leadId !== undefined, { message: 'anonymousId or leadId is required', path: ['anonymousId'] })
export type IntakeEvent = z.infer<typeof IntakeEvent>

// The count is checked before this (413); max here only keeps the schema honest for OpenAPI.
export const IntakeBatch = z.object({ events: z.array(IntakeEvent).min(1).max(MAX_EVENTS_PER_BATCH) })
export type IntakeBatch = z.infer<typeof IntakeBatch>

export const IntakeAccepted = z.object({
  /** Events of this request stored now. */
  accepted: z.number().int(),
  /** Events whose id was already stored (earlier, or twice in this request): not stored again. */
  duplicates: z.number().int(),
})

/** The job one group commit enqueues per tenant (migration 0019 analytics.store_events names it). */
export const PROCESS_EVENTS_TASK = 'analytics__process_events'
export const ProcessEventsPayload = z.object({ tenantId: z.uuid(), eventIds: z.array(z.uuid()).min(1) })

/** analytics__create_partitions (cron): how many days ahead to keep ready; the default is PARTITION_DAYS_AHEAD. */
export const CreatePartitionsPayload = z.object({ daysAhead: z.number().int().min(0).max(31).optional() }).loose()

/** Canonical, as browsers send Origin: lowercase, default port dropped (`https://Clinic.Example:443` → `https://clinic.example`). */
const Origin = z.string().max(200)
  .refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol) && /^https?:\/\/[^/?#]+\/?$/i.test(v), 'an origin: http(s)://host[:port], no path')
  .transform((v) => new URL(v).origin)

export const CreateSiteKeyBody = z.object({
  name: z.string().trim().min(1).max(120),
  allowedOrigins: z.array(Origin).min(1).max(50),
})
export type CreateSiteKeyBody = z.infer<typeof CreateSiteKeyBody>

export const SiteKeyView = z.object({
  id: z.uuid(),
  name: z.string(),
  /** `ws_…`: public, embedded in the website's pages. */
  publicKey: z.string(),
  allowedOrigins: z.array(z.string()),
  status: z.enum(['active', 'archived']),
  createdAt: z.date(),
  archivedAt: z.date().nullable(),
})
export type SiteKeyView = z.infer<typeof SiteKeyView>

/** The cron job's payload (graphile's cron adds `_cron`): nothing to say; old or extra keys are ignored. */
export const RollUpPayload = z.object({}).loose()

/** Operators compare a range at most this long at once (each tenant's raw events of the range are counted). */
export const MAX_RECONCILE_DAYS = 31

export const ReconciliationQuery = z.object({
  from: z.iso.datetime({ offset: true }).transform((v) => new Date(v)),
  to: z.iso.datetime({ offset: true }).transform((v) => new Date(v)),
  tenantId: z.uuid().optional(),
})
  // Checked only once both are dates (zod runs object checks after a field already failed).
  .refine((q) => !(q.from instanceof Date && q.to instanceof Date) || q.from < q.to, { message: 'from must be before to', path: ['to'] })
  .refine((q) => !(q.from instanceof Date && q.to instanceof Date) || q.to.getTime() - q.from.getTime() <= MAX_RECONCILE_DAYS * 86_400_000,
    { message: `at most ${MAX_RECONCILE_DAYS} days`, path: ['to'] })

const BucketTotals = { raw: z.number(), rolledUp: z.number() }
export const TenantReconciliationView = z.object({
  tenantId: z.uuid(),
  buckets: z.number().int(),
  ...BucketTotals,
  difference: z.number(),
  mismatches: z.array(z.object({ bucketStart: z.date(), ...BucketTotals, difference: z.number() })),
  pending: z.object({ buckets: z.number().int(), ...BucketTotals, oldest: z.date().nullable() }),
  assessments: z.object({
    days: z.number().int(),
    rows: z.number().int(),
    difference: z.number(),
    amountDifference: z.string().describe('Exact decimal: Σ|raw − rolled up| over the money measures'),
    mismatches: z.array(z.object({
      day: z.string(), measure: z.string(), assessmentId: z.string(), partnerId: z.string(), linkId: z.string(), channel: z.string(),
      questionId: z.string(), band: z.string(), value: z.number(), currency: z.string(), raw: z.number(), rolledUp: z.number(),
      rawAmount: z.string(), rolledUpAmount: z.string(),
    })),
  }).describe('The assessment and partner reports\' daily rollup against raw, row by row, over the whole days behind the watermark'),
})
export const ReconciliationView = z.object({
  from: z.date(),
  to: z.date(),
  total: z.object({
    ...BucketTotals, difference: z.number(), pendingBuckets: z.number().int(),
    assessmentDifference: z.number().describe('Σ of the tenants\' assessment rollup differences (event counts, plus one per row whose amount differs)'),
  }),
  tenants: z.array(TenantReconciliationView),
})
