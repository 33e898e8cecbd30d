import type postgres from 'postgres'
import type { Sql, Tx } from '../../../lib/db.js'
import { filterDimensions, isTimeDimension } from './grammar.js'
import type { CountsPlan, DirtyBucket, Interval, UniquesPlan } from './plan.js'
import type { FilterModifiers } from '../filters.js'
import { DIMENSIONS, PROPERTY_DIMENSION, type Dimension, type Filter, type PlainDimension, type TimeDimension } from './schemas.js'

/**
 * The SQL of the query API: one statement per kind of metric, each a union of its rollup part and its raw part
 * (plan.ts decides the spans). Names (columns, units, formats) come from the fixed catalogs in schemas.ts; values
 * are always parameters. Groups are by ordinal, so a dimension's expression may carry parameters.
 */

type Fragment = postgres.PendingQuery<postgres.Row[]> | postgres.Fragment

/** postgres.js sends a Date[] under a type the server will not cast; ISO strings cast cleanly. */
const iso = (dates: Date[]) => dates.map((d) => d.toISOString())

const join = (tx: Tx, parts: Fragment[], sep: 'and' | 'or' | ','): Fragment =>
  parts.reduce((acc, p, i) => (i === 0 ? p : sep === ',' ? tx`${acc}, ${p}` : sep === 'and' ? tx`${acc} and ${p}` : tx`${acc} or ${p}`), tx`` as Fragment)

const TIME_UNITS: Record<TimeDimension, { unit: string; format: string }> = {
  'time:hour': { unit: 'hour', format: 'YYYY-MM-DD"T"HH24:00:00' },
  'time:day': { unit: 'day', format: 'YYYY-MM-DD' },
  'time:week': { unit: 'week', format: 'YYYY-MM-DD' },
  'time:month': { unit: 'month', format: 'YYYY-MM-DD' },
}

/** Where a dimension's value lives in one relation: its time column, its plain columns, its properties. */
interface Source {
  /** A local timestamp (already in the query's zone) to truncate, or null when the relation is by day (daily_uniques). */
  time: (tz: string) => Fragment
  column: (d: Dimension) => Fragment
}

const rawEvents = (tx: Tx, alias = 'e'): Source => ({
  time: (tz) => tx`(${tx(alias)}.occurred_at at time zone ${tz})`,
  column: (d) => {
    const prop = PROPERTY_DIMENSION.exec(d)?.[1]
    if (prop) return tx`coalesce(${tx(alias)}.properties->>${prop}, '')`
    const { raw, rollup } = DIMENSIONS[d as PlainDimension]
    const value = 'property' in raw ? tx`coalesce(${tx(alias)}.properties->>${raw.property}, '')` : tx`coalesce(${tx(alias)}.${tx(raw.column)}, '')`
    // The rollup keeps the first 200 characters of a value (rollup-queries.ts): raw reads the same, so both group alike.
    return rollup ? tx`left(${value}, 200)` : value
  },
})
const aggregations = (tx: Tx): Source => ({
  time: (tz) => tx`(a.bucket_start at time zone ${tz})`,
  column: (d) => tx`a.${tx(DIMENSIONS[d as PlainDimension].rollup!)}`,
})
const hourlyAggregations = (tx: Tx): Source => ({
  time: (tz) => tx`(h.hour_start at time zone ${tz})`,
  column: (d) => tx`h.${tx(DIMENSIONS[d as PlainDimension].rollup!)}`,
})
const dailyAggregations = (tx: Tx): Source => ({
  time: () => tx`g.day::timestamp`,
  column: (d) => tx`g.${tx(DIMENSIONS[d as PlainDimension].rollup!)}`,
})
const dailyUniques = (tx: Tx): Source => ({
  time: () => tx`u.day::timestamp`,
  column: () => tx`u.name`,
})

const dimensionSql = (tx: Tx, src: Source, d: Dimension, tz: string): Fragment => {
  if (isTimeDimension(d)) {
    const { unit, format } = TIME_UNITS[d]
    return tx`to_char(date_trunc(${unit}, ${src.time(tz)}), ${format})`
  }
  return src.column(d)
}

