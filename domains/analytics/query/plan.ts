import { DIMENSIONS, LEVELS, PROPERTY_DIMENSION, RATIOS, type Dimension, type Level, type Metric, type PlainDimension, type RatioMetric, type Source } from './schemas.js'
import { addDays, filterDimensions, isTimeDimension, type Query } from './grammar.js'

/**
 * The planner: for one query and one period, which part of the period each kind of metric reads from rollups and
 * which from raw events. Pure (no database): the service hands it the period's instants, the watermark and the dirty
 * buckets, read in one statement.
 *
 * - Event counts (events and the ratio metrics) come from analytics.daily_aggregations for whole tenant days before
 *   the watermark's day (when the query is in the tenant's zone and not by hour), and else from
 *   analytics.event_aggregations (5-minute buckets, UTC) for the
 *   whole buckets inside the period and before the watermark, minus the buckets marked dirty since their rollup (an
 *   event arrived late, or was deleted); from raw events for the rest: the edges of a period that does not start or
 *   end on a bucket, everything after the watermark (that is what keeps the answer fresh), and the dirty buckets.
 *   Any zone whose offset is a multiple of 5 minutes (every zone in use today, including +05:30 and +05:45) cuts its
 *   hours and days on bucket boundaries, so time:hour in Asia/Kathmandu is served from rollups too.
 *   Between those two, the hour level (analytics.hourly_aggregations, UTC hours, migration 0048) serves every whole
 *   UTC hour of the 5-minute part that ended before the watermark and holds no dirty bucket, when each hour falls in
 *   one group of the query: always in a zone whose offsets are whole hours (then local hours and days start on UTC
 *   hours); in a half-hour zone (+05:30, +05:45, -03:30) not by hour, and by day, week or month only for the hours
 *   that hold no local midnight (those, and the period's unaligned edges, are read at the 5-minute level).
 * - Unique leads and visitors come from analytics.daily_uniques (days in the tenant's zone) for the days before the
 *   watermark's day that hold no dirty bucket; from raw events for the other days. Only when the query asks for
 *   whole days of the tenant's own zone and groups or filters by nothing but days and event names.
 * - median_first_response_seconds by day (or of one day) comes from the daily KPI rows (analytics.metrics) of the
 *   final days: before the day before the watermark's, and not next to a dirty bucket's day. A median of several
 *   days together is not the median of their medians: that one, and the other days, are computed from raw events.
 */

export const BUCKET_MS = 5 * 60_000
const ceilBucket = (t: Date) => new Date(Math.ceil(t.getTime() / BUCKET_MS) * BUCKET_MS)
const floorBucket = (t: Date) => new Date(Math.floor(t.getTime() / BUCKET_MS) * BUCKET_MS)
const minDate = (a: Date, b: Date) => (a < b ? a : b)
const maxDate = (a: Date, b: Date) => (a > b ? a : b)

export interface DirtyBucket {
  bucket: Date
  /** Its calendar day in the query's zone, and that day's start and end as instants. */
  day: string
  dayStart: Date
  dayEnd: Date
}

export interface PeriodContext {
  from: Date
  to: Date
  /** The period as calendar dates of the query's zone ([fromDay, toDay)), when it was given as dates. */
  fromDay: string | null
  toDay: string | null
  /** The query's zone and whether it is the tenant's (daily_uniques are by the tenant's days). */
  timezone: string
  tenantZone: boolean
  /** Offsets (minutes) of the zone at the period's start and end. */
  offsets: number[]
  watermark: Date | null
  /** The watermark's calendar day in the query's zone, and its start. */
  watermarkDay: string | null
  watermarkDayStart: Date | null
  dirty: DirtyBucket[]
  /** Days of the day level marked for a rebuild (with their start and end), in the query's period. */
  staleDays: { day: string; dayStart: Date; dayEnd: Date }[]
}

export type Interval = [Date, Date]

