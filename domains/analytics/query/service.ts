import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { retentionSettingsOf } from '../../privacy/retention.js'
import {
  addDays, addMonths, isTimeDimension, isTimeZone, offsetMinutes, parseQuery, resolveRange, timeLabels, type Query, type Range,
} from './grammar.js'
import { isRatio, planPeriod, type MedianPlan, type Plan } from './plan.js'
import * as q from './queries.js'
import {
  FunnelStepInput, LEVELS, RATIOS, windowSeconds,
  type FunnelQuery, type FunnelResponse, type Metric, type QueryBody, type QueryResponse, type QueryResult, type Source,
} from './schemas.js'

interface Period { range: Range; from: Date; to: Date }
interface Row { dims: string[]; metrics: (number | null)[] }

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits
/** A metric where nothing happened: counts are 0, ratios and medians have no value. */
const emptyValue = (m: Metric) => (m === 'events' || m === 'leads' || m === 'visitors' ? 0 : null)
const keyOf = (dims: string[]) => JSON.stringify(dims)

/**
 * The tenant's zone and retention, cached per process for 30 s: every query needs them before its first statement,
 * and a dashboard sends a dozen queries at once. A changed timezone or retention applies within 30 s.
 */
const SETTINGS_TTL_MS = 30_000
const settingsCache = new Map<string, { at: number; tenantZone: string; retentionDays: number }>()

async function setting(tx: Tx, config: Config, tenantId: string, requested: string | undefined) {
  let cached = settingsCache.get(tenantId)
  if (!cached || Date.now() - cached.at > SETTINGS_TTL_MS) {
    const [tenantZone, retention] = await Promise.all([
      q.tenantTimezone(tx, tenantId),
      retentionSettingsOf(tx, tenantId, config.PRIVACY_EXPORT_TTL_DAYS),
    ])
    cached = { at: Date.now(), tenantZone, retentionDays: retention.analyticsEventsDays }
    if (settingsCache.size > 10_000) settingsCache.clear()
    settingsCache.set(tenantId, cached)
  }
  const tz = requested ?? cached.tenantZone
  if (!isTimeZone(tz)) {
    throw new AppError('BAD_REQUEST', `unknown timezone "${tz}": an IANA zone such as America/Sao_Paulo`, { details: [{ in: 'body', path: 'timezone', message: 'unknown timezone' }] })
  }
  return { tz, tenantZone: cached.tenantZone, retentionDays: cached.retentionDays }
}

async function periodsOf(tx: Tx, ranges: Range[], tz: string): Promise<Period[]> {
  const dates = ranges.flatMap((r) => (r.kind === 'dates' ? [r.from, r.to] : []))
  const instants = dates.length ? await q.zonedInstants(tx, tz, dates) : []
  let i = 0
  return ranges.map((range) => range.kind === 'dates'
    ? { range, from: instants[i++]!, to: instants[i++]! }
    : { range, from: range.from, to: range.to })
}

async function medianRows(tx: Tx, tenantId: string, tz: string, query: Query, plan: MedianPlan): Promise<q.MedianRow[]> {
  const [rolled, raw] = await Promise.all([
    plan.rollup ? q.dailyMedians(tx, { tenantId, ...plan.rollup }) : [],
    plan.raw.intervals.length ? q.medianFirstResponse(tx, { tenantId, tz, dims: query.dimensions, intervals: plan.raw.intervals, skipDays: plan.raw.skipDays }) : [],
  ])
  return [...rolled, ...raw]
}