export function filterSql(tx: Tx, f: Filter, expr: (d: Dimension) => Fragment): Fragment {
  switch (f[0]) {
    case 'and': return tx`(${join(tx, (f[1] as Filter[]).map((g) => filterSql(tx, g, expr)), 'and')})`
    case 'or': return tx`(${join(tx, (f[1] as Filter[]).map((g) => filterSql(tx, g, expr)), 'or')})`
    case 'not': return tx`not ${filterSql(tx, f[1] as Filter, expr)}`
    default: {
      const [op, d, values, modifiers] = f as [string, Dimension, string[], FilterModifiers | undefined]
      // The live feed's semantics (../filters.ts matches): case-sensitive unless the filter says otherwise. Folding
      // is Unicode lower-casing on both sides: ICU's here (the database's own locale may be C, which folds only
      // A-Z), toLowerCase() there; filters.int.test.ts checks both on the same values.
      const folded = modifiers?.case_sensitive === false
      const e = folded ? tx`lower(${expr(d)} collate "und-x-icu")` : expr(d)
      const v = folded ? tx`lower(v collate "und-x-icu")` : tx`v`
      const matches = op === 'is' || op === 'is_not'
        ? (folded ? tx`${e} in (select ${v} from unnest(${values}::text[]) v)` : tx`${e} = any(${values}::text[])`)
        : tx`exists (select from unnest(${values}::text[]) v where strpos(${e}, ${v}) > 0)`
      return op === 'is' || op === 'contains' ? tx`(${matches})` : tx`not (${matches})`
    }
  }
}

const filtersSql = (tx: Tx, filters: Filter[], expr: (d: Dimension) => Fragment): Fragment =>
  filters.length ? tx`and ${join(tx, filters.map((f) => filterSql(tx, f, expr)), 'and')}` : tx``

const selectDims = (tx: Tx, src: Source, dims: Dimension[], tz: string): Fragment =>
  dims.length ? tx`${join(tx, dims.map((d, i) => tx`${dimensionSql(tx, src, d, tz)} as ${tx(`dim${i}`)}`), ',')},` : tx``
// Ordinals and dimN aliases are generated from counts, never from input: unsafe only splices digits.
const groupBy = (tx: Tx, n: number): Fragment =>
  n ? tx`group by ${tx.unsafe(Array.from({ length: n }, (_, i) => i + 1).join(', '))}` : tx``
const outerDims = (tx: Tx, n: number): Fragment =>
  n ? tx`${tx.unsafe(Array.from({ length: n }, (_, i) => `dim${i}`).join(', '))},` : tx``

/** `column` inside any of the intervals. */
const spanSql = (tx: Tx, column: Fragment, intervals: Interval[]): Fragment =>
  intervals.length ? tx`(${join(tx, intervals.map(([from, to]) => tx`(${column} >= ${from} and ${column} < ${to})`), 'or')})` : tx`false`

/** Raw events inside any of the intervals, or inside any of the (dirty) 5-minute buckets. */
export function rawSpanSql(tx: Tx, intervals: Interval[], buckets: Date[] = [], alias = 'e'): Fragment {
  const a = tx(alias)
  const parts: Fragment[] = intervals.map(([from, to]) => tx`(${a}.occurred_at >= ${from} and ${a}.occurred_at < ${to})`)
  if (buckets.length) {
    const lo = new Date(Math.min(...buckets.map((b) => b.getTime())))
    const hi = new Date(Math.max(...buckets.map((b) => b.getTime())) + 5 * 60_000)
    parts.push(tx`(${a}.occurred_at >= ${lo} and ${a}.occurred_at < ${hi}
      and date_bin('5 minutes', ${a}.occurred_at, timestamptz '2000-01-01 00:00:00+00') = any(${iso(buckets)}::timestamptz[]))`)
  }
  return parts.length ? tx`(${join(tx, parts, 'or')})` : tx`false`
}

export interface CountRow { [k: `dim${number}`]: string; cnt: number; [k: `n${number}`]: number }

