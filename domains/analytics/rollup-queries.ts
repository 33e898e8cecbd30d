import type { Queryable, Sql, Tx } from '../../lib/db.js'

/**
 * SQL of the rollups (migration 0022). Every function runs under the transaction's tenant (withTenant) unless it
 * says cross-tenant; those go through the migration's security-definer functions, which answer ids and counts only.
 */

export const BUCKET_MINUTES = 5
const BUCKET_MS = BUCKET_MINUTES * 60_000

/** The 5-minute bucket a moment falls in, aligned in UTC (analytics.bucket_of in SQL). */
export const bucketOf = (at: Date) => new Date(Math.floor(at.getTime() / BUCKET_MS) * BUCKET_MS)

/** A dimension value from an event's properties: '' when absent, capped so a huge value cannot break the key's index. */
const prop = (tx: Tx, key: string) => tx`left(coalesce(e.properties ->> ${key}, ''), 200)`
const col = (tx: Tx, name: string) => tx`left(coalesce(e.${tx(name)}, ''), 200)`

/** Cross-tenant: tenants with a closed dirty bucket, oldest first. */
export const dirtyTenants = (sql: Queryable, now: Date, limit: number) =>
  sql<{ tenantId: string; oldest: Date }[]>`select tenant_id, oldest from analytics.rollup_dirty_tenants(${now}, ${limit})`

/**
 * One roll-up per tenant at a time, for this transaction: two runs rebuilding the same bucket from different
 * snapshots would fight over its rows. False when another run holds it (that run does the work).
 */
export const tryLockTenantRollup = (tx: Tx) =>
  tx<{ locked: boolean }[]>`select pg_try_advisory_xact_lock(hashtext('analytics.roll_up'), hashtext(core.current_tenant_id()::text)) as locked`
    .then((r) => r[0]!.locked)

/** For this transaction only (set_config(…, true)): room for a large batch's group by and distinct. */
export const setRollupWorkMem = (tx: Tx) => tx`select set_config('work_mem', '64MB', true)`

export const tenantTimezone = (tx: Tx) =>
  tx<{ timezone: string }[]>`select timezone from core.tenants where id = core.current_tenant_id()`.then((r) => r[0]?.timezone ?? 'UTC')

/**
 * Takes up to `limit` of the tenant's closed dirty buckets, oldest first: deletes every committed mark they have and
 * says, per bucket, whether any mark asks for a recount (rows changed or went). Marks still uncommitted are invisible
 * here and survive, so the bucket is rebuilt again once they commit. The rebuild must run in later statements of
 * the same transaction: each takes a new snapshot, which sees every event whose mark this one deleted.
 */
export const claimDirtyBuckets = (tx: Tx, now: Date, limit: number) =>
  tx<{ bucketStart: Date; recount: boolean }[]>`
    with picked as (
      select distinct bucket_start from analytics.rollup_dirty
       where tenant_id = core.current_tenant_id() and bucket_start <= ${now}::timestamptz - interval '5 minutes'
       order by bucket_start limit ${limit}
    ), gone as (
      delete from analytics.rollup_dirty d using picked p
       where d.tenant_id = core.current_tenant_id() and d.bucket_start = p.bucket_start
      returning d.bucket_start, d.recount
    )
    select bucket_start, bool_or(recount) as recount from gone group by 1 order by 1`

/** postgres.js sends a Date[] under a type the server will not cast; ISO strings cast cleanly. */
const iso = (dates: Date[]) => dates.map((d) => d.toISOString())

/**
 * The buckets as runs of consecutive buckets, [start, end) each. A batch's buckets are mostly one run (a backlog, a
 * bulk load) or a few (late events): each run is one range scan of (tenant_id, occurred_at), and every event in a
 * run belongs to one of the buckets, so no per-row bucket test is needed. (A per-row `bucket_of(occurred_at) =
 * any($buckets)` over the whole span was a linear probe of the array for every event: 2,000 buckets made the roll-up
 * of 10M events take half an hour.)
 */
export function runsOf(buckets: Date[], size = BUCKET_MS): { from: Date; to: Date }[] {
  const times = [...new Set(buckets.map((b) => b.getTime()))].sort((a, b) => a - b)
  const runs: { from: Date; to: Date }[] = []
  for (const t of times) {
    const last = runs[runs.length - 1]
    if (last && last.to.getTime() === t) last.to = new Date(t + size)
    else runs.push({ from: new Date(t), to: new Date(t + size) })
  }
  return runs
}

