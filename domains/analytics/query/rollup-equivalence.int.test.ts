import { beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { withTenant } from '../../../lib/db.js'
import { rollUp } from '../rollups.js'
import { rollUpDays } from './days.js'
import { recordEvents } from '../service.js'
import { addDays, localDate } from './grammar.js'
import { runQuery } from './service.js'
import { DIMENSIONS, METRICS, TIME_DIMENSIONS, type QueryBody } from './schemas.js'
import { seededRandom } from '../../../lib/seeded-random.js'

/**
 * The property that makes rollups safe to answer from: for random queries over random events, the answer from
 * rollups (and raw after the watermark, and raw for buckets dirtied since) equals the answer from raw events alone.
 */

/** A small seeded PRNG (mulberry32), so a failing case can be replayed from its seed. */
function prng(seed: number) {
  const next = seededRandom(seed)
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const some = <T>(xs: readonly T[], max: number): T[] => [...new Set(Array.from({ length: int(max + 1) }, () => pick(xs)))]
  return { next, int, pick, some }
}

const NAMES = ['lead.created', 'lead.qualified', 'lead.converted', 'form.viewed', 'form.submitted', 'whatsapp.message_received',
  'whatsapp.message_sent', 'whatsapp.message_delivered', 'whatsapp.message_read', 'bot.conversation_started', 'bot.conversation_completed', 'page',
  'whatsapp.message_received', 'whatsapp.message_sent', 'form.viewed']
const VALUES: Record<string, (string | null)[]> = {
  acq_source: ['google', 'facebook', 'direct', null], acq_channel: ['search', 'social', 'direct', null], country: ['BR', 'PT', 'US', null],
  device: ['mobile', 'desktop', null], browser: ['Chrome', 'Firefox', null], os: ['Android', 'iOS', null], source: ['site', 'whatsapp', 'web_form', null],
}
const PROPS: Record<string, string[]> = { formId: ['f1', 'f2'], templateName: ['welcome', 'promo'], leadSource: ['whatsapp', 'web_form'], flowId: ['flow-a'], plan: ['pro', 'free'] }
const FILTER_VALUES = ['google', 'GOOGLE', 'search', 'BR', 'br', 'mobile', 'Chrome', 'chrome', 'FORM.', 'site', 'f1', 'welcome', 'whatsapp', 'form.viewed', 'lead.created', 'o', 'pro', '']

describe('query API: rollups answer as raw events do', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant
  const config = testConfig()
  const now = new Date()

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { timezone: 'America/Sao_Paulo' })
    other = await makeTenant(db.current.sql)
    const r = prng(20261201)
    const anchors = [0, 5 * 60_000, ...Array.from({ length: 28 }, () => r.int(9 * 86_400_000))]
    for (const t of [tenant, other]) {
      const leads = await db.current.owner<{ id: string }[]>`
        insert into marketing.leads (tenant_id) select ${t.id} from generate_series(1, 40) returning id`
      const rows = Array.from({ length: t === tenant ? 3000 : 300 }, (_, i) => {
        const props: Record<string, string> = {}
        for (const [k, vs] of Object.entries(PROPS)) if (r.next() < 0.4) props[k] = r.pick(vs)
        const row: Record<string, unknown> = {
          name: r.pick(NAMES),
          // Nine days back to a minute ago: closed buckets, the open one, and the time after the watermark.
          // Clustered around 30 moments, so that buckets hold several events of the same name and dimensions.
          occurredAt: new Date(now.getTime() - 60_000 - anchors[r.int(anchors.length)]! - r.int(240_000)),
          leadId: r.next() < 0.7 ? r.pick(leads).id : null,
          anonymousId: r.next() < 0.5 ? `anon-${r.int(60)}` : null,
          properties: props,
          dedupeKey: `prop:${i}`,
          source: r.pick(VALUES.source!),
        }
        return row
      })
      await withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, rows as never))
      // Enrichment columns, set behind the producer's back (the worker's enrichment sets them for client events).
      for (const col of ['acq_source', 'acq_channel', 'country', 'device', 'browser', 'os']) {
        await db.current.owner`
          update analytics.events set ${db.current.owner(col)} = (${VALUES[col]!}::text[])[1 + (id % ${VALUES[col]!.length})]
           where tenant_id = ${t.id}`
      }
    }
    // Roll up everything closed until ten minutes ago: the last minutes stay after the watermark.
    await rollUp(db.current.sql, { now: new Date(now.getTime() - 10 * 60_000), batchBuckets: 1000, budgetMs: 60_000 })
    await rollUpDays(db.current.sql)
  }, 120_000)

  it('builds the day level as the sum of the 5-minute level', async () => {
    const [r] = await db.current.owner<{ days: number; buckets: number; dayRows: number }[]>`
      select (select sum(events)::int from analytics.daily_aggregations where tenant_id = ${tenant.id}) as days,
             (select sum(events)::int from analytics.event_aggregations where tenant_id = ${tenant.id}) as buckets,
             (select count(*)::int from analytics.daily_aggregations where tenant_id = ${tenant.id}) as day_rows`
    expect(r!.days).toBe(r!.buckets)
    expect(r!.dayRows).toBeGreaterThan(0)
  })

  it('builds the hour level as the sum of the 5-minute level, hour by hour', async () => {
    const rows = await db.current.owner<{ hour: Date; hourly: number | null; buckets: number | null }[]>`
      with h as (select hour_start, sum(events)::int as n from analytics.hourly_aggregations where tenant_id = ${tenant.id} group by 1),
           b as (select date_trunc('hour', bucket_start, 'UTC') as hour_start, sum(events)::int as n from analytics.event_aggregations where tenant_id = ${tenant.id} group by 1)
      select coalesce(h.hour_start, b.hour_start) as hour, h.n as hourly, b.n as buckets from h full join b using (hour_start)`
    expect(rows.length).toBeGreaterThan(20)
    expect(rows.filter((r) => r.hourly !== r.buckets)).toEqual([])
  })

  const randomQuery = (r: ReturnType<typeof prng>): QueryBody => {
    const today = localDate(now, 'America/Sao_Paulo')
    const dimensionNames = [...TIME_DIMENSIONS, ...Object.keys(DIMENSIONS), 'event:props:plan']
    const filterDims = [...Object.keys(DIMENSIONS), 'event:props:plan']
    const leaf = (): unknown => {
      const f = [r.pick(['is', 'is_not', 'contains', 'contains_not']), r.pick(r.next() < 0.5 ? ['event:name'] : filterDims), r.some(FILTER_VALUES, 2).concat('google')]
      // Sometimes case-insensitive, or case-sensitive said explicitly (the live feed's modifier).
      const m = r.next()
      return m < 0.25 ? [...f, { case_sensitive: false }] : m < 0.35 ? [...f, { case_sensitive: true }] : f
    }
    const filters = Array.from({ length: r.int(3) }, () => {
      const x = r.next()
      return x < 0.7 ? leaf() : x < 0.8 ? ['not', leaf()] : [r.pick(['and', 'or']), [leaf(), leaf()]]
    })
    const dimensions = r.some(dimensionNames, 2).filter((d, i, all) => !d.startsWith('time:') || all.findIndex((x) => x.startsWith('time:')) === i)
    const medianOk = dimensions.every((d) => d.startsWith('time:'))
    const metrics = r.some(METRICS.filter((m) => medianOk || m !== 'median_first_response_seconds'), 3)
    return {
      metrics: metrics.length ? metrics : ['events'],
      dateRange: r.pick<QueryBody['dateRange']>(['day', '7d', '30d', 'month', [addDays(today, -5), addDays(today, -2)], [addDays(today, -8), today],
        [new Date(now.getTime() - 3 * 86_400_000 - 123_456).toISOString(), new Date(now.getTime() - 3_600_000 + 7_000).toISOString()]]),
      dimensions,
      filters: filters as QueryBody['filters'],
      limit: 10_000,
      offset: 0,
      timezone: r.pick([undefined, undefined, 'UTC', 'Asia/Kathmandu', 'Asia/Kolkata', 'America/St_Johns', 'Europe/Lisbon']),
    }
  }

  it('rolls up buckets that hold several events (else a broken sum could pass)', async () => {
    const [r] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.event_aggregations where tenant_id = ${tenant.id} and events > 1`
    expect(r!.n).toBeGreaterThan(10)
  })

  it('gives the same results from rollups as from raw events for 150 random queries', async () => {
    const sources: Record<string, number> = {}
    const levels: Record<string, number> = {}
    const halfHourHours = { hour: 0, fine: 0 }
    for (let seed = 1; seed <= 150; seed++) {
      const body = randomQuery(prng(seed))
      const fast = await runQuery(db.current.sql, config, tenant.id, body)
      const raw = await runQuery(db.current.sql, config, tenant.id, { ...body, source: 'raw' })
      expect(raw.meta.source, `seed ${seed}`).toBe('raw')
      expect(raw.meta.levels, `seed ${seed}`).toEqual(['raw'])
      expect(fast.results, `seed ${seed}: ${JSON.stringify(body)}`).toEqual(raw.results)
      sources[fast.meta.source] = (sources[fast.meta.source] ?? 0) + 1
      for (const l of fast.meta.levels) levels[l] = (levels[l] ?? 0) + 1
      if (['Asia/Kathmandu', 'Asia/Kolkata', 'America/St_Johns'].includes(body.timezone ?? '') && fast.meta.levels.includes('hour')) halfHourHours.hour++
    }
    // Every level answered some of them, half-hour zones' hours too (their days cut hours in two at midnight).
    expect(levels.hour ?? 0).toBeGreaterThan(30)
    expect(levels.day ?? 0).toBeGreaterThan(10)
    expect(levels['5min'] ?? 0).toBeGreaterThan(10)
    expect(halfHourHours.hour).toBeGreaterThan(3)
    // Not vacuous: most queries were answered from rollups, some could not be.
    expect(sources['rollup+raw'] ?? 0).toBeGreaterThan(50)
    expect(sources.raw ?? 0).toBeGreaterThan(5)
  }, 120_000)

  it('gives the same previous-period comparisons from rollups as from raw events', async () => {
    for (let seed = 500; seed < 520; seed++) {
      const body = { ...randomQuery(prng(seed)), compare: 'previous_period' as const, dateRange: '7d' as const }
      const fast = await runQuery(db.current.sql, config, tenant.id, body)
      const raw = await runQuery(db.current.sql, config, tenant.id, { ...body, source: 'raw' })
      expect(fast.results, `seed ${seed}`).toEqual(raw.results)
      expect(fast.meta.comparisonDateRange).toBeDefined()
    }
  }, 60_000)

  it('reflects a late event at once (its bucket is read raw until rolled up again), then from rollups', async () => {
    const body: QueryBody = { metrics: ['events', 'leads', 'form_conversion_rate', 'median_first_response_seconds'], dateRange: '7d', dimensions: ['time:day'], filters: [], limit: 10_000, offset: 0 }
    const before = await runQuery(db.current.sql, config, tenant.id, body)
    expect(before.meta.rawBuckets).toBe(0)
    const lateAt = new Date(now.getTime() - 3 * 86_400_000)
    const lead = (await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} limit 1`)[0]!.id
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [
      { name: 'form.viewed', occurredAt: lateAt, leadId: lead, properties: { formId: 'f1' }, dedupeKey: 'late:1' },
      { name: 'whatsapp.message_received', occurredAt: lateAt, leadId: lead, dedupeKey: 'late:2' },
    ]))
    const day = localDate(lateAt, 'America/Sao_Paulo')
    const row = (r: typeof before, d: string) => r.results.find((x) => x.dimensions[0] === d)!
    const late = await runQuery(db.current.sql, config, tenant.id, body)
    expect(late.meta).toMatchObject({ source: 'rollup+raw', rawBuckets: 1 })
    expect(row(late, day).metrics[0]).toBe(row(before, day).metrics[0]! + 2)
    expect(late.results).toEqual((await runQuery(db.current.sql, config, tenant.id, { ...body, source: 'raw' })).results)

    // Rolled up again: the bucket is exact; its day waits for the day level and is read from its buckets meanwhile.
    await rollUp(db.current.sql, { now: new Date(now.getTime() - 10 * 60_000), tenantId: tenant.id })
    const again = await runQuery(db.current.sql, config, tenant.id, body)
    expect(again.meta.rawBuckets).toBe(0)
    expect(again.results).toEqual(late.results)
    expect(await db.current.owner`select 1 from analytics.daily_aggregations_dirty where tenant_id = ${tenant.id}`).not.toHaveLength(0)
    await rollUpDays(db.current.sql, { tenantId: tenant.id })
    expect(await db.current.owner`select 1 from analytics.daily_aggregations_dirty where tenant_id = ${tenant.id}`).toHaveLength(0)
    expect((await runQuery(db.current.sql, config, tenant.id, body)).results).toEqual(late.results)
  }, 60_000)

  it("counts only the tenant's own events", async () => {
    const body: QueryBody = { metrics: ['events'], dateRange: '30d', dimensions: [], filters: [], limit: 10, offset: 0 }
    const [mine, theirs] = await Promise.all([runQuery(db.current.sql, config, tenant.id, body), runQuery(db.current.sql, config, other.id, body)])
    const counts = await db.current.owner<{ tenantId: string; n: number }[]>`
      select tenant_id, count(*)::int as n from analytics.events where tenant_id in (${tenant.id}, ${other.id}) group by 1`
    expect(mine.results[0]!.metrics[0]).toBe(counts.find((c) => c.tenantId === tenant.id)!.n)
    expect(theirs.results[0]!.metrics[0]).toBe(counts.find((c) => c.tenantId === other.id)!.n)
  })
})