/**
 * Event counts per dimension tuple: `cnt` (every matching event) and `n<i>` (matching events named names[i]), summed
 * over the rollup part and the raw part of the plan.
 */
export function countEvents(tx: Tx, p: { tenantId: string; tz: string; dims: Dimension[]; filters: Filter[]; plan: CountsPlan; named: string[] }) {
  const n = p.dims.length
  const nameFilter = (col: Fragment) => (p.plan.names ? tx`and ${col} = any(${p.plan.names}::text[])` : tx``)
  const parts: Fragment[] = []
  const days = p.plan.days
  if (days) {
    const src = dailyAggregations(tx)
    parts.push(tx`
      select ${selectDims(tx, src, p.dims, p.tz)} sum(g.events) as cnt
             ${p.named.length ? tx`, ${join(tx, p.named.map((name, i) => tx`sum(g.events) filter (where g.name = ${name}) as ${tx(`n${i}`)}`), ',')}` : tx``}
        from analytics.daily_aggregations g
       where g.tenant_id = ${p.tenantId} and g.day >= ${days.fromDay}::date and g.day < ${days.toDay}::date
             ${days.excludeDays.length ? tx`and g.day <> all(${days.excludeDays}::date[])` : tx``}
             ${nameFilter(tx`g.name`)}
             ${filtersSql(tx, p.filters, src.column)}
       ${groupBy(tx, n)}`)
  }
  const h = p.plan.hours
  if (h) {
    const src = hourlyAggregations(tx)
    parts.push(tx`
      select ${selectDims(tx, src, p.dims, p.tz)} sum(h.events) as cnt
             ${p.named.length ? tx`, ${join(tx, p.named.map((name, i) => tx`sum(h.events) filter (where h.name = ${name}) as ${tx(`n${i}`)}`), ',')}` : tx``}
        from analytics.hourly_aggregations h
       where h.tenant_id = ${p.tenantId} and ${spanSql(tx, tx`h.hour_start`, h.intervals)}
             ${h.exclude.length ? tx`and h.hour_start <> all(${iso(h.exclude)}::timestamptz[])` : tx``}
             ${nameFilter(tx`h.name`)}
             ${filtersSql(tx, p.filters, src.column)}
       ${groupBy(tx, n)}`)
  }
  const r = p.plan.rollup
  if (r) {
    const src = aggregations(tx)
    parts.push(tx`
      select ${selectDims(tx, src, p.dims, p.tz)} sum(a.events) as cnt
             ${p.named.length ? tx`, ${join(tx, p.named.map((name, i) => tx`sum(a.events) filter (where a.name = ${name}) as ${tx(`n${i}`)}`), ',')}` : tx``}
        from analytics.event_aggregations a
       where a.tenant_id = ${p.tenantId} and ${spanSql(tx, tx`a.bucket_start`, r.intervals)}
             ${r.exclude.length ? tx`and a.bucket_start <> all(${iso(r.exclude)}::timestamptz[])` : tx``}
             ${nameFilter(tx`a.name`)}
             ${filtersSql(tx, p.filters, src.column)}
       ${groupBy(tx, n)}`)
  }
  if (p.plan.raw.intervals.length || p.plan.raw.buckets.length) {
    const src = rawEvents(tx)
    parts.push(tx`
      select ${selectDims(tx, src, p.dims, p.tz)} count(*) as cnt
             ${p.named.length ? tx`, ${join(tx, p.named.map((name, i) => tx`count(*) filter (where e.name = ${name}) as ${tx(`n${i}`)}`), ',')}` : tx``}
        from analytics.events e
       where e.tenant_id = ${p.tenantId} and ${rawSpanSql(tx, p.plan.raw.intervals, p.plan.raw.buckets)}
             ${nameFilter(tx`e.name`)}
             ${filtersSql(tx, p.filters, src.column)}
       ${groupBy(tx, n)}`)
  }
  const union = parts.reduce((acc, q, i) => (i === 0 ? q : tx`${acc} union all ${q}`))
  return tx<CountRow[]>`
    select ${outerDims(tx, n)} coalesce(sum(cnt), 0)::float8 as cnt
           ${p.named.length ? tx`, ${tx.unsafe(p.named.map((_, i) => `coalesce(sum(n${i}), 0)::float8 as n${i}`).join(', '))}` : tx``}
      from (${union}) p
     ${groupBy(tx, n)}`
}

