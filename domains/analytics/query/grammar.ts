import { AppError } from '../../../lib/errors.js'
import {
  DIMENSION_NAMES, DIMENSIONS, FILTER_OPERATORS, METRICS, PROPERTY_DIMENSION, TIME_DIMENSIONS,
  type Dimension, type Filter, type Metric, type QueryBody, type TimeDimension,
} from './schemas.js'

/** A query whose names are known; what the planner and the SQL builders take. */
export interface Query {
  metrics: Metric[]
  dimensions: Dimension[]
  filters: Filter[]
  orderBy: [string, 'asc' | 'desc'][]
  limit: number
  offset: number
  compare: boolean
}

const bad = (message: string, path: string) => new AppError('BAD_REQUEST', message, { details: [{ in: 'body', path, message }] })

export const isTimeDimension = (d: string): d is TimeDimension => (TIME_DIMENSIONS as readonly string[]).includes(d)
export const isKnownDimension = (d: string): d is Dimension => isTimeDimension(d) || d in DIMENSIONS || PROPERTY_DIMENSION.test(d)

function checkDimension(d: string, path: string): Dimension {
  if (!isKnownDimension(d)) throw bad(`unknown dimension "${d}"; valid dimensions: ${DIMENSION_NAMES.join(', ')}`, path)
  return d
}

function checkFilter(f: unknown, path: string): Filter {
  const [op, a, b, modifiers] = f as [string, unknown, unknown, Filter[3]]
  if (op === 'and' || op === 'or') return [op, (a as unknown[]).map((g, i) => checkFilter(g, `${path}.1.${i}`))]
  if (op === 'not') return ['not', checkFilter(a, `${path}.1`)]
  if (!(FILTER_OPERATORS as readonly string[]).includes(op)) throw bad(`unknown filter operator "${op}"`, `${path}.0`)
  const dim = checkDimension(a as string, `${path}.1`)
  if (isTimeDimension(dim)) throw bad(`cannot filter on ${dim}: narrow the dateRange instead`, `${path}.1`)
  return (modifiers ? [op, dim, b, modifiers] : [op, dim, b]) as Filter
}

/** Names checked against the catalogs: an unknown metric or dimension is a 400 that names it and lists the valid ones. */
export function parseQuery(body: QueryBody): Query {
  const metrics = body.metrics.map((m, i) => {
    if (!(METRICS as readonly string[]).includes(m)) throw bad(`unknown metric "${m}"; valid metrics: ${METRICS.join(', ')}`, `metrics.${i}`)
    return m as Metric
  })
  const dimensions = body.dimensions.map((d, i) => checkDimension(d, `dimensions.${i}`))
  if (dimensions.filter(isTimeDimension).length > 1) throw bad('at most one time dimension', 'dimensions')
  if (new Set(dimensions).size !== dimensions.length) throw bad('a dimension is repeated', 'dimensions')
  if (new Set(metrics).size !== metrics.length) throw bad('a metric is repeated', 'metrics')
  if (metrics.includes('median_first_response_seconds') && dimensions.some((d) => !isTimeDimension(d))) {
    throw bad('median_first_response_seconds can be grouped by a time dimension only', 'dimensions')
  }
  const filters = body.filters.map((f, i) => checkFilter(f, `filters.${i}`))
  const orderBy = (body.orderBy ?? []).map(([key, dir], i) => {
    if (!(metrics as string[]).includes(key) && !(dimensions as string[]).includes(key)) {
      throw bad(`cannot order by "${key}": it is neither a metric nor a dimension of this query`, `orderBy.${i}.0`)
    }
    return [key, dir] as [string, 'asc' | 'desc']
  })
  return { metrics, dimensions, filters, orderBy, limit: body.limit, offset: body.offset, compare: body.compare === 'previous_period' }
}

/** The dimensions and filter dimensions a query touches (time dimensions excluded). */
export function filterDimensions(filters: Filter[]): Dimension[] {
  const out: Dimension[] = []
  const walk = (f: Filter) => {
    if (f[0] === 'and' || f[0] === 'or') (f[1] as Filter[]).forEach(walk)
    else if (f[0] === 'not') walk(f[1] as Filter)
    else out.push(f[1] as Dimension)
  }
  filters.forEach(walk)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Time zones and date ranges

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/** The calendar date at `at` in `tz`, as YYYY-MM-DD. */
export function localDate(at: Date, tz: string): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at)
}