/** `column` inside one of the runs. */
const inRuns = (tx: Tx, column: ReturnType<Tx>, runs: { from: Date; to: Date }[]) =>
  runs.reduce((acc, r, i) => {
    const one = tx`(${column} >= ${r.from} and ${column} < ${r.to})`
    return i === 0 ? one : tx`${acc} or ${one}`
  }, tx``)

/** The buckets' counts, rebuilt from raw: their rows deleted, then one insert … group by. Returns the rows written. */
export async function rebuildAggregations(tx: Tx, buckets: Date[]): Promise<number> {
  const runs = runsOf(buckets)
  await tx`delete from analytics.event_aggregations where tenant_id = core.current_tenant_id() and (${inRuns(tx, tx`bucket_start`, runs)})`
  return insertAggregations(tx, tx`e.tenant_id = core.current_tenant_id() and (${inRuns(tx, tx`e.occurred_at`, runs)})`)
}

export const HOUR_MS = 3_600_000
const AGG_COLUMNS = ['name', 'source', 'channel', 'country', 'device', 'producer', 'form_id', 'flow_id', 'template', 'campaign_id', 'experiment', 'variant'] as const

/**
 * The hour level (migration 0048): the UTC hours of the buckets, rebuilt from their 5-minute rows (deleted, then one
 * insert … group by). Runs in the transaction that rebuilt the buckets, after them, so an hour's rows always equal the
 * sum of its 5-minute rows as committed. Returns the rows written.
 */
export async function rebuildHourlyAggregations(tx: Tx, buckets: Date[]): Promise<number> {
  if (buckets.length === 0) return 0
  const runs = runsOf(buckets.map((b) => new Date(Math.floor(b.getTime() / HOUR_MS) * HOUR_MS)), HOUR_MS)
  const cols = tx.unsafe(AGG_COLUMNS.join(', '))
  await tx`delete from analytics.hourly_aggregations where tenant_id = core.current_tenant_id() and (${inRuns(tx, tx`hour_start`, runs)})`
  return tx`
    insert into analytics.hourly_aggregations (tenant_id, hour_start, ${cols}, events)
    select tenant_id, date_trunc('hour', bucket_start, 'UTC'), ${cols}, sum(events)
      from analytics.event_aggregations
     where tenant_id = core.current_tenant_id() and (${inRuns(tx, tx`bucket_start`, runs)})
     group by 1, 2, ${cols}`.then((r) => r.count)
}

/** insert … select … group by over the events `where` selects: the roll-up's statement, and the bench's baseline. */
export const insertAggregations = (tx: Tx, where: ReturnType<Tx>) =>
  tx`
    insert into analytics.event_aggregations (tenant_id, bucket_start, name, source, channel, country, device, producer,
                                              form_id, flow_id, template, campaign_id, experiment, variant, events)
    select e.tenant_id, analytics.bucket_of(e.occurred_at), e.name, ${col(tx, 'acq_source')}, ${col(tx, 'acq_channel')}, ${col(tx, 'country')},
           ${col(tx, 'device')}, ${col(tx, 'source')}, ${prop(tx, 'formId')}, ${prop(tx, 'flowId')}, ${prop(tx, 'templateName')},
           ${prop(tx, 'campaignId')}, ${prop(tx, 'experimentKey')}, ${prop(tx, 'variationKey')}, count(*)
      from analytics.events e
     where ${where}
     group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14`.then((r) => r.count)

/** A tenant day as the UTC moments it spans, in SQL: [dayStart(d), dayStart(d + 1)). */
const dayStart = (tx: Tx, day: string, tz: string) => tx`(${day}::date::timestamp at time zone ${tz})`

/** The days (tenant timezone, 'YYYY-MM-DD') the buckets touch. */
export const daysOfBuckets = (tx: Tx, buckets: Date[], tz: string) =>
  buckets.length === 0
    ? Promise.resolve([] as string[])
    : tx<{ day: string }[]>`
        select distinct d::text as day from unnest(${iso(buckets)}::timestamptz[]) b,
          lateral (values ((b at time zone ${tz})::date), (((b + interval '5 minutes' - interval '1 microsecond') at time zone ${tz})::date)) v(d)
         order by 1`.then((r) => r.map((x) => x.day))

