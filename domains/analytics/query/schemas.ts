import { z } from 'zod'
import { type Filter as GenericFilter, filterTree } from '../filters.js'

/**
 * The query grammar of POST /v1/analytics/query, shaped like Plausible's Stats API v2 (metrics, date_range,
 * dimensions, filters, order_by, pagination, include.comparisons) with camelCase keys. The zod schema checks the
 * shape; `parseQuery` (grammar.ts) checks names against the catalogs below, so that an unknown metric or dimension
 * is refused with a message naming it and listing the valid ones.
 */

/** Ratio metrics: events named `num` over events named `den`, under the query's filters and dimensions. */
export const RATIOS = {
  conversion_rate: { num: 'lead.converted', den: 'lead.created' },
  qualification_rate: { num: 'lead.qualified', den: 'lead.created' },
  delivery_rate: { num: 'whatsapp.message_delivered', den: 'whatsapp.message_sent' },
  read_rate: { num: 'whatsapp.message_read', den: 'whatsapp.message_delivered' },
  bot_completion_rate: { num: 'bot.conversation_completed', den: 'bot.conversation_started' },
  bot_handover_rate: { num: 'bot.conversation_handed_over', den: 'bot.conversation_started' },
  form_conversion_rate: { num: 'form.submitted', den: 'form.viewed' },
} as const
export type RatioMetric = keyof typeof RATIOS

export const METRICS = ['events', 'leads', 'visitors', ...Object.keys(RATIOS) as RatioMetric[], 'median_first_response_seconds'] as const
export type Metric = (typeof METRICS)[number]

export const TIME_DIMENSIONS = ['time:hour', 'time:day', 'time:week', 'time:month'] as const
export type TimeDimension = (typeof TIME_DIMENSIONS)[number]

/**
 * Every non-time dimension: the raw expression over analytics.events (`e`), and the column of
 * analytics.event_aggregations that holds the same value ('' when absent), if the rollup has one.
 */
export const DIMENSIONS = {
  'event:name': { raw: { column: 'name' }, rollup: 'name' },
  'event:producer': { raw: { column: 'source' }, rollup: 'producer' },
  'visit:source': { raw: { column: 'acq_source' }, rollup: 'source' },
  'visit:channel': { raw: { column: 'acq_channel' }, rollup: 'channel' },
  'visit:country': { raw: { column: 'country' }, rollup: 'country' },
  'visit:device': { raw: { column: 'device' }, rollup: 'device' },
  'visit:browser': { raw: { column: 'browser' }, rollup: null },
  'visit:os': { raw: { column: 'os' }, rollup: null },
  'visit:referrer': { raw: { column: 'referrer_host' }, rollup: null },
  'event:form': { raw: { property: 'formId' }, rollup: 'form_id' },
  'event:flow': { raw: { property: 'flowId' }, rollup: 'flow_id' },
  'event:template': { raw: { property: 'templateName' }, rollup: 'template' },
  'event:campaign': { raw: { property: 'campaignId' }, rollup: 'campaign_id' },
  'event:experiment': { raw: { property: 'experimentKey' }, rollup: 'experiment' },
  'event:variant': { raw: { property: 'variationKey' }, rollup: 'variant' },
  'lead:source': { raw: { property: 'leadSource' }, rollup: null },
} as const satisfies Record<string, { raw: { column: string } | { property: string }; rollup: string | null }>
export type PlainDimension = keyof typeof DIMENSIONS
/** `event:props:<key>`: any event property, from raw events only. */
export const PROPERTY_DIMENSION = /^event:props:([A-Za-z0-9_.-]{1,64})$/
export type Dimension = TimeDimension | PlainDimension | `event:props:${string}`

export const DIMENSION_NAMES = [...TIME_DIMENSIONS, ...Object.keys(DIMENSIONS) as PlainDimension[], 'event:props:<key>'] as const

export { FILTER_OPERATORS, type FilterOperator } from '../filters.js'
/** The live feed's grammar (../filters.ts), over the query API's dimensions. */
export type Filter = GenericFilter<Dimension>

/**
 * Plausible's filter tree: `["is", "visit:channel", ["search"]]`, with an optional `{ "case_sensitive": false }`
 * fourth element, `["and", [f, …]]`, `["or", [f, …]]`, `["not", f]`. Dimension names are checked by parseQuery
 * (grammar.ts), which names the valid ones and refuses time dimensions with its own reason.
 */
export const FilterInput: z.ZodType<unknown> = filterTree(z.string().max(80))
  .meta({ description: 'e.g. ["is", "visit:channel", ["search"]], ["contains", "event:form", ["promo"], { "case_sensitive": false }], ["and", [f, …]], ["or", [f, …]], ["not", f]; case-sensitive unless case_sensitive is false' })

const IsoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/)
const IsoDateTime = z.iso.datetime({ offset: true })

export const DateRangeInput = z.union([
  z.enum(['day', '7d', '30d', 'month', 'all']),
  z.tuple([z.union([IsoDate, IsoDateTime]), z.union([IsoDate, IsoDateTime])]),
]).meta({ description: "'day' (today), '7d' and '30d' (ending today), 'month' (this month), 'all' (the retention period), or [from, to]: dates (inclusive, in the query's timezone) or ISO datetimes with offsets (to exclusive)" })

