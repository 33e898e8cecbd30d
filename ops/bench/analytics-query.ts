/**
 * Dashboard reads at volume: BENCH_EVENTS events (default 10,000,000; `--events N`) in one tenant over BENCH_DAYS
 * days, plus BENCH_OTHER_EVENTS (`--other N`) in three other tenants, generated in the database (insert … select
 * generate_series, in chunks, with progress), rolled up by the product's own roll-up (rollUp: 5-minute and hour
 * levels, daily uniques and KPIs; then rollUpDays, the day level), then a few minutes of fresh events after the
 * watermark as a live tenant has.
 *
 * `--keep DIR` (or BENCH_KEEP_DIR) keeps the prepared database in DIR (an embedded server's data folder; on
 * BENCH_DATABASE_URL a database of that server) and reuses it on the next run with the same sizes: that run only
 * rolls up what arrived since (the previous run's tail), adds a new tail and measures. The data are relative to the
 * preparing run's clock: reuse it within a few days (BENCH_DAYS is 35, the queries read 30), or delete DIR. Then the dashboard's queries over real HTTP on loopback (POST /v1/analytics/query,
 * GET /v1/analytics/funnels): p50/p95 from rollups (BENCH_REPS each) against the same queries on raw events
 * (`source: 'raw'`, BENCH_RAW_REPS each, at most BENCH_RAW_SECONDS per query), checked to give the same results,
 * and the ratio. Target: p95 ≤ 10 ms from rollups and ≥ 100× faster than raw.
 *
 * Environment: BENCH_EVENTS, BENCH_OTHER_EVENTS (default 1,000,000), BENCH_DAYS (35), BENCH_REPS (200),
 * BENCH_RAW_REPS (3), BENCH_RAW_SECONDS (60), BENCH_DATABASE_URL.
 */
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import { buildApiApp } from '../../services/api/app.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { rollUp } from '../../domains/analytics/rollups.js'
import { rollUpDays } from '../../domains/analytics/query/days.js'
import { startBenchDatabase } from './harness.js'

const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const num = (name: string, fallback: number, max: number, flag?: string) => {
  const v = Number((flag && arg(flag)) ?? process.env[name] ?? fallback)
  if (!Number.isFinite(v) || v < 0) throw new Error(`${flag ? `--${flag}` : name}: a number`)
  return Math.min(v, max)
}
const EVENTS = num('BENCH_EVENTS', 10_000_000, 50_000_000, 'events')
const OTHER_EVENTS = num('BENCH_OTHER_EVENTS', 1_000_000, 10_000_000, 'other')
const KEEP = arg('keep') ?? process.env.BENCH_KEEP_DIR
const DAYS = num('BENCH_DAYS', 35, 85)
const REPS = num('BENCH_REPS', 200, 5000)
const RAW_REPS = num('BENCH_RAW_REPS', 3, 100)
const RAW_SECONDS = num('BENCH_RAW_SECONDS', 60, 600)
const CHUNK = 500_000
const LEADS = Math.max(1000, Math.round(EVENTS / 50))

const db = await startBenchDatabase({ poolMax: 8, ...(KEEP ? { keep: { dir: KEEP, name: `wa_bench_query_${EVENTS}_${OTHER_EVENTS}_${DAYS}` } } : {}) })
const make = (slug: string) => createTenantWithFirstKey(db.sql, { name: slug, slug, defaultCountry: 'BR', timezone: 'America/Sao_Paulo', firstKeyName: 'k' })
const now = new Date()
const seconds = (t: number) => ((performance.now() - t) / 1000).toFixed(1)
// What a prepared database holds (its tenant and key), so a run with --keep can measure it again.
await db.owner`create schema if not exists bench`
await db.owner`create table if not exists bench.state (prepared_at timestamptz not null, main_tenant uuid not null, api_key text not null)`
const [kept] = await db.owner<{ preparedAt: Date; mainTenant: string; apiKey: string }[]>`select prepared_at, main_tenant, api_key from bench.state`