/** The days (tenant timezone) of the tenant's closed buckets still marked dirty: the next batches will rebuild them. */
export const daysStillDirty = (tx: Tx, now: Date, tz: string) =>
  tx<{ day: string }[]>`
    select distinct ((bucket_start at time zone ${tz})::date)::text as day from analytics.rollup_dirty
     where tenant_id = core.current_tenant_id() and bucket_start <= ${now}::timestamptz - interval '5 minutes'`.then((r) => r.map((x) => x.day))

/**
 * Unique subjects of the buckets' events, added to their days: exact for buckets whose rows were only added to (the
 * set of a day's subjects only grows, and adding a subject twice is adding it once).
 */
export async function addDailyUniques(tx: Tx, buckets: Date[], tz: string): Promise<void> {
  if (buckets.length === 0) return
  await insertDailyUniques(tx, tz, tx`e.tenant_id = core.current_tenant_id() and (${inRuns(tx, tx`e.occurred_at`, runsOf(buckets))})`)
}

/** The days' unique subjects rebuilt from raw (rows of the day changed or went: subjects may have left). */
export async function rebuildDailyUniques(tx: Tx, days: string[], tz: string): Promise<void> {
  if (days.length === 0) return
  await tx`delete from analytics.daily_uniques where tenant_id = core.current_tenant_id() and day = any(${days}::date[])`
  const first = days[0]!
  const last = days[days.length - 1]!
  await insertDailyUniques(tx, tz, tx`
    e.tenant_id = core.current_tenant_id()
    and e.occurred_at >= ${dayStart(tx, first, tz)} and e.occurred_at < (${last}::date + 1)::timestamp at time zone ${tz}
    and (e.occurred_at at time zone ${tz})::date = any(${days}::date[])`)
}

const insertDailyUniques = (tx: Tx, tz: string, where: ReturnType<Tx>) =>
  tx`
    insert into analytics.daily_uniques (tenant_id, day, name, kind, subject)
    select distinct e.tenant_id, (e.occurred_at at time zone ${tz})::date, e.name, s.kind, s.subject
      from analytics.events e
      cross join lateral (values ('lead', e.lead_id::text), ('visitor', e.anonymous_id)) s(kind, subject)
     where ${where} and s.subject is not null
    on conflict do nothing`

/** The event names the daily KPIs read. */
export const METRIC_EVENTS = [
  'lead.created', 'lead.qualified', 'lead.converted',
  'whatsapp.message_received', 'whatsapp.message_sent', 'whatsapp.message_delivered', 'whatsapp.message_read',
  'bot.conversation_started', 'bot.conversation_completed', 'bot.conversation_handed_over',
  'form.viewed', 'form.submitted', 'onboarding.started', 'onboarding.completed',
] as const

/** A reply counts for first-response time only within this long; a lead message unanswered for longer is not a response time. */
export const FIRST_RESPONSE_WINDOW_HOURS = 24

/**
 * The days' KPIs rebuilt from raw (analytics.metrics): deleted, then one insert over the events the KPIs read.
 * First-response time looks 24 hours back (is this lead message the first since our last reply?) and 24 hours ahead
 * (the reply), so a change on day D also changes D − 1 and D + 1: the caller passes those days too.
 */