/** One period's rows: every metric of the query per dimension tuple, from the plan's statements. */
async function runPeriod(tx: Tx, tenantId: string, tz: string, query: Query, period: Period, plan: Plan): Promise<Map<string, Row>> {
  const named = [...new Set(query.metrics.filter(isRatio).flatMap((m) => [RATIOS[m].num, RATIOS[m].den]))]
  const kinds = (['lead', 'visitor'] as const).filter((k) => query.metrics.includes(k === 'lead' ? 'leads' : 'visitors'))
  const n = query.dimensions.length
  const dimsOf = (r: object) => Array.from({ length: n }, (_, i) => String((r as Record<string, unknown>)[`dim${i}`] ?? ''))
  const [counts, uniques, medians] = await Promise.all([
    plan.counts ? q.countEvents(tx, { tenantId, tz, dims: query.dimensions, filters: query.filters, plan: plan.counts, named }) : [],
    plan.uniques ? q.countUniques(tx, { tenantId, tz, dims: query.dimensions, filters: query.filters, plan: plan.uniques, kinds: [...kinds] }) : [],
    plan.median ? medianRows(tx, tenantId, tz, query, plan.median) : [],
  ])
  const byKey = new Map<string, { dims: string[]; counts?: q.CountRow; uniques?: q.UniqueRow; median?: number | null }>()
  const slot = (dims: string[]) => {
    const k = keyOf(dims)
    let s = byKey.get(k)
    if (!s) byKey.set(k, (s = { dims }))
    return s
  }
  for (const r of counts) slot(dimsOf(r)).counts = r
  for (const r of uniques) slot(dimsOf(r)).uniques = r
  for (const r of medians) slot(dimsOf(r)).median = r.median
  const out = new Map<string, Row>()
  for (const [k, s] of byKey) {
    const value = (m: Metric): number | null => {
      if (m === 'events') return s.counts?.cnt ?? 0
      if (m === 'leads') return s.uniques?.leads ?? 0
      if (m === 'visitors') return s.uniques?.visitors ?? 0
      if (m === 'median_first_response_seconds') return s.median == null ? null : round(s.median, 1)
      const { num, den } = RATIOS[m]
      const d = s.counts?.[`n${named.indexOf(den)}`] ?? 0
      return d > 0 ? round((s.counts?.[`n${named.indexOf(num)}`] ?? 0) / d, 4) : null
    }
    out.set(k, { dims: s.dims, metrics: query.metrics.map(value) })
  }
  return out
}

/** The previous period's label of a time bucket: the same place in the period before. */
function shiftLabel(label: string, shift: { days: number } | { months: number } | { ms: number }): string {
  const hour = label.length > 10
  if ('months' in shift) return hour ? `${addMonths(label.slice(0, 10), shift.months)}${label.slice(10)}` : addMonths(label, shift.months)
  if ('days' in shift) return hour ? `${addDays(label.slice(0, 10), shift.days)}${label.slice(10)}` : addDays(label, shift.days)
  const t = new Date(Date.parse(`${hour ? label : `${label}T00:00:00`}Z`) + shift.ms).toISOString()
  return hour ? `${t.slice(0, 13)}:00:00` : t.slice(0, 10)
}

const compareValue = (a: unknown, b: unknown) => {
  if (a === b) return 0
  if (a === null || a === undefined) return -1
  if (b === null || b === undefined) return 1
  return typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : 1
}

/**
 * POST /v1/analytics/query: the tenant's numbers for a Plausible-style query, from rollups where the query allows
 * and raw events for the rest (plan.ts), in one transaction under the tenant (RLS) so every part sees one snapshot.
 */