export interface UniqueRow { [k: `dim${number}`]: string; leads: number; visitors: number }

/** Unique leads and visitors per dimension tuple: daily_uniques' subjects for the rolled-up days, raw events' for the rest. */
export function countUniques(tx: Tx, p: { tenantId: string; tz: string; dims: Dimension[]; filters: Filter[]; plan: UniquesPlan; kinds: ('lead' | 'visitor')[] }) {
  const n = p.dims.length
  const parts: Fragment[] = []
  const r = p.plan.rollup
  if (r) {
    const src = dailyUniques(tx)
    parts.push(tx`
      select ${selectDims(tx, src, p.dims, p.tz)} u.kind, u.subject
        from analytics.daily_uniques u
       where u.tenant_id = ${p.tenantId} and u.day >= ${r.fromDay}::date and u.day < ${r.toDay}::date
             ${r.excludeDays.length ? tx`and u.day <> all(${r.excludeDays}::date[])` : tx``}
             and u.kind = any(${p.kinds}::text[])
             ${filtersSql(tx, p.filters, src.column)}`)
  }
  if (p.plan.raw.intervals.length) {
    const src = rawEvents(tx)
    const span = rawSpanSql(tx, p.plan.raw.intervals)
    if (p.kinds.includes('lead')) {
      parts.push(tx`
        select ${selectDims(tx, src, p.dims, p.tz)} 'lead' as kind, e.lead_id::text as subject
          from analytics.events e
         where e.tenant_id = ${p.tenantId} and ${span} and e.lead_id is not null ${filtersSql(tx, p.filters, src.column)}`)
    }
    if (p.kinds.includes('visitor')) {
      parts.push(tx`
        select ${selectDims(tx, src, p.dims, p.tz)} 'visitor' as kind, e.anonymous_id as subject
          from analytics.events e
         where e.tenant_id = ${p.tenantId} and ${span} and e.anonymous_id is not null ${filtersSql(tx, p.filters, src.column)}`)
    }
  }
  if (!parts.length) return Promise.resolve([] as UniqueRow[])
  const union = parts.reduce((acc, q, i) => (i === 0 ? q : tx`${acc} union all ${q}`))
  return tx<UniqueRow[]>`
    select ${outerDims(tx, n)}
           count(distinct subject) filter (where kind = 'lead')::float8 as leads,
           count(distinct subject) filter (where kind = 'visitor')::float8 as visitors
      from (${union}) s
     ${groupBy(tx, n)}`
}

export const INBOUND = 'whatsapp.message_received'
export const OUTBOUND = 'whatsapp.message_sent'

/** As the daily KPI (rollup-queries.ts FIRST_RESPONSE_WINDOW_HOURS): waits and replies count within 24 hours. */
export const FIRST_RESPONSE_WINDOW_HOURS = 24

export interface MedianRow { [k: `dim${number}`]: string; median: number | null }

/**
 * Median first response, defined as the daily KPI of analytics.metrics is: a wait starts at a lead's inbound WhatsApp
 * message with no message of the lead's conversation in the 24 hours before it, or whose previous message was ours;
 * it lasts until our next message, if that comes within 24 hours. Waits count in the period they start in. The
 * definition does not depend on where the scan starts, so a day's median here equals its KPI row. From raw events of
 * those two names only (index events_name_time_idx).
 */