export async function rebuildMetrics(tx: Tx, days: string[], tz: string): Promise<number> {
  if (days.length === 0) return 0
  await tx`delete from analytics.metrics where tenant_id = core.current_tenant_id() and day = any(${days}::date[])`
  const first = days[0]!
  const last = days[days.length - 1]!
  const window = tx`make_interval(hours => ${FIRST_RESPONSE_WINDOW_HOURS})`
  return tx`
    with ev as (
      select e.id, e.name, e.lead_id, e.occurred_at, e.properties, (e.occurred_at at time zone ${tz})::date as day
        from analytics.events e
       where e.tenant_id = core.current_tenant_id() and e.name = any(${METRIC_EVENTS as unknown as string[]}::text[])
         and e.occurred_at >= ${dayStart(tx, first, tz)} - ${window}
         and e.occurred_at < (${last}::date + 1)::timestamp at time zone ${tz} + ${window}
    ), d as (
      select * from ev where day = any(${days}::date[])
    ), chat as (
      select c.day, c.name, c.occurred_at,
             lag(c.name) over w as prev_name, lag(c.occurred_at) over w as prev_at,
             min(c.occurred_at) filter (where c.name = 'whatsapp.message_sent')
               over (partition by c.lead_id order by c.occurred_at, c.id rows between 1 following and unbounded following) as next_sent
        from ev c
       where c.lead_id is not null and c.name in ('whatsapp.message_received', 'whatsapp.message_sent')
      window w as (partition by c.lead_id order by c.occurred_at, c.id)
    ), responses as (
      -- A lead message that starts a wait (none before it within the window, or our reply was last), and its first reply.
      select day, extract(epoch from next_sent - occurred_at)::numeric as seconds
        from chat
       where name = 'whatsapp.message_received' and day = any(${days}::date[])
         and (prev_name is null or prev_name = 'whatsapp.message_sent' or prev_at < occurred_at - ${window})
         and next_sent is not null and next_sent <= occurred_at + ${window}
    ), rates (day, metric, dimension, numerator, denominator) as (
      select day, 'lead_qualified_rate', '',
             count(distinct lead_id) filter (where name = 'lead.qualified'), count(distinct lead_id) filter (where name = 'lead.created')
        from d group by day
      union all
      select day, 'lead_converted_rate', '',
             count(distinct lead_id) filter (where name = 'lead.converted'), count(distinct lead_id) filter (where name = 'lead.qualified')
        from d group by day
      union all
      select day, 'whatsapp_delivery_rate', '',
             count(distinct properties ->> 'messageId') filter (where name = 'whatsapp.message_delivered'),
             count(distinct properties ->> 'messageId') filter (where name = 'whatsapp.message_sent')
        from d group by day
      union all
      select day, 'whatsapp_read_rate', '',
             count(distinct properties ->> 'messageId') filter (where name = 'whatsapp.message_read'),
             count(distinct properties ->> 'messageId') filter (where name = 'whatsapp.message_delivered')
        from d group by day
      union all
      select day, 'bot_completion_rate', '',
             count(distinct properties ->> 'conversationId') filter (where name = 'bot.conversation_completed'),
             count(distinct properties ->> 'conversationId') filter (where name = 'bot.conversation_started')
        from d group by day
      union all
      select day, 'bot_handover_rate', '',
             count(distinct properties ->> 'conversationId') filter (where name = 'bot.conversation_handed_over'),
             count(distinct properties ->> 'conversationId') filter (where name = 'bot.conversation_started')
        from d group by day
      union all
      select day, 'form_conversion_rate', left(properties ->> 'formId', 200),
             count(*) filter (where name = 'form.submitted'), count(*) filter (where name = 'form.viewed')
        from d where name in ('form.viewed', 'form.submitted') and properties ->> 'formId' is not null group by 1, 3
      union all
      select day, 'onboarding_completion_rate', '',
             count(*) filter (where name = 'onboarding.completed'), count(*) filter (where name = 'onboarding.started')
        from d group by day
    ), kpis (day, metric, dimension, numerator, denominator, value) as (
      select day, metric, dimension, numerator, denominator, round(numerator::numeric / nullif(denominator, 0), 6)
        from rates where numerator > 0 or denominator > 0
      union all
      select day, 'leads', left(coalesce(properties ->> 'leadSource', ''), 200), count(*), null, count(*)
        from d where name = 'lead.created' group by 1, 3
      union all
      -- The day's median is its value; numerator and denominator are the sum and count of response times (a range's
      -- mean combines exactly from them; a range's median is computed from raw).
      select day, 'first_response_median_seconds', '', trim_scale(sum(seconds)), count(*), trim_scale(percentile_cont(0.5) within group (order by seconds)::numeric)
        from responses group by day
    )
    insert into analytics.metrics (tenant_id, day, metric, dimension, numerator, denominator, value)
    select core.current_tenant_id(), day, metric, dimension, numerator, denominator, value from kpis`.then((r) => r.count)
}

/** After a run: the tenant's watermark (the oldest bucket still dirty, or the open bucket) and what the run did. */
export const recordRollupRun = (tx: Tx, now: Date, buckets: number) =>
  tx<{ watermark: Date }[]>`
    insert into analytics.rollup_state as s (tenant_id, watermark, last_run_at, buckets_rolled_up)
    select core.current_tenant_id(),
           least(analytics.bucket_of(${now}), (select min(bucket_start) from analytics.rollup_dirty where tenant_id = core.current_tenant_id())),
           ${now}, ${buckets}
    on conflict (tenant_id) do update
      set watermark = excluded.watermark, last_run_at = excluded.last_run_at, buckets_rolled_up = s.buckets_rolled_up + excluded.buckets_rolled_up
    returning watermark`.then((r) => r[0]!.watermark)