export const QueryBody = z.object({
  metrics: z.array(z.string().max(80)).min(1).max(12)
    .meta({ description: `any of: ${METRICS.join(', ')}` }),
  dateRange: DateRangeInput,
  dimensions: z.array(z.string().max(80)).max(4).default([])
    .meta({ description: `any of: ${DIMENSION_NAMES.join(', ')} (at most one time dimension)` }),
  filters: z.array(FilterInput).max(20).default([]),
  orderBy: z.array(z.tuple([z.string().max(80), z.enum(['asc', 'desc'])])).max(8).optional()
    .meta({ description: 'pairs [metricOrDimension, "asc"|"desc"]; default: the time dimension ascending, else the first metric descending' }),
  limit: z.number().int().min(1).max(10_000).default(10_000),
  offset: z.number().int().min(0).max(1_000_000).default(0),
  /** An IANA zone; the tenant's (core.tenants.timezone) by default. */
  timezone: z.string().max(64).optional(),
  compare: z.literal('previous_period').optional(),
  /** 'raw' reads raw events only, ignoring rollups: to check an answer against its source, or to measure the difference. */
  source: z.literal('raw').optional(),
})
export type QueryBody = z.infer<typeof QueryBody>

export const LEVELS = ['day', 'hour', '5min', 'daily_uniques', 'daily_kpi', 'raw'] as const
export type Level = (typeof LEVELS)[number]

export const Source = z.enum(['rollup', 'raw', 'rollup+raw'])
export type Source = z.infer<typeof Source>

const DimensionValue = z.string().nullable()
const MetricValue = z.number().nullable()

export const QueryResult = z.object({
  dimensions: z.array(DimensionValue),
  metrics: z.array(MetricValue),
  comparison: z.object({
    dimensions: z.array(DimensionValue),
    metrics: z.array(MetricValue),
    /** Per metric: percent change from the previous period (null when it had no value or was 0). */
    change: z.array(MetricValue),
  }).optional(),
})
export type QueryResult = z.infer<typeof QueryResult>

const RangeView = z.object({ from: z.string(), to: z.string() })

export const QueryResponse = z.object({
  results: z.array(QueryResult),
  meta: z.object({
    /** Where the answer came from: rollups only, raw events only, or rollups with raw events for the rest. */
    source: Source,
    /** Every 5-minute bucket before it is rolled up (null: nothing is yet). */
    watermark: z.string().nullable(),
    /** When source is rollup+raw: the raw events read (after the watermark, and buckets changed since their rollup). */
    rawAfter: z.string().nullable(),
    rawBuckets: z.number().int(),
    /** Why raw events were read for the whole range, when they were. */
    rawReason: z.string().nullable(),
    /**
     * Which levels answered (the main period and the comparison together), coarsest first: `day`
     * (daily_aggregations), `hour` (hourly_aggregations), `5min` (event_aggregations), `daily_uniques`, `daily_kpi`
     * (analytics.metrics), `raw` (analytics.events).
     */
    levels: z.array(z.enum(LEVELS)),
    timezone: z.string(),
    dateRange: RangeView,
    comparisonDateRange: RangeView.optional(),
    totalRows: z.number().int(),
  }),
  query: z.record(z.string(), z.unknown()),
})
export type QueryResponse = z.infer<typeof QueryResponse>

// ---------------------------------------------------------------------------------------------------------------
// Funnels (GET /v1/analytics/funnels)

export const FunnelStepInput = z.object({
  name: z.string().min(1).max(120),
  filters: z.array(FilterInput).max(10).default([]),
})
export type FunnelStepInput = z.infer<typeof FunnelStepInput>

const WINDOW = /^(\d{1,4})(m|h|d)$/
export const FunnelQuery = z.object({
  /** `a,b,c` (event names) or a JSON array of `{ name, filters? }`. */
  steps: z.string().min(1).max(4000)
    .meta({ description: 'event names separated by commas (form.viewed,form.submitted), or a JSON array of { name, filters } for filters per step' }),
  dateRange: z.string().max(60).default('30d')
    .meta({ description: "'day', '7d', '30d', 'month', 'all', or from,to (two ISO dates)" }),
  window: z.string().regex(WINDOW, 'a duration such as 30m, 24h or 7d').default('7d')
    .meta({ description: 'the conversion window from the first step: 30m, 24h, 7d, …' }),
  timezone: z.string().max(64).optional(),
})
export type FunnelQuery = z.infer<typeof FunnelQuery>

export const windowSeconds = (w: string) => {
  const [, n, unit] = WINDOW.exec(w)!
  return Number(n) * (unit === 'm' ? 60 : unit === 'h' ? 3600 : 86400)
}

export const FunnelResponse = z.object({
  steps: z.array(z.object({
    name: z.string(),
    /** Unique subjects (a lead, or an anonymous visitor not yet linked to one) who did this step and every one before it, in order, within the window. */
    subjects: z.number().int(),
    /** subjects / the previous step's subjects (1 for the first step; null when the previous had none). */
    conversionFromPrevious: z.number().nullable(),
    conversionFromFirst: z.number().nullable(),
  })),
  meta: z.object({
    source: z.literal('raw'),
    timezone: z.string(),
    dateRange: RangeView,
    windowSeconds: z.number().int(),
  }),
})
export type FunnelResponse = z.infer<typeof FunnelResponse>