/**
 * `count` events of one tenant: names in dashboard proportions, leads and anonymous visitors, producer, acquisition
 * and device only on site events, form/template/flow ids and lead source in properties; spread over the days.
 */
async function seed(tenantId: string, prefix: string, count: number, leads: number, label: string) {
  await db.owner`
    insert into marketing.leads (id, tenant_id, source)
    select md5(${prefix} || g)::uuid, ${tenantId}, 'web_form' from generate_series(0, ${leads - 1}) g`
  const started = performance.now()
  let done = 0
  const chunk = async (lo: number) => {
    const hi = Math.min(count, lo + CHUNK) - 1
    // A bulk load, as pg_restore does it: generated rows are consistent (every lead exists), so the per-row foreign-key
    // checks and the statement triggers are skipped (session_replication_role = replica, owner only); the dirty marks
    // those triggers would have written are written once below, and the real roll-up builds the rollups from them.
    await db.owner.begin(async (tx) => {
      await tx`set local session_replication_role = replica`
      await tx`
      insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, source, anonymous_id,
                                    acq_source, acq_channel, country, device, browser, os)
      select ${tenantId}, n.name,
             case when n.site and (g / 20) % 10 >= 3 then null else md5(${prefix} || (((g / 20) * 31) % ${leads}))::uuid end,
             -- In time order (each chunk a span of days): index inserts stay near the right edge instead of all over.
             ${now}::timestamptz - interval '10 minutes' - ((${count - 1}::bigint - g) * ${(DAYS * 86400) / count}::float8 * interval '1 second'),
             case
               when n.name like 'form.%' then jsonb_build_object('formId', 'form-' || (g % 5))
               when n.name = 'whatsapp.message_sent' then jsonb_build_object('messageId', 'm' || g, 'templateName', 'tpl-' || (g % 3))
               when n.name like 'whatsapp.%' then jsonb_build_object('messageId', 'm' || g)
               when n.name = 'lead.created' then jsonb_build_object('leadSource', (array['whatsapp', 'web_form', 'api'])[1 + g % 3])
               when n.name like 'bot.%' then jsonb_build_object('flowId', 'flow-' || (g % 4), 'conversationId', 'c' || (g / 20))
               else '{}'::jsonb end,
             case when n.site then 'site' when n.name like 'whatsapp.%' then 'whatsapp' when n.name = 'form.submitted' then 'web_form'
                  when n.name like 'bot.%' then 'bot' else 'platform' end,
             case when n.site then 'anon-' || (g % ${Math.max(1000, Math.round(count / 30))}) end,
             case when n.site then (array['google', 'facebook', 'instagram', 'direct', 'newsletter', 'bing'])[1 + (g / 20) % 6] end,
             case when n.site then (array['search', 'social', 'social', 'direct', 'email', 'search'])[1 + (g / 20) % 6] end,
             case when n.site then (array['BR', 'BR', 'PT', 'US'])[1 + (g / 7) % 4] end,
             case when n.site then (array['mobile', 'mobile', 'desktop'])[1 + (g / 3) % 3] end,
             case when n.site then (array['Chrome', 'Safari', 'Firefox'])[1 + (g / 3) % 3] end,
             case when n.site then (array['Android', 'iOS', 'Windows'])[1 + (g / 3) % 3] end
        from generate_series(${lo}::bigint, ${hi}::bigint) g,
             lateral (select (array['page', 'page', 'page', 'page', 'form.viewed', 'form.viewed', 'form.submitted', 'lead.created',
                                    'whatsapp.message_received', 'whatsapp.message_received', 'whatsapp.message_received',
                                    'whatsapp.message_sent', 'whatsapp.message_sent', 'whatsapp.message_sent',
                                    'whatsapp.message_delivered', 'whatsapp.message_delivered', 'whatsapp.message_read',
                                    'bot.conversation_started', 'bot.conversation_completed', 'lead.qualified'])[1 + g % 20] as name) n0,
             lateral (select n0.name, n0.name in ('page', 'form.viewed') as site) n`
    })
    done += hi - lo + 1
    console.log(`  ${label}: ${done.toLocaleString()} / ${count.toLocaleString()} events (${seconds(started)} s)`)
  }
  // Two chunks at a time: two cores.
  const starts = Array.from({ length: Math.ceil(count / CHUNK) }, (_, i) => i * CHUNK)
  await Promise.all([0, 1].map(async (lane) => {
    for (let i = lane; i < starts.length; i += 2) await chunk(starts[i]!)
  }))
}