export async function runQuery(sql: Sql, config: Config, tenantId: string, body: QueryBody, now = new Date()): Promise<QueryResponse> {
  const query = parseQuery(body)
  return withTenant(sql, tenantId, async (tx) => {
    const { tz, tenantZone, retentionDays } = await setting(tx, config, tenantId, body.timezone)
    const { range, previous } = resolveRange(body.dateRange, now, tz, retentionDays)
    const ranges = query.compare ? [range, previous] : [range]
    // One statement: the periods' instants as PostgreSQL reads the zone, the watermark, the dirty buckets and days.
    const { instants, ...state } = await q.readRollupState(tx, tenantId, tz, ranges.flatMap((r) => (r.kind === 'dates' ? [r.from, r.to] : [r.from.toISOString(), r.to.toISOString()])))
    const [main, prev] = ranges.map((r, i): Period => ({ range: r, from: instants[2 * i]!, to: instants[2 * i + 1]! }))
    const planOf = (p: Period) => planPeriod(query, {
      from: p.from, to: p.to,
      fromDay: p.range.kind === 'dates' ? p.range.from : null, toDay: p.range.kind === 'dates' ? p.range.to : null,
      timezone: tz, tenantZone: tz === tenantZone, offsets: [offsetMinutes(p.from, tz), offsetMinutes(p.to, tz)],
      ...state,
      ...(body.source === 'raw' ? { watermark: null } : {}),
    })
    const plan = planOf(main!)
    const prevPlan = prev ? planOf(prev) : null
    const [rows, prevRows] = await Promise.all([
      runPeriod(tx, tenantId, tz, query, main!, plan),
      prev ? runPeriod(tx, tenantId, tz, query, prev, prevPlan!) : null,
    ])

    const timeAt = query.dimensions.findIndex(isTimeDimension)
    // A time series has a row for every bucket of the range, zeros where nothing happened (as Plausible's does), so
    // a chart's gaps are days without events, not days missing. Only for time alone: with other dimensions every
    // combination would be a row.
    const only = query.dimensions.length === 1 ? query.dimensions[0]! : null
    if (only && isTimeDimension(only)) {
      for (const label of timeLabels(only, main!.from, main!.to, tz)) {
        const k = keyOf([label])
        if (!rows.has(k)) rows.set(k, { dims: [label], metrics: query.metrics.map(emptyValue) })
      }
    }
    const shift = !prev ? null
      : range.kind === 'instants' ? { ms: prev.from.getTime() - main!.from.getTime() }
        : body.dateRange === 'month' ? { months: -1 }
          : { days: Math.round((Date.parse(previous.from as string) - Date.parse(range.from as string)) / 86_400_000) }
    const results: QueryResult[] = [...rows.values()].map((r) => {
      const out: QueryResult = { dimensions: r.dims.map((d) => (d === '' ? null : d)), metrics: r.metrics }
      if (prevRows && shift) {
        const dims = r.dims.map((d, i) => (i === timeAt ? shiftLabel(d, shift) : d))
        const c = prevRows.get(keyOf(dims))
        const metrics = c?.metrics ?? query.metrics.map(emptyValue)
        out.comparison = {
          dimensions: dims.map((d) => (d === '' ? null : d)),
          metrics,
          change: r.metrics.map((v, i) => {
            const before = metrics[i]
            return v === null || before === null || before === undefined || before === 0 ? null : round(((v - before) / before) * 100, 1)
          }),
        }
      }
      return out
    })

    const order: [string, 'asc' | 'desc'][] = query.orderBy.length ? query.orderBy
      : timeAt >= 0 ? [[query.dimensions[timeAt]!, 'asc']] : [[query.metrics[0]!, 'desc']]
    const valueOf = (r: QueryResult, key: string) => {
      const m = (query.metrics as string[]).indexOf(key)
      return m >= 0 ? r.metrics[m] : r.dimensions[(query.dimensions as string[]).indexOf(key)]
    }
    results.sort((a, b) => {
      for (const [key, dir] of order) {
        const c = compareValue(valueOf(a, key), valueOf(b, key))
        if (c !== 0) return dir === 'asc' ? c : -c
      }
      for (let i = 0; i < a.dimensions.length; i++) {
        const c = compareValue(a.dimensions[i], b.dimensions[i])
        if (c !== 0) return c
      }
      return 0
    })

    const source: Source = prevPlan && prevPlan.source !== plan.source ? 'rollup+raw' : plan.source
    return {
      results: results.slice(query.offset, query.offset + query.limit),
      meta: {
        source,
        watermark: state.watermark?.toISOString() ?? null,
        rawAfter: plan.rawAfter?.toISOString() ?? null,
        rawBuckets: plan.rawBuckets,
        rawReason: body.source === 'raw' ? 'raw events were asked for' : plan.rawReason,
        levels: LEVELS.filter((l) => plan.levels.includes(l) || Boolean(prevPlan?.levels.includes(l))),
        timezone: tz,
        dateRange: { from: main!.from.toISOString(), to: main!.to.toISOString() },
        ...(prev ? { comparisonDateRange: { from: prev.from.toISOString(), to: prev.to.toISOString() } } : {}),
        totalRows: results.length,
      },
      query: {
        metrics: query.metrics, dateRange: body.dateRange, dimensions: query.dimensions, filters: query.filters,
        orderBy: order, limit: query.limit, offset: query.offset, timezone: tz,
        ...(query.compare ? { compare: 'previous_period' } : {}),
        ...(body.source ? { source: body.source } : {}),
      },
    }
  })
}