export function medianFirstResponse(tx: Tx, p: { tenantId: string; tz: string; dims: Dimension[]; intervals: Interval[]; skipDays: string[] }) {
  const n = p.dims.length
  const src = rawEvents(tx, 'm')
  const window = tx`make_interval(hours => ${FIRST_RESPONSE_WINDOW_HOURS})`
  const lo = new Date(Math.min(...p.intervals.map(([a]) => a.getTime())))
  const hi = new Date(Math.max(...p.intervals.map(([, b]) => b.getTime())))
  return tx<MedianRow[]>`
    with m as (
      select e.lead_id, e.name, e.occurred_at,
             lag(e.name) over w as previous, lag(e.occurred_at) over w as previous_at,
             min(e.occurred_at) filter (where e.name = ${OUTBOUND})
               over (partition by e.lead_id order by e.occurred_at, e.id rows between 1 following and unbounded following) as reply_at
        from analytics.events e
       where e.tenant_id = ${p.tenantId} and e.name in (${INBOUND}, ${OUTBOUND}) and e.lead_id is not null
         and e.occurred_at >= ${lo}::timestamptz - ${window} and e.occurred_at < ${hi}::timestamptz + ${window}
      window w as (partition by e.lead_id order by e.occurred_at, e.id)
    )
    select ${selectDims(tx, src, p.dims, p.tz)}
           (percentile_cont(0.5) within group (order by extract(epoch from m.reply_at - m.occurred_at)::numeric))::float8 as median
      from m
     where m.name = ${INBOUND} and (m.previous is null or m.previous = ${OUTBOUND} or m.previous_at < m.occurred_at - ${window})
       and m.reply_at is not null and m.reply_at <= m.occurred_at + ${window}
       and ${rawSpanSql(tx, p.intervals, [], 'm')}
       ${p.skipDays.length ? tx`and not ((m.occurred_at at time zone ${p.tz})::date = any(${p.skipDays}::date[]))` : tx``}
     ${groupBy(tx, n)}`
}

/** The daily KPI first_response_median_seconds of the given days (tenant timezone), by day when asked. */
export const dailyMedians = (tx: Tx, p: { tenantId: string; fromDay: string; toDay: string; excludeDays: string[]; byDay: boolean }) =>
  tx<MedianRow[]>`
    select ${p.byDay ? tx`to_char(day, 'YYYY-MM-DD') as dim0,` : tx``} value::float8 as median
      from analytics.metrics
     where tenant_id = ${p.tenantId} and metric = 'first_response_median_seconds' and dimension = ''
       and day >= ${p.fromDay}::date and day < ${p.toDay}::date
       ${p.excludeDays.length ? tx`and day <> all(${p.excludeDays}::date[])` : tx``}`

// ---------------------------------------------------------------------------------------------------------------
// Planning reads

export interface PeriodBounds { from: Date; to: Date }

/** Calendar dates of a zone as instants, as PostgreSQL reads them (the same instants its `at time zone` groups by). */
export const zonedInstants = (tx: Tx, tz: string, dates: string[]) =>
  tx<{ at: Date }[]>`select (d::date::timestamp at time zone ${tz}) as at from unnest(${dates}::text[]) with ordinality as t(d, i) order by i`
    .then((r) => r.map((x) => x.at))

export interface RollupState {
  watermark: Date | null
  watermarkDay: string | null
  watermarkDayStart: Date | null
  dirty: DirtyBucket[]
  staleDays: { day: string; dayStart: Date; dayEnd: Date }[]
}

/**
 * In one statement: the bounds (dates of the zone, or ISO instants) as instants, as PostgreSQL reads the zone (the
 * same instants its `at time zone` groups by); the tenant's watermark and its day in `tz`; the buckets marked dirty
 * and the days waiting for the day level between the first and the last bound, with their days' starts and ends.
 */