let t = performance.now()
let mainTenant: string
let apiKey: string
if (kept) {
  mainTenant = kept.mainTenant
  apiKey = kept.apiKey
  console.log(`reusing the database prepared at ${kept.preparedAt.toISOString()} in ${KEEP} (${EVENTS.toLocaleString()} + ${OTHER_EVENTS.toLocaleString()} events)`)
  await db.owner`select analytics.ensure_event_partitions(array(select (${now}::timestamptz at time zone 'UTC')::date - g from generate_series(-1, 1) g))`
} else {
  const main = await make('bench-main')
  const others = await Promise.all(['bench-a', 'bench-b', 'bench-c'].map(make))
  mainTenant = main.tenant.id
  apiKey = main.apiKey.key
  // One partition per UTC day (migration 0021), made before the rows arrive so none lands in the default partition.
  await db.owner`select analytics.ensure_event_partitions(array(select (${now}::timestamptz at time zone 'UTC')::date - g from generate_series(-1, ${DAYS + 1}) g))`
  console.log(`seeding ${EVENTS.toLocaleString()} events in one tenant over ${DAYS} days, ${OTHER_EVENTS.toLocaleString()} in three others`)
  await seed(mainTenant, 'main', EVENTS, LEADS, 'main tenant')
  for (const [i, o] of others.entries()) await seed(o.tenant.id, `o${i}`, Math.round(OTHER_EVENTS / 3), 2000, `other tenant ${i + 1}`)
  // What the statement trigger (migration 0022) would have marked: every (tenant, 5-minute bucket) of the span (the
  // seed gives each of them events; a mark on an empty bucket would only rebuild it empty).
  await db.owner`
    insert into analytics.rollup_dirty (tenant_id, bucket_start)
    select t.id, b from core.tenants t,
           generate_series(analytics.bucket_of(${now}::timestamptz - ${DAYS + 1} * interval '1 day'), analytics.bucket_of(${now}::timestamptz - interval '10 minutes'), interval '5 minutes') b
     where t.slug like 'bench-%'`
  console.log(`seeded in ${seconds(t)} s (${Math.round((EVENTS + OTHER_EVENTS) / ((performance.now() - t) / 1000)).toLocaleString()} events/s)`)
}

// Statistics, and the visibility map that lets funnel steps read index-only (autovacuum's insert threshold does this in
// production). A run with --keep relies on the first run's and autovacuum's.
if (!kept) {
  t = performance.now()
  await db.owner`vacuum (analyze) analytics.events`
  console.log(`vacuum analyze in ${seconds(t)} s`)
}
t = performance.now()
// The product's roll-up, in batches of 10 days of buckets (a backlog; the cron's batches are 50 buckets).
const rolled = await rollUp(db.sql, { now, batchBuckets: 2880, budgetMs: 3_600_000 })
console.log(`rolled up ${rolled.buckets.toLocaleString()} buckets of ${rolled.tenants} tenants in ${seconds(t)} s${rolled.incomplete ? ' (INCOMPLETE)' : ''}${kept ? '' : ` (${Math.round((EVENTS + OTHER_EVENTS) / ((performance.now() - t) / 1000)).toLocaleString()} events/s)`}`)
t = performance.now()
const days = await rollUpDays(db.sql)
await db.owner`vacuum analyze analytics.event_aggregations, analytics.daily_aggregations, analytics.daily_uniques, analytics.metrics`
const [sizes] = await db.owner<{ aggregations: number; hourlyAggregations: number; dailyAggregations: number; uniques: number }[]>`
  select (select count(*)::int from analytics.event_aggregations) as aggregations,
         (select count(*)::int from analytics.hourly_aggregations) as hourly_aggregations,
         (select count(*)::int from analytics.daily_aggregations) as daily_aggregations,
         (select count(*)::int from analytics.daily_uniques) as uniques`