export interface CountsPlan {
  /** Whole tenant days read from analytics.daily_aggregations (the day level, migration 0023). */
  days: { fromDay: string; toDay: string; excludeDays: string[] } | null
  /** UTC hours read from analytics.hourly_aggregations (the hour level, migration 0048): hours starting in the intervals, less `exclude`. */
  hours: { intervals: Interval[]; exclude: Date[] } | null
  /** 5-minute buckets read from analytics.event_aggregations: buckets starting in the intervals, less `exclude`. */
  rollup: { intervals: Interval[]; exclude: Date[] } | null
  raw: { intervals: Interval[]; buckets: Date[] }
  names: string[] | null
  reason: string | null
}

export interface UniquesPlan {
  rollup: { fromDay: string; toDay: string; excludeDays: string[] } | null
  raw: { intervals: Interval[] }
  reason: string | null
}

export interface MedianPlan {
  /** Days whose median is the daily KPI row (analytics.metrics), by day or (one day) alone. */
  rollup: { fromDay: string; toDay: string; excludeDays: string[]; byDay: boolean } | null
  /** Raw events of the intervals, less the days the rollup serves. */
  raw: { intervals: Interval[]; skipDays: string[] }
  reason: string | null
}

export interface Plan {
  /** The levels this plan reads, coarsest first (meta.levels). */
  levels: Level[]
  counts: CountsPlan | null
  uniques: UniquesPlan | null
  median: MedianPlan | null
  source: Source
  rawAfter: Date | null
  rawBuckets: number
  rawReason: string | null
}

export const isRatio = (m: Metric): m is RatioMetric => m in RATIOS

export const HOUR_MS = 3_600_000
const ceilHour = (t: Date) => new Date(Math.ceil(t.getTime() / HOUR_MS) * HOUR_MS)
const floorHour = (t: Date) => new Date(Math.floor(t.getTime() / HOUR_MS) * HOUR_MS)

/** One formatter per zone (creating an Intl.DateTimeFormat costs far more than using one). */
const offsetFormats = new Map<string, Intl.DateTimeFormat>()
/** The zone's offset from UTC at `at`, in minutes. */
export function zoneOffset(at: Date, tz: string): number {
  let f = offsetFormats.get(tz)
  if (!f) offsetFormats.set(tz, (f = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' })))
  const name = f.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT'
  const m = /GMT([+-])(\d{2}):?(\d{2})?(?::(\d{2}))?/.exec(name)
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] ?? 0) + Number(m[4] ?? 0) / 60) : 0
}

/**
 * Whether every offset the zone takes from the start of from's UTC year to the end of to's is a whole number of
 * hours, sampled every 3 hours (no zone changes its offset twice within 3 hours); cached per zone and year.
 */
const wholeHours = new Map<string, boolean>()
export function isWholeHourZone(tz: string, from: Date, to: Date): boolean {
  for (let y = from.getUTCFullYear(); y <= to.getUTCFullYear(); y++) {
    const key = `${tz} ${y}`
    let ok = wholeHours.get(key)
    if (ok === undefined) {
      ok = true
      for (let t = Date.UTC(y, 0, 1); t < Date.UTC(y + 1, 0, 1) && ok; t += 3 * HOUR_MS) ok = zoneOffset(new Date(t), tz) % 60 === 0
      if (wholeHours.size > 1000) wholeHours.clear()
      wholeHours.set(key, ok)
    }
    if (!ok) return false
  }
  return true
}

/**
 * The UTC hours in [from, to) that hold a local midnight of a zone whose offsets are not whole hours (or whose
 * offset changes inside the hour): grouped by day, such an hour belongs to two days.
 */
export function hoursAcrossMidnight(tz: string, from: Date, to: Date): Date[] {
  const out: Date[] = []
  let off = zoneOffset(from, tz)
  for (let t = from.getTime(); t < to.getTime(); t += HOUR_MS) {
    const next = zoneOffset(new Date(t + HOUR_MS), tz)
    const minuteOfDay = (((t / 60_000 + off) % 1440) + 1440) % 1440
    if (minuteOfDay > 1380 || next !== off) out.push(new Date(t))
    off = next
  }
  return out
}

