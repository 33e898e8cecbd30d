import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant, type Tx } from '../../lib/db.js'
import { testConfig } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { applyRetention } from '../privacy/retention.js'
import { listEventPartitions, prepareEventPartitions, recordEvents, recordEventsFrom, PARTITION_DAYS_AHEAD } from './service.js'

const DAY = 86_400_000
const utcDay = (d: Date) => d.toISOString().slice(0, 10)
const partitionOf = (d: Date) => `events_p${utcDay(d).replaceAll('-', '')}`
const daysAgo = (n: number, hour = 12) => {
  const d = new Date(Date.now() - n * DAY)
  d.setUTCHours(hour, 0, 0, 0)
  return d
}

describe('analytics.events partitioned by UTC day (migration 0021)', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })

  /** Where a stored event lives, and what it is, seen by the owner (behind RLS's back). */
  const stored = (tenantId: string, dedupeKey: string) =>
    db.current.owner<{ id: string; partition: string; name: string; occurredAt: Date; properties: unknown }[]>`
      select id, tableoid::regclass::text as partition, name, occurred_at, properties from analytics.events
       where tenant_id = ${tenantId} and dedupe_key = ${dedupeKey} order by id`
  const keysOf = (tenantId: string, like: string) =>
    db.current.owner<{ dedupeKey: string }[]>`
      select dedupe_key from analytics.event_keys where tenant_id = ${tenantId} and dedupe_key like ${like} order by dedupe_key`.then((r) => r.map((k) => k.dedupeKey))
  const record = (t: TestTenant, rows: Parameters<typeof recordEvents>[1]) => withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, rows))
  /** recordEventsFrom as a producer embeds it: its CTEs in the caller's statement, here over a VALUES list. */
  const recordFrom = (t: TestTenant, rows: { name: string; occurredAt: Date; dedupeKey: string | null }[]) =>
    withTenant(db.current.sql, t.id, async (tx: Tx) => {
      const relation = tx`
        select x.name, null::uuid as lead_id, x.occurred_at, '{}'::jsonb as properties, x.dedupe_key, 'test' as source
          from jsonb_to_recordset(${tx.json(rows.map((r) => ({ name: r.name, occurred_at: r.occurredAt.toISOString(), dedupe_key: r.dedupeKey })) as never)}::jsonb)
            as x(name text, occurred_at timestamptz, dedupe_key text)`
      const [r] = await tx<{ added: number }[]>`with ${recordEventsFrom(tx, relation)} select count(*)::int as added from analytics_events_new`
      return r!.added
    })

  it('has the days ahead from the migration, and the cron task keeps yesterday through a week ahead', async () => {
    const before = await listEventPartitions(db.current.sql)
    for (let i = 0; i <= PARTITION_DAYS_AHEAD; i++) expect(before).toContain(partitionOf(new Date(Date.now() + i * DAY)))
    expect(before).toContain('events_default')
    // A day ahead that went missing (an operator dropped it) comes back; one run later nothing more is created.
    const ahead = partitionOf(new Date(Date.now() + 3 * DAY))
    await db.current.owner.unsafe(`drop table analytics.${ahead}`)
    expect(await prepareEventPartitions(db.current.sql)).toBeGreaterThanOrEqual(1)
    expect(await listEventPartitions(db.current.sql)).toContain(ahead)
    expect(await listEventPartitions(db.current.sql)).toContain(partitionOf(new Date(Date.now() - DAY)))
    expect(await prepareEventPartitions(db.current.sql)).toBe(0)
  })

  it('creates the partition of a day long past on demand, so late data is stored in its own day', async () => {
    const late = daysAgo(400)
    expect(await listEventPartitions(db.current.sql)).not.toContain(partitionOf(late))
    expect(await record(tenant, [{ name: 'test.late', occurredAt: late, dedupeKey: 'late:1' }, { name: 'test.late', occurredAt: daysAgo(401), dedupeKey: 'late:2' }])).toBe(2)
    expect((await stored(tenant.id, 'late:1')).map((e) => e.partition)).toEqual([`analytics.${partitionOf(late)}`])
    expect((await stored(tenant.id, 'late:2')).map((e) => e.partition)).toEqual([`analytics.${partitionOf(daysAgo(401))}`])
  })

  it('never fails an insert whose day has no partition: the row waits in the default partition, and the cron task moves it to its day', async () => {
    // recordEventsFrom cannot know its days before its statement (and the owner's inserts bypass recordEvents).
    const late = daysAgo(500, 7)
    expect(await recordFrom(tenant, [{ name: 'test.stray', occurredAt: late, dedupeKey: 'stray:1' }])).toBe(1)
    const [before] = await stored(tenant.id, 'stray:1')
    expect(before!.partition).toBe('analytics.events_default')

    expect(await prepareEventPartitions(db.current.sql)).toBeGreaterThanOrEqual(1)
    const [after] = await stored(tenant.id, 'stray:1')
    expect(after).toEqual({ ...before, partition: `analytics.${partitionOf(late)}` })
    const [left] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events_default`
    expect(left!.n).toBe(0)
  })

  it('refuses a duplicate arriving months later, in another day\'s partition, through both writers; the first copy wins', async () => {
    const first = daysAgo(95)
    expect(await record(tenant, [{ name: 'test.dup', occurredAt: first, dedupeKey: 'dup:1', properties: { copy: 1 } }])).toBe(1)
    expect(await record(tenant, [{ name: 'test.dup', occurredAt: new Date(), dedupeKey: 'dup:1', properties: { copy: 2 } }])).toBe(0)
    expect(await recordFrom(tenant, [{ name: 'test.dup', occurredAt: daysAgo(30), dedupeKey: 'dup:1' }])).toBe(0)
    // Twice in one batch, across days: the first row of the batch wins; rows without a key are always added.
    expect(await record(tenant, [
      { name: 'test.dup', occurredAt: daysAgo(2), dedupeKey: 'dup:2', properties: { copy: 1 } },
      { name: 'test.dup', occurredAt: daysAgo(1), dedupeKey: 'dup:2', properties: { copy: 2 } },
      { name: 'test.dup', occurredAt: daysAgo(1), dedupeKey: null },
    ])).toBe(2)
    expect(await recordFrom(tenant, [
      { name: 'test.dup', occurredAt: daysAgo(3), dedupeKey: 'dup:3' },
      { name: 'test.dup', occurredAt: daysAgo(4), dedupeKey: 'dup:3' },
      { name: 'test.dup', occurredAt: daysAgo(4), dedupeKey: 'dup:2' },
    ])).toBe(1)
    expect((await stored(tenant.id, 'dup:1')).map((e) => [e.partition, e.properties])).toEqual([[`analytics.${partitionOf(first)}`, { copy: 1 }]])
    expect((await stored(tenant.id, 'dup:2')).map((e) => [e.occurredAt, e.properties])).toEqual([[daysAgo(2), { copy: 1 }]])
    expect((await stored(tenant.id, 'dup:3')).map((e) => e.occurredAt)).toEqual([daysAgo(3)])
    // Keys are per tenant: another tenant's event with the same key is its own.
    expect(await record(other, [{ name: 'test.dup', occurredAt: new Date(), dedupeKey: 'dup:1' }])).toBe(1)
  })

  it('stores one event when two transactions record the same key on different days at once', async () => {
    const results = await Promise.all([
      record(tenant, [{ name: 'test.race', occurredAt: daysAgo(10), dedupeKey: 'race:1' }]),
      record(tenant, [{ name: 'test.race', occurredAt: daysAgo(20), dedupeKey: 'race:1' }]),
      recordFrom(tenant, [{ name: 'test.race', occurredAt: daysAgo(30), dedupeKey: 'race:1' }]),
    ])
    expect(results.sort()).toEqual([0, 0, 1])
    expect(await stored(tenant.id, 'race:1')).toHaveLength(1)
  })

  it('gives the runtime role no way to create or drop tables except the narrow, bounded functions', async () => {
    await expect(db.current.sql`create table analytics.not_allowed (id int)`).rejects.toMatchObject({ code: '42501' })
    await expect(db.current.sql.unsafe('create table analytics.events_p19990101 partition of analytics.events for values from (\'1999-01-01\') to (\'1999-01-02\')'))
      .rejects.toMatchObject({ code: '42501' })
    await expect(db.current.sql.unsafe(`drop table analytics.${partitionOf(new Date())}`)).rejects.toMatchObject({ code: '42501' })
    await expect(db.current.sql`select analytics.create_event_partition('2020-01-01'::date)`).rejects.toMatchObject({ code: '42501' })
    await expect(db.current.sql`select analytics.ensure_event_partitions(array['1990-01-01']::date[])`).rejects.toMatchObject({ code: '22023' })
    await expect(db.current.sql`select analytics.ensure_event_partitions(array[(now() + interval '60 days')::date])`).rejects.toMatchObject({ code: '22023' })
    await expect(db.current.sql`select analytics.prepare_event_partitions(400)`).rejects.toMatchObject({ code: '22023' })
    // Dropping must keep at least every tenant's own period.
    await db.current.owner`
      insert into privacy.retention_settings (tenant_id, analytics_events_days, exports_days, updated_by) values (${other.id}, 120, 7, 'test')`
    await expect(db.current.sql`select * from analytics.drop_event_partitions(90)`).rejects.toMatchObject({ code: '22023' })
    await db.current.owner`delete from privacy.retention_settings where tenant_id = ${other.id}`
  })

  describe('retention (privacy__apply_retention)', () => {
    const config = testConfig({ PRIVACY_RETENTION_BATCH_ROWS: '2' })

    it('drops the partitions older than the longest period any tenant keeps, trims a shorter period in batches, and lets the keys of dropped days go', async () => {
      // `tenant` keeps the default 90 days; `other` keeps 30.
      await db.current.owner`
        insert into privacy.retention_settings (tenant_id, analytics_events_days, exports_days, updated_by) values (${other.id}, 30, 7, 'test')`
      const ages = [200, 120, 100, 60, 45, 40, 5]
      for (const t of [tenant, other]) {
        expect(await record(t, ages.map((n) => ({ name: 'test.retained', occurredAt: daysAgo(n), dedupeKey: `ret:${n}` })))).toBe(ages.length)
      }
      const before = await listEventPartitions(db.current.sql)
      for (const n of ages) expect(before).toContain(partitionOf(daysAgo(n)))

      const { partitions, tenants } = await applyRetention(db.current.sql, config)

      expect(partitions.keepDays).toBe(90)
      for (const n of [200, 120, 100]) expect(partitions.dropped).toContain(partitionOf(daysAgo(n)))
      const after = await listEventPartitions(db.current.sql)
      for (const n of [400, 200, 120, 100]) expect(after).not.toContain(partitionOf(daysAgo(n)))
      for (const n of [60, 45, 40, 5]) expect(after).toContain(partitionOf(daysAgo(n)))

      const ageLeft = async (t: TestTenant) => (await db.current.owner<{ dedupeKey: string }[]>`
        select dedupe_key from analytics.events where tenant_id = ${t.id} and name = 'test.retained' order by occurred_at`).map((e) => e.dedupeKey)
      expect(await ageLeft(tenant)).toEqual(['ret:60', 'ret:45', 'ret:40', 'ret:5'])
      // `other`'s 30 days: three younger than 90 but older than 30, trimmed 2 per statement.
      expect(await ageLeft(other)).toEqual(['ret:5'])
      const otherRun = tenants.find((r) => r.tenantId === other.id)!
      expect(otherRun.removed['analytics.events']).toBe(3)
      expect(otherRun.batches).toBeGreaterThanOrEqual(1 + 2)

      // Keys of the dropped days went (a copy that late lands again, beyond every period, and goes the next night);
      // keys of days still kept stay, so a late copy of a trimmed event is still refused.
      expect(await keysOf(tenant.id, 'ret:%')).toEqual(['ret:40', 'ret:45', 'ret:5', 'ret:60'])
      expect(await keysOf(other.id, 'ret:%')).toEqual(['ret:40', 'ret:45', 'ret:5', 'ret:60'])
      expect(await record(other, [{ name: 'test.retained', occurredAt: daysAgo(45), dedupeKey: 'ret:45' }])).toBe(0)
      expect(tenants.find((r) => r.tenantId === tenant.id)!.removed['analytics.event_keys']).toBeGreaterThanOrEqual(3)
    })

    it('keeps every partition a tenant with a longer period still needs', async () => {
      await db.current.owner`update privacy.retention_settings set analytics_events_days = 365 where tenant_id = ${other.id}`
      expect(await record(other, [{ name: 'test.long', occurredAt: daysAgo(300), dedupeKey: 'long:1' }, { name: 'test.long', occurredAt: daysAgo(370), dedupeKey: 'long:2' }])).toBe(2)
      const { partitions } = await applyRetention(db.current.sql, config)
      expect(partitions.keepDays).toBe(365)
      expect(partitions.dropped).toEqual([partitionOf(daysAgo(370))])
      expect((await stored(other.id, 'long:1')).length).toBe(1)
      // `tenant` (90 days) loses its event of 300 days ago by the batch trim, since the partition stays.
      expect(await record(tenant, [{ name: 'test.long', occurredAt: daysAgo(300), dedupeKey: 'long:3' }])).toBe(1)
      await applyRetention(db.current.sql, config)
      expect(await stored(tenant.id, 'long:3')).toEqual([])
      expect(await stored(other.id, 'long:1')).toHaveLength(1)
    })
  })
})