console.log(`day level: ${days.days} days in ${seconds(t)} s; rows: event_aggregations ${sizes!.aggregations.toLocaleString()}, hourly_aggregations ${sizes!.hourlyAggregations.toLocaleString()}, daily_aggregations ${sizes!.dailyAggregations.toLocaleString()}, daily_uniques ${sizes!.uniques.toLocaleString()}`)
if (!kept) await db.owner`insert into bench.state (prepared_at, main_tenant, api_key) values (${now}, ${mainTenant}, ${apiKey})`

// A live tenant's last minutes, after the watermark: what the raw tail of every query reads.
const tail = Math.round((EVENTS / (DAYS * 86400)) * 600)
await db.owner`
  insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, source)
  select ${mainTenant}, (array['whatsapp.message_received', 'whatsapp.message_sent', 'page', 'lead.created'])[1 + g % 4],
         md5('main' || (g % ${LEADS}))::uuid, ${now}::timestamptz - (g % 600) * interval '1 second', '{}', 'whatsapp'
    from generate_series(1, ${Math.max(tail, 100)}) g`
console.log(`plus ${Math.max(tail, 100)} events of the last 10 minutes, not rolled up`)

const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', API_RATE_LIMIT_PER_MINUTE: '100000000', AUTO_SEED: 'false', HTTP_REQUEST_TIMEOUT_MS: '600000' })
const app = await buildApiApp({ config, sql: db.sql, log: createLogger({ level: 'warn', service: 'bench' }), migrations: await readMigrationFiles() })
const base = await app.listen({ host: '127.0.0.1', port: 0 })
const headers = { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }

const DASHBOARD: [string, Record<string, unknown>][] = [
  ['leads over time (30d by day)', { metrics: ['events'], dateRange: '30d', dimensions: ['time:day'], filters: [['is', 'event:name', ['lead.created']]] }],
  ['messages over time (30d by day)', { metrics: ['events'], dateRange: '30d', dimensions: ['time:day', 'event:name'], filters: [['is', 'event:name', ['whatsapp.message_received', 'whatsapp.message_sent']]] }],
  ['top sources (30d)', { metrics: ['events'], dateRange: '30d', dimensions: ['visit:source'], filters: [['is', 'event:name', ['page', 'form.viewed']]], limit: 10 }],
  ['top channels (30d)', { metrics: ['events'], dateRange: '30d', dimensions: ['visit:channel'], filters: [['is', 'event:name', ['page', 'form.viewed']]], limit: 10 }],
  ['delivery and read rates (30d)', { metrics: ['delivery_rate', 'read_rate'], dateRange: '30d' }],
  ['delivery and read rates by day (30d)', { metrics: ['delivery_rate', 'read_rate'], dateRange: '30d', dimensions: ['time:day'] }],
  ['form conversion by form (30d)', { metrics: ['form_conversion_rate'], dateRange: '30d', dimensions: ['event:form'] }],
  ['KPI tiles vs previous period (30d)', { metrics: ['events', 'conversion_rate', 'delivery_rate', 'bot_completion_rate'], dateRange: '30d', compare: 'previous_period' }],
  ['first response by day (30d)', { metrics: ['median_first_response_seconds'], dateRange: '30d', dimensions: ['time:day'] }],
  ['unique leads by day (7d)', { metrics: ['leads'], dateRange: '7d', dimensions: ['time:day'], filters: [['is', 'event:name', ['lead.created']]] }],
  ['events by hour (day)', { metrics: ['events'], dateRange: 'day', dimensions: ['time:hour'] }],
]
const FUNNEL = 'steps=form.viewed,form.submitted,whatsapp.message_sent,lead.qualified&dateRange=30d&window=7d'