export const readRollupState = (tx: Tx, tenantId: string, tz: string, bounds: string[]) =>
  tx<{ instants: string[]; watermark: Date | null; watermarkDay: string | null; watermarkDayStart: Date | null; dirty: { bucket: string; day: string; dayStart: string; dayEnd: string }[]; staleDays: { day: string; dayStart: string; dayEnd: string }[] }[]>`
    with b as (
      select i, case when length(v) = 10 then (v::date::timestamp at time zone ${tz}) else v::timestamptz end as at
        from unnest(${bounds}::text[]) with ordinality as t(v, i)
    ), span as (select min(at) as lo, max(at) as hi from b),
    w as (select watermark from analytics.rollup_state where tenant_id = ${tenantId})
    select (select json_agg(at order by i) from b) as instants,
           (select watermark from w) as watermark,
           (select to_char((watermark at time zone ${tz})::date, 'YYYY-MM-DD') from w) as watermark_day,
           (select ((watermark at time zone ${tz})::date::timestamp at time zone ${tz}) from w) as watermark_day_start,
           coalesce((select json_agg(json_build_object(
                       'bucket', d.bucket_start,
                       'day', to_char((d.bucket_start at time zone ${tz})::date, 'YYYY-MM-DD'),
                       'dayStart', ((d.bucket_start at time zone ${tz})::date::timestamp at time zone ${tz}),
                       'dayEnd', (((d.bucket_start at time zone ${tz})::date + 1)::timestamp at time zone ${tz})) order by d.bucket_start)
                       from (select distinct bucket_start from analytics.rollup_dirty, span
                              where tenant_id = ${tenantId} and bucket_start >= span.lo and bucket_start < span.hi) d), '[]') as dirty,
           coalesce((select json_agg(json_build_object(
                       'day', to_char(s.day, 'YYYY-MM-DD'),
                       'dayStart', (s.day::timestamp at time zone ${tz}),
                       'dayEnd', ((s.day + 1)::timestamp at time zone ${tz})) order by s.day)
                       from (select distinct day from analytics.daily_aggregations_dirty, span
                              where tenant_id = ${tenantId} and day >= (span.lo at time zone ${tz})::date
                                and day <= (span.hi at time zone ${tz})::date) s), '[]') as stale_days`
    .then(([r]) => ({
      instants: r!.instants.map((x) => new Date(x)),
      watermark: r!.watermark,
      watermarkDay: r!.watermarkDay,
      watermarkDayStart: r!.watermarkDayStart,
      dirty: r!.dirty.map((d) => ({ bucket: new Date(d.bucket), day: d.day, dayStart: new Date(d.dayStart), dayEnd: new Date(d.dayEnd) })),
      staleDays: r!.staleDays.map((d) => ({ day: d.day, dayStart: new Date(d.dayStart), dayEnd: new Date(d.dayEnd) })),
    }))

export const tenantTimezone = (tx: Tx, tenantId: string) =>
  tx<{ timezone: string }[]>`select timezone from core.tenants where id = ${tenantId}`.then((r) => r[0]?.timezone ?? 'UTC')

// ---------------------------------------------------------------------------------------------------------------
// Funnels

export interface FunnelStep { name: string; filters: Filter[] }

/**
 * Per step, the subjects (a lead, else an anonymous visitor) who did every step so far in order, each step at or
 * after the previous one and within `windowSeconds` of the first. The first step must fall in [from, to). Each step
 * reads only its event name's rows in the span (events_name_time_idx) and joins them to the previous step's subjects
 * by hash: the cost is the rows of those names, not of the tenant.
 */
export function funnelCounts(tx: Tx, p: { tenantId: string; steps: FunnelStep[]; from: Date; to: Date; windowSeconds: number }) {
  const subject = tx`coalesce(e.lead_id::text, 'a:' || e.anonymous_id)`
  const src = rawEvents(tx)
  const ctes: Fragment[] = p.steps.map((step, i) => {
    const name = tx(`s${i}`)
    const filters = filtersSql(tx, step.filters, src.column)
    if (i === 0) {
      return tx`${name} as (
        select ${subject} as subject, min(e.occurred_at) as t0, min(e.occurred_at) as t
          from analytics.events e
         where e.tenant_id = ${p.tenantId} and e.name = ${step.name} and e.occurred_at >= ${p.from} and e.occurred_at < ${p.to}
           and (e.lead_id is not null or e.anonymous_id is not null) ${filters}
         group by 1)`
    }
    const strict = step.name === p.steps[i - 1]!.name
    return tx`${name} as (
      select s.subject, s.t0, min(e.occurred_at) as t
        from ${tx(`s${i - 1}`)} s
        join analytics.events e
          on e.tenant_id = ${p.tenantId} and e.name = ${step.name} and ${subject} = s.subject
         and ${strict ? tx`e.occurred_at > s.t` : tx`e.occurred_at >= s.t`}
         and e.occurred_at <= s.t0 + make_interval(secs => ${p.windowSeconds})
       where e.occurred_at >= ${p.from} and e.occurred_at < ${p.to}::timestamptz + make_interval(secs => ${p.windowSeconds}) ${filters}
       group by s.subject, s.t0)`
  })
  const counts = tx.unsafe(p.steps.map((_, i) => `(select count(*) from s${i})::int as c${i}`).join(', '))
  return tx<Record<string, number>[]>`with ${join(tx, ctes, ',')} select ${counts}`
    .then(([r]) => p.steps.map((_, i) => Number(r![`c${i}`])))
}