// ---------------------------------------------------------------------------------------------------------------

function parseSteps(text: string): FunnelStepInput[] {
  if (!text.trimStart().startsWith('[')) {
    return text.split(',').map((name) => ({ name: name.trim(), filters: [] }))
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new AppError('BAD_REQUEST', 'steps: not valid JSON', { details: [{ in: 'querystring', path: 'steps', message: 'not valid JSON' }] })
  }
  const parsed = FunnelStepInput.array().safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    throw new AppError('BAD_REQUEST', `steps.${issue.path.join('.')}: ${issue.message}`, {
      details: parsed.error.issues.map((i) => ({ in: 'querystring', path: ['steps', ...i.path].join('.'), message: i.message })),
    })
  }
  return parsed.data
}

/** GET /v1/analytics/funnels: ordered steps, unique subjects per step within the conversion window (raw events). */
export async function runFunnel(sql: Sql, config: Config, tenantId: string, input: FunnelQuery, now = new Date()): Promise<FunnelResponse> {
  const steps = parseSteps(input.steps)
  if (steps.length < 2 || steps.length > 8) throw new AppError('BAD_REQUEST', 'a funnel has 2 to 8 steps', { details: [{ in: 'querystring', path: 'steps', message: '2 to 8 steps' }] })
  steps.forEach((s, i) => { if (!s.name) throw new AppError('BAD_REQUEST', `steps.${i}: an event name`, { details: [{ in: 'querystring', path: `steps.${i}`, message: 'empty' }] }) })
  // The filters go through the query grammar's checks: an unknown dimension is named with the valid ones.
  const checked = steps.map((s, i) => {
    try {
      return { name: s.name, filters: parseQuery({ metrics: ['events'], dateRange: 'day', dimensions: [], filters: s.filters, limit: 1, offset: 0 }).filters }
    } catch (err) {
      if (err instanceof AppError) throw new AppError('BAD_REQUEST', `steps.${i}: ${err.message}`, { details: [{ in: 'querystring', path: `steps.${i}.filters`, message: err.message }] })
      throw err
    }
  })
  const dateRange = /^\d{4}-\d{2}-\d{2},\d{4}-\d{2}-\d{2}$/.test(input.dateRange) ? input.dateRange.split(',') as [string, string] : input.dateRange
  if (typeof dateRange === 'string' && !['day', '7d', '30d', 'month', 'all'].includes(dateRange)) {
    throw new AppError('BAD_REQUEST', "dateRange: 'day', '7d', '30d', 'month', 'all' or from,to", { details: [{ in: 'querystring', path: 'dateRange', message: 'unknown range' }] })
  }
  return withTenant(sql, tenantId, async (tx) => {
    const { tz, retentionDays } = await setting(tx, config, tenantId, input.timezone)
    const { range } = resolveRange(dateRange as QueryBody['dateRange'], now, tz, retentionDays)
    const [period] = await periodsOf(tx, [range], tz)
    const seconds = windowSeconds(input.window)
    const counts = await q.funnelCounts(tx, { tenantId, steps: checked, from: period!.from, to: period!.to, windowSeconds: seconds })
    return {
      steps: checked.map((s, i) => ({
        name: s.name,
        subjects: counts[i]!,
        conversionFromPrevious: i === 0 ? 1 : counts[i - 1]! > 0 ? round(counts[i]! / counts[i - 1]!, 4) : null,
        conversionFromFirst: counts[0]! > 0 ? round(counts[i]! / counts[0]!, 4) : null,
      })),
      meta: { source: 'raw', timezone: tz, dateRange: { from: period!.from.toISOString(), to: period!.to.toISOString() }, windowSeconds: seconds },
    }
  })
}