async function call(body: Record<string, unknown> | null): Promise<{ ms: number; json: { results?: unknown; meta?: { source: string; levels: string[] }; steps?: unknown } }> {
  const started = performance.now()
  const res = body
    ? await fetch(`${base}/v1/analytics/query`, { method: 'POST', headers, body: JSON.stringify(body) })
    : await fetch(`${base}/v1/analytics/funnels?${FUNNEL}`, { headers })
  const json = await res.json() as never
  const ms = performance.now() - started
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(json)}`)
  return { ms, json }
}
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}
async function measure(body: Record<string, unknown> | null, reps: number, budgetSeconds = Infinity) {
  const warm = await call(body)
  const times: number[] = []
  const started = performance.now()
  for (let i = 0; i < reps && (performance.now() - started) / 1000 < budgetSeconds; i++) times.push((await call(body)).ms)
  return { p50: pct(times, 50), p95: pct(times, 95), n: times.length, json: warm.json }
}

// The floor on this machine: a request that touches no table (GET /healthz answers from memory), same client, same
// loop. On a loaded machine most of a query's latency is waiting for a core, and this says how much.
const floor: number[] = []
for (let i = 0; i < REPS; i++) {
  const started = performance.now()
  await (await fetch(`${base}/healthz`)).arrayBuffer()
  floor.push(performance.now() - started)
}
console.log(`\nfloor (GET /healthz, no database): p50 ${pct(floor, 50).toFixed(2)} ms, p95 ${pct(floor, 95).toFixed(2)} ms; load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)} on ${(await import('node:os')).cpus().length} cores`)
console.log(`\n${'query'.padEnd(40)} ${'levels'.padEnd(26)} ${'rollup p50'.padStart(10)} ${'p95'.padStart(8)}   ${'raw p50'.padStart(9)} ${'p95'.padStart(9)}   ${'p95 ratio'.padStart(9)}  same`)
const rows: { name: string; p95: number; ratio: number }[] = []
for (const [name, body] of DASHBOARD) {
  const fast = await measure(body, REPS)
  const raw = await measure({ ...body, source: 'raw' }, RAW_REPS, RAW_SECONDS)
  const same = JSON.stringify(fast.json.results) === JSON.stringify(raw.json.results)
  const ratio = raw.p95 / fast.p95
  rows.push({ name, p95: fast.p95, ratio })
  console.log(`${name.padEnd(40)} ${fast.json.meta!.levels.join('+').padEnd(26)} ${fast.p50.toFixed(2).padStart(7)} ms ${fast.p95.toFixed(2).padStart(5)} ms   ${raw.p50.toFixed(0).padStart(6)} ms ${raw.p95.toFixed(0).padStart(6)} ms   ${ratio.toFixed(0).padStart(8)}×  ${same ? 'yes' : 'NO'}`)
}
const funnel = await measure(null, Math.min(REPS, 20), RAW_SECONDS)
console.log(`${'funnel, 4 steps (30d, raw events)'.padEnd(40)} ${'raw'.padEnd(26)} ${funnel.p50.toFixed(2).padStart(7)} ms ${funnel.p95.toFixed(2).padStart(5)} ms   (${funnel.n} runs) ${JSON.stringify((funnel.json.steps as { subjects: number }[]).map((s) => s.subjects))}`)
const met = rows.filter((r) => r.p95 <= 10 && r.ratio >= 100).length
console.log(`\n${met}/${rows.length} queries meet p95 ≤ 10 ms and ≥ 100× raw (${EVENTS.toLocaleString()} events in the tenant)`)

await app.close()
await db.close()
process.exit(0)