/**
 * The hour level's share of the 5-minute part: per interval, its whole UTC hours less `skip` (hours with a dirty
 * bucket, hours across a group boundary); the rest (edges, skipped hours) stays at the 5-minute level.
 */
function splitHours(intervals: Interval[], skip: Set<number>): { hours: Interval[]; exclude: Date[]; fine: Interval[] } {
  const hours: Interval[] = []
  const exclude: Date[] = []
  const fine: Interval[] = []
  for (const [a, z] of intervals) {
    const hA = ceilHour(a)
    const hZ = floorHour(z)
    if (hA >= hZ) {
      fine.push([a, z])
      continue
    }
    if (a < hA) fine.push([a, hA])
    hours.push([hA, hZ])
    for (let t = hA.getTime(); t < hZ.getTime(); t += HOUR_MS) {
      if (skip.has(t)) {
        exclude.push(new Date(t))
        fine.push([new Date(t), new Date(t + HOUR_MS)])
      }
    }
    if (hZ < z) fine.push([hZ, z])
  }
  // Adjacent pieces as one: fewer ranges in the statement.
  fine.sort((x, y) => x[0].getTime() - y[0].getTime())
  const merged: Interval[] = []
  for (const iv of fine) {
    const last = merged[merged.length - 1]
    if (last && last[1].getTime() >= iv[0].getTime()) last[1] = maxDate(last[1], iv[1])
    else merged.push([iv[0], iv[1]])
  }
  return { hours, exclude, fine: merged }
}

/** The event names the count query must count (null: every event, because `events` is asked for). */
function countedNames(metrics: Metric[]): string[] | null {
  if (metrics.includes('events')) return null
  return [...new Set(metrics.filter(isRatio).flatMap((m) => [RATIOS[m].num, RATIOS[m].den]))]
}

const rollupColumn = (d: Dimension) => (PROPERTY_DIMENSION.test(d) ? null : DIMENSIONS[d as PlainDimension]?.rollup ?? null)