/**
 * The tenant's watermark now: every bucket before it is rolled up and clean. Read live from the dirty marks (a late
 * event lowers it at once), capped by the open bucket; with when the roll-up last ran for the tenant.
 */
export const readWatermark = (tx: Tx, now: Date) =>
  tx<{ watermark: Date; lastRunAt: Date | null }[]>`
    select least(analytics.bucket_of(${now}), (select min(bucket_start) from analytics.rollup_dirty where tenant_id = core.current_tenant_id())) as watermark,
           (select last_run_at from analytics.rollup_state where tenant_id = core.current_tenant_id()) as last_run_at`.then((r) => r[0]!)

export interface BucketCounts { bucketStart: Date; raw: number; rolledUp: number; dirty: boolean }

/** Per bucket starting in [bucket of from, to) with events in either: raw count, rolled-up count, and whether a mark says it is dirty. */
export const bucketCounts = (tx: Tx, from: Date, to: Date) =>
  tx<BucketCounts[]>`
    with raw as (
      select analytics.bucket_of(occurred_at) as bucket_start, count(*)::bigint as n from analytics.events
       -- Whole buckets: those starting in [from, to), so an unaligned "to" cannot cut a bucket in two.
       where tenant_id = core.current_tenant_id() and occurred_at >= analytics.bucket_of(${from})
         and occurred_at < analytics.bucket_of(${to}::timestamptz - interval '1 microsecond') + interval '5 minutes'
       group by 1
    ), rolled as (
      select bucket_start, sum(events)::bigint as n from analytics.event_aggregations
       where tenant_id = core.current_tenant_id() and bucket_start >= analytics.bucket_of(${from}) and bucket_start < ${to}
       group by 1
    )
    select b.bucket_start, coalesce(r.n, 0)::float8 as raw, coalesce(a.n, 0)::float8 as rolled_up,
           exists (select 1 from analytics.rollup_dirty d where d.tenant_id = core.current_tenant_id() and d.bucket_start = b.bucket_start) as dirty
      from (select bucket_start from raw union select bucket_start from rolled) b
      left join raw r using (bucket_start) left join rolled a using (bucket_start)
     order by 1`

/** Cross-tenant, for /metrics (analytics.rollup_health). */
export const rollupHealth = (sql: Sql, from: Date, now: Date) =>
  sql<{ oldestDirty: Date | null; dirtyBuckets: number; difference: number }[]>`
    select oldest_dirty, dirty_buckets::float8 as dirty_buckets, difference::float8 as difference from analytics.rollup_health(${from}, ${now})`.then((r) => r[0]!)

/** Merge: the merged lead's daily rows become the survivor's; a day both have collapses to one row (the key). */
export async function mergeDailyUniques(tx: Tx, survivorId: string, mergedId: string): Promise<void> {
  await tx`
    insert into analytics.daily_uniques (tenant_id, day, name, kind, subject)
    select tenant_id, day, name, kind, ${survivorId}::text from analytics.daily_uniques
     where tenant_id = core.current_tenant_id() and lead_id = ${mergedId}
    on conflict do nothing`
  await tx`delete from analytics.daily_uniques where tenant_id = core.current_tenant_id() and lead_id = ${mergedId}`
}

/**
 * Retention after whole day partitions of raw were dropped (which fires no trigger): up to `limit` of the tenant's
 * rollup rows from before `before` go too, so the rollups keep what raw keeps. `table` says which.
 */
export const deleteRollupsBefore = (tx: Tx, table: 'event_aggregations' | 'hourly_aggregations' | 'daily_uniques' | 'metrics' | 'assessment_rollups', before: Date, limit: number) => {
  const where = table === 'event_aggregations' ? tx`bucket_start < ${before}`
    // An hour goes once it lies wholly before the cut (its buckets do).
    : table === 'hourly_aggregations' ? tx`hour_start + interval '1 hour' <= ${before}`
    // A day goes once it lies wholly before the cut in the tenant's timezone.
    : tx`day < ((${before}::timestamptz at time zone (select timezone from core.tenants where id = core.current_tenant_id()))::date)`
  return tx`
    delete from ${tx('analytics')}.${tx(table)} r using (
      select ctid from ${tx('analytics')}.${tx(table)} where tenant_id = core.current_tenant_id() and ${where} limit ${limit}) old
     where r.ctid = old.ctid`.then((r) => r.count)
}