/** Plain calendar arithmetic on YYYY-MM-DD (no zone involved). */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`)
  d.setUTCDate(d.getUTCDate() + days)
  return d.toISOString().slice(0, 10)
}
export function addMonths(date: string, months: number): string {
  const d = new Date(`${date}T00:00:00Z`)
  d.setUTCMonth(d.getUTCMonth() + months)
  return d.toISOString().slice(0, 10)
}
const realDate = (s: string) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().slice(0, 10) === s

/**
 * A range in calendar dates of the query's zone ([from, to), day-aligned: rollups by day can serve it), or in
 * instants (two ISO datetimes; to exclusive).
 */
export type Range =
  | { kind: 'dates'; from: string; to: string }
  | { kind: 'instants'; from: Date; to: Date }

/** The range a dateRange names, and the period before it of the same length (Plausible's previous_period). */
export function resolveRange(input: QueryBody['dateRange'], now: Date, tz: string, retentionDays: number): { range: Range; previous: Range } {
  const today = localDate(now, tz)
  const oldest = addDays(today, -retentionDays)
  let range: Range
  if (typeof input === 'string') {
    switch (input) {
      case 'day': range = { kind: 'dates', from: today, to: addDays(today, 1) }; break
      case '7d': range = { kind: 'dates', from: addDays(today, -6), to: addDays(today, 1) }; break
      case '30d': range = { kind: 'dates', from: addDays(today, -29), to: addDays(today, 1) }; break
      case 'month': {
        const first = `${today.slice(0, 8)}01`
        range = { kind: 'dates', from: first, to: addMonths(first, 1) }
        break
      }
      case 'all': range = { kind: 'dates', from: oldest, to: addDays(today, 1) }; break
    }
  } else {
    const [a, b] = input
    const dates = a.length === 10 && b.length === 10
    if (dates) {
      if (!realDate(a)) throw bad(`dateRange: ${a} is not a date`, 'dateRange.0')
      if (!realDate(b)) throw bad(`dateRange: ${b} is not a date`, 'dateRange.1')
      if (b < a) throw bad('dateRange: the end is before the start', 'dateRange')
      range = { kind: 'dates', from: a, to: addDays(b, 1) }
    } else if (a.length > 10 && b.length > 10) {
      const from = new Date(a), to = new Date(b)
      if (!(to > from)) throw bad('dateRange: the end must be after the start', 'dateRange')
      range = { kind: 'instants', from, to }
    } else {
      throw bad('dateRange: two dates or two datetimes, not one of each', 'dateRange')
    }
  }
  const startsBefore = range.kind === 'dates' ? range.from < oldest : localDate(range.from, tz) < oldest
  if (startsBefore) {
    throw bad(`dateRange starts before the retention period: events are kept ${retentionDays} days (from ${oldest})`, 'dateRange')
  }
  let previous: Range
  if (range.kind === 'instants') {
    const ms = range.to.getTime() - range.from.getTime()
    previous = { kind: 'instants', from: new Date(range.from.getTime() - ms), to: range.from }
  } else if (input === 'month') {
    previous = { kind: 'dates', from: addMonths(range.from, -1), to: range.from }
  } else {
    const days = Math.round((Date.parse(range.to) - Date.parse(range.from)) / 86_400_000)
    previous = { kind: 'dates', from: addDays(range.from, -days), to: range.from }
  }
  return { range, previous }
}

/** The zone's UTC offset in minutes at `at` (e.g. 330 for Asia/Kolkata). */
export function offsetMinutes(at: Date, tz: string): number {
  const name = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' }).formatToParts(at)
    .find((p) => p.type === 'timeZoneName')?.value ?? 'GMT'
  const m = /GMT([+-])(\d{2}):?(\d{2})?(?::(\d{2}))?/.exec(name)
  if (!m) return 0
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0) + Number(m[4] ?? 0) / 60)
}

/**
 * Every label a time dimension takes over [from, to) in the zone, in order, as the SQL writes them (queries.ts
 * TIME_UNITS: `YYYY-MM-DDTHH:00:00` for hours, the first day of the week (Monday) or month, else the day). Hours step
 * through instants, so a DST change skips or repeats a local hour exactly as the data does; at most `max` labels.
 */
export function timeLabels(dimension: TimeDimension, from: Date, to: Date, tz: string, max = 10_000): string[] {
  if (!(to > from)) return []
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' })
  const local = (at: Date) => {
    const p = Object.fromEntries(parts.formatToParts(at).map((x) => [x.type, x.value]))
    return { day: `${p.year}-${p.month}-${p.day}`, hour: p.hour! }
  }
  const labels: string[] = []
  if (dimension === 'time:hour') {
    const seen = new Set<string>()
    // Whole hours of UTC are whole local hours in every zone whose offset is a whole number of hours; other zones
    // (+05:30) start their hours on the half: stepping by 15 minutes finds every local hour either way.
    for (let t = from.getTime(); t < to.getTime() && labels.length < max; t += 15 * 60_000) {
      const l = local(new Date(t))
      const label = `${l.day}T${l.hour}:00:00`
      if (!seen.has(label)) {
        seen.add(label)
        labels.push(label)
      }
    }
    return labels
  }
  const first = local(from).day
  const last = local(new Date(to.getTime() - 1)).day
  const start = dimension === 'time:day' ? first
    : dimension === 'time:month' ? `${first.slice(0, 8)}01`
      : addDays(first, -((new Date(`${first}T00:00:00Z`).getUTCDay() + 6) % 7))
  for (let d = start; d <= last && labels.length < max; d = dimension === 'time:month' ? addMonths(d, 1) : addDays(d, dimension === 'time:week' ? 7 : 1)) {
    labels.push(d)
  }
  return labels
}