export function planPeriod(query: Query, ctx: PeriodContext): Plan {
  const touched = [...query.dimensions.filter((d) => !isTimeDimension(d)), ...filterDimensions(query.filters)]
  const wantsCounts = query.metrics.some((m) => m === 'events' || isRatio(m))
  const wantsUniques = query.metrics.some((m) => m === 'leads' || m === 'visitors')
  const full: Interval[] = [[ctx.from, ctx.to]]

  let counts: CountsPlan | null = null
  if (wantsCounts) {
    const names = countedNames(query.metrics)
    const notInRollup = touched.find((d) => rollupColumn(d) === null)
    const oddZone = query.dimensions.some(isTimeDimension) && ctx.offsets.some((o) => o % 5 !== 0)
    const reason = notInRollup ? `${notInRollup} is not a rollup dimension`
      : oddZone ? `${ctx.timezone}'s offset is not a multiple of 5 minutes`
        : ctx.watermark === null ? 'nothing is rolled up yet' : null
    const rFrom = ceilBucket(ctx.from)
    const rTo = ctx.watermark ? floorBucket(minDate(ctx.to, ctx.watermark)) : rFrom
    if (reason || rFrom >= rTo) {
      counts = { days: null, hours: null, rollup: null, raw: { intervals: full, buckets: [] }, names, reason: reason ?? 'the period is after the watermark' }
    } else {
      // Whole days before the watermark's day come from the day level, unless a bucket of theirs is dirty or their
      // day rows wait for a rebuild: those days are read at the 5-minute level (and their dirty buckets raw).
      const dayTo = ctx.fromDay !== null && ctx.toDay !== null && ctx.watermarkDay !== null && ctx.tenantZone && !query.dimensions.includes('time:hour')
        ? (ctx.watermarkDay < ctx.toDay ? ctx.watermarkDay : ctx.toDay) : null
      let days: CountsPlan['days'] = null
      const bucketIntervals: Interval[] = []
      if (dayTo !== null && ctx.fromDay! < dayTo) {
        const stale = new Map<string, Interval>()
        for (const d of [...ctx.dirty, ...ctx.staleDays]) if (d.day >= ctx.fromDay! && d.day < dayTo) stale.set(d.day, [d.dayStart, d.dayEnd])
        const excludeDays = [...stale.keys()].sort()
        days = { fromDay: ctx.fromDay!, toDay: dayTo, excludeDays }
        bucketIntervals.push(...excludeDays.map((d) => stale.get(d)!))
        const afterDays = dayTo === ctx.toDay ? ctx.to : ctx.watermarkDayStart!
        if (afterDays < rTo) bucketIntervals.push([afterDays, rTo])
      } else {
        bucketIntervals.push([rFrom, rTo])
      }
      // The hour level where each hour falls in one group (see above); hours with a dirty bucket go to the 5-minute level.
      const timeDim = query.dimensions.find(isTimeDimension)
      const wholeZone = isWholeHourZone(ctx.timezone, ctx.from, ctx.to)
      let fineIntervals = bucketIntervals
      let hours: CountsPlan['hours'] = null
      if (wholeZone || timeDim !== 'time:hour') {
        const skip = new Set(ctx.dirty.map((d) => floorHour(d.bucket).getTime()))
        if (!wholeZone && timeDim) {
          for (const [a, z] of bucketIntervals) for (const h of hoursAcrossMidnight(ctx.timezone, ceilHour(a), floorHour(z))) skip.add(h.getTime())
        }
        const split = splitHours(bucketIntervals, skip)
        if (split.hours.length) {
          hours = { intervals: split.hours, exclude: split.exclude }
          fineIntervals = split.fine
        }
      }
      const intervals: Interval[] = []
      if (ctx.from < rFrom) intervals.push([ctx.from, rFrom])
      if (rTo < ctx.to) intervals.push([rTo, ctx.to])
      const exclude = ctx.dirty.map((d) => d.bucket).filter((b) => fineIntervals.some(([a, z]) => b >= a && b < z))
      counts = {
        days, hours, rollup: fineIntervals.length ? { intervals: fineIntervals, exclude } : null,
        raw: { intervals, buckets: exclude }, names, reason: null,
      }
    }
  }

  let uniques: UniquesPlan | null = null
  if (wantsUniques) {
    const other = query.dimensions.find((d) => d === 'time:hour' || (!isTimeDimension(d) && d !== 'event:name'))
      ?? filterDimensions(query.filters).find((d) => d !== 'event:name')
    const reason = ctx.fromDay === null ? 'the period is not whole days'
      : !ctx.tenantZone ? "daily uniques are by the tenant's days, not this zone's"
        : other ? `unique leads and visitors are rolled up by day and event name only (not ${other})`
          : ctx.watermark === null ? 'nothing is rolled up yet' : null
    const toDay = ctx.watermarkDay !== null && ctx.toDay !== null ? (ctx.watermarkDay < ctx.toDay ? ctx.watermarkDay : ctx.toDay) : null
    if (reason || toDay === null || ctx.fromDay! >= toDay) {
      uniques = { rollup: null, raw: { intervals: full }, reason: reason ?? 'the period is after the watermark' }
    } else {
      const intervals: Interval[] = []
      const tailStart = maxDate(ctx.from, ctx.watermarkDayStart!)
      if (toDay < ctx.toDay! && tailStart < ctx.to) intervals.push([tailStart, ctx.to])
      const excludeDays = [...new Set(ctx.dirty.filter((d) => d.day >= ctx.fromDay! && d.day < toDay).map((d) => d.day))].sort()
      for (const day of excludeDays) {
        const d = ctx.dirty.find((x) => x.day === day)!
        intervals.push([maxDate(d.dayStart, ctx.from), minDate(d.dayEnd, ctx.to)])
      }
      uniques = { rollup: { fromDay: ctx.fromDay!, toDay, excludeDays }, raw: { intervals }, reason: null }
    }
  }

  let median: MedianPlan | null = null
  if (query.metrics.includes('median_first_response_seconds')) {
    const byDay = query.dimensions.length === 1 && query.dimensions[0] === 'time:day'
    const oneDay = ctx.fromDay !== null && ctx.toDay === addDays(ctx.fromDay, 1)
    const reason = ctx.fromDay === null ? 'the period is not whole days'
      : !ctx.tenantZone ? "daily medians are by the tenant's days, not this zone's"
        : !(byDay || (query.dimensions.length === 0 && oneDay)) ? 'a median of several days is computed from raw events'
          : query.filters.length ? 'daily medians are not filtered'
            : ctx.watermark === null ? 'nothing is rolled up yet' : null
    // A day's median reads replies up to 24 hours into the next day: the day before the watermark's is not final yet.
    const last = ctx.watermarkDay ? addDays(ctx.watermarkDay, -1) : null
    const toDay = last !== null && ctx.toDay !== null ? (last < ctx.toDay ? last : ctx.toDay) : null
    if (reason || toDay === null || ctx.fromDay! >= toDay) {
      median = { rollup: null, raw: { intervals: full, skipDays: [] }, reason: reason ?? "a day's median is final once the next day is rolled up" }
    } else {
      // A late event on day D changes the medians of D - 1, D and D + 1 (waits and replies reach 24 hours across).
      const excluded = new Set(ctx.dirty.flatMap((d) => [addDays(d.day, -1), d.day, addDays(d.day, 1)]))
      const excludeDays = [...excluded].filter((d) => d >= ctx.fromDay! && d < toDay).sort()
      const skipDays: string[] = []
      for (let d = ctx.fromDay!; d < toDay; d = addDays(d, 1)) if (!excluded.has(d)) skipDays.push(d)
      // Scan bounds only (the raw query also leaves out skipDays by local date): a day and an hour before the
      // first day read raw, whatever the zone's DST does.
      const starts = [ctx.watermarkDayStart!.getTime(), ...ctx.dirty.filter((d) => excluded.has(d.day)).map((d) => d.dayStart.getTime())]
      const lo = maxDate(ctx.from, new Date(Math.min(...starts) - 25 * 3_600_000))
      median = { rollup: { fromDay: ctx.fromDay!, toDay, excludeDays, byDay }, raw: { intervals: lo < ctx.to ? [[lo, ctx.to]] : [], skipDays }, reason: null }
    }
  }

  const usedRollup = Boolean(counts?.rollup || counts?.days || counts?.hours || uniques?.rollup || median?.rollup)
  const usedRaw = Boolean(median?.raw.intervals.length || (counts && (counts.raw.intervals.length || counts.raw.buckets.length)) || uniques?.raw.intervals.length)
  const source: Source = usedRollup ? (usedRaw ? 'rollup+raw' : 'rollup') : 'raw'
  const rawStarts = [...(counts && ctx.watermark && (counts.rollup || counts.days || counts.hours) ? counts.raw.intervals.filter(([a]) => a >= floorBucket(ctx.watermark!)).map(([a]) => a) : []),
    ...(uniques?.rollup && ctx.watermarkDayStart ? uniques.raw.intervals.filter(([a]) => a >= ctx.watermarkDayStart!).map(([a]) => a) : [])]
  const rawReason = [counts && { rollup: counts.rollup ?? counts.days ?? counts.hours, reason: counts.reason }, uniques, median].find((p) => p && !p.rollup)?.reason ?? null
  const used = new Set<Level>()
  if (counts?.days) used.add('day')
  if (counts?.hours) used.add('hour')
  if (counts?.rollup) used.add('5min')
  if (uniques?.rollup) used.add('daily_uniques')
  if (median?.rollup) used.add('daily_kpi')
  if (usedRaw || source === 'raw') used.add('raw')
  return {
    levels: LEVELS.filter((l) => used.has(l)),
    counts, uniques, median, source,
    rawAfter: source === 'rollup+raw' && rawStarts.length ? new Date(Math.min(...rawStarts.map((d) => d.getTime()))) : null,
    rawBuckets: (counts?.rollup?.exclude.length ?? 0),
    rawReason,
  }
}