export { filterDimensions }

// ---------------------------------------------------------------------------------------------------------------
// The day level (migration 0023): analytics.daily_aggregations, summed from the 5-minute rollups.

const AGG_COLUMNS = ['name', 'source', 'channel', 'country', 'device', 'producer', 'form_id', 'flow_id', 'template', 'campaign_id', 'experiment', 'variant'] as const

/** Cross-tenant: the tenants with a day to rebuild (ids only, through the migration's security-definer function). */
export const dirtyDayTenants = (sql: Sql, limit: number) =>
  sql<{ tenantId: string }[]>`select tenant_id from analytics.daily_aggregations_dirty_tenants(${limit})`.then((r) => r.map((x) => x.tenantId))

/**
 * Takes up to `limit` of the tenant's dirty days: deletes their committed marks, returns the days. A mark still
 * uncommitted survives and the day is rebuilt again next time (the rebuild runs in later statements, whose snapshots
 * see every rollup whose mark this one deleted).
 */
export const claimDirtyDays = (tx: Tx, limit: number) =>
  tx<{ day: string }[]>`
    with picked as (
      select distinct day from analytics.daily_aggregations_dirty where tenant_id = core.current_tenant_id() order by day limit ${limit}
    ), gone as (
      delete from analytics.daily_aggregations_dirty d using picked p
       where d.tenant_id = core.current_tenant_id() and d.day = p.day returning d.day
    )
    select distinct to_char(day, 'YYYY-MM-DD') as day from gone order by 1`.then((r) => r.map((x) => x.day))

/** The days' rows rebuilt from analytics.event_aggregations (days in the tenant's timezone). */
export async function rebuildDailyAggregations(tx: Tx, days: string[]): Promise<number> {
  if (days.length === 0) return 0
  const tz = await tenantTimezoneOfTransaction(tx)
  await tx`delete from analytics.daily_aggregations where tenant_id = core.current_tenant_id() and day = any(${days}::date[])`
  const cols = tx.unsafe(AGG_COLUMNS.join(', '))
  const first = days[0]!, last = days[days.length - 1]!
  return tx`
    insert into analytics.daily_aggregations (tenant_id, day, ${cols}, events)
    select tenant_id, (bucket_start at time zone ${tz})::date, ${cols}, sum(events)
      from analytics.event_aggregations
     where tenant_id = core.current_tenant_id()
       and bucket_start >= (${first}::date::timestamp at time zone ${tz}) and bucket_start < ((${last}::date + 1)::timestamp at time zone ${tz})
       and (bucket_start at time zone ${tz})::date = any(${days}::date[])
     group by 1, 2, ${cols}`.then((r) => r.count)
}

const tenantTimezoneOfTransaction = (tx: Tx) =>
  tx<{ timezone: string }[]>`select timezone from core.tenants where id = core.current_tenant_id()`.then((r) => r[0]?.timezone ?? 'UTC')

/** The tenant's days with a mark, in [fromDay, toDay): the query API reads those from the 5-minute level. */
export const dirtyDays = (tx: Tx, tenantId: string, fromDay: string, toDay: string) =>
  tx<{ day: string }[]>`
    select distinct to_char(day, 'YYYY-MM-DD') as day from analytics.daily_aggregations_dirty
     where tenant_id = ${tenantId} and day >= ${fromDay}::date and day < ${toDay}::date order by 1`.then((r) => r.map((x) => x.day))
