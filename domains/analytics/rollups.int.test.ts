import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant, type Tx } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { mergeLeadInto } from '../marketing/leads/service.js'
import { deleteRollupsBefore } from './rollup-queries.js'
import { reconcile, readWatermark, rollUp, RollUpFailed } from './rollups.js'
import { recordEvents, type EventRow } from './service.js'

const T0 = new Date('2026-11-30T10:00:00.000Z')
const at = (minutes: number, seconds = 0) => new Date(T0.getTime() + minutes * 60_000 + seconds * 1000)
/** A clock well after every bucket the tests write: all of them are closed. */
const LATER = at(24 * 60 * 3)

describe('rollups: rebuilt from raw for every dirty bucket', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })

  const record = (t: TestTenant, rows: EventRow[]) => withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, rows))
  const aggregations = (t: TestTenant) =>
    db.current.owner<{ bucketStart: Date; name: string; source: string; channel: string; device: string; producer: string; formId: string; template: string; experiment: string; variant: string; events: string }[]>`
      select bucket_start, name, source, channel, device, producer, form_id, template, experiment, variant, events
        from analytics.event_aggregations where tenant_id = ${t.id} order by bucket_start, name, source, form_id`
  const totals = (t: TestTenant) =>
    db.current.owner<{ bucketStart: Date; events: number }[]>`
      select bucket_start, sum(events)::int as events from analytics.event_aggregations where tenant_id = ${t.id} group by 1 order by 1`
  const asTenant = <T>(t: TestTenant, fn: (tx: Tx) => Promise<T>) => withTenant(db.current.sql, t.id, fn)

  it('counts each closed bucket by name and dimensions, from raw, and leaves the open bucket alone', async () => {
    await record(tenant, [
      { name: 'form.viewed', occurredAt: at(1), properties: { formId: 'f1' }, source: 'site', dedupeKey: 'v:1',
        enrichment: { source: 'google', channel: 'search', device: 'mobile', referrerHost: 'google.com', utm: { source: null, medium: null, campaign: null, term: null, content: null }, clickId: null, browser: { name: null, version: null }, os: { name: null, version: null }, isBot: false, country: null, internal: false } },
      { name: 'form.viewed', occurredAt: at(2), properties: { formId: 'f1' }, source: 'site', dedupeKey: 'v:2' },
      { name: 'form.submitted', occurredAt: at(4, 59), properties: { formId: 'f1' }, source: 'web_form', dedupeKey: 's:1' },
      { name: 'whatsapp.message_sent', occurredAt: at(5), properties: { messageId: 'm1', templateName: 'welcome' }, source: 'whatsapp', dedupeKey: 'm:1' },
      { name: 'experiment.exposure', occurredAt: at(6), properties: { experimentKey: 'cta', variationKey: 'b' }, dedupeKey: 'x:1' },
    ])
    // At 10:09:59 the bucket 10:05–10:10 is still open.
    const first = await rollUp(db.current.sql, { now: at(9, 59), tenantId: tenant.id })
    expect(first.buckets).toBe(1)
    expect(await aggregations(tenant)).toEqual([
      { bucketStart: at(0), name: 'form.submitted', source: '', channel: '', device: '', producer: 'web_form', formId: 'f1', template: '', experiment: '', variant: '', events: '1' },
      { bucketStart: at(0), name: 'form.viewed', source: '', channel: '', device: '', producer: 'site', formId: 'f1', template: '', experiment: '', variant: '', events: '1' },
      { bucketStart: at(0), name: 'form.viewed', source: 'google', channel: 'search', device: 'mobile', producer: 'site', formId: 'f1', template: '', experiment: '', variant: '', events: '1' },
    ])
    const watermark = await asTenant(tenant, (tx) => readWatermark(tx, at(9, 59)))
    expect(watermark.watermark).toEqual(at(5))

    await rollUp(db.current.sql, { now: at(10), tenantId: tenant.id })
    expect((await aggregations(tenant)).filter((r) => r.bucketStart.getTime() === at(5).getTime())).toEqual([
      { bucketStart: at(5), name: 'experiment.exposure', source: '', channel: '', device: '', producer: '', formId: '', template: '', experiment: 'cta', variant: 'b', events: '1' },
      { bucketStart: at(5), name: 'whatsapp.message_sent', source: '', channel: '', device: '', producer: 'whatsapp', formId: '', template: 'welcome', experiment: '', variant: '', events: '1' },
    ])
    expect(await asTenant(tenant, (tx) => reconcile(tx, { from: at(0), to: at(10), now: at(10) }))).toMatchObject({ buckets: 2, raw: 5, rolledUp: 5, difference: 0, mismatches: [] })
    // A range ending inside a bucket takes the whole bucket, raw and rolled up alike.
    expect(await asTenant(tenant, (tx) => reconcile(tx, { from: at(2), to: at(5, 30), now: at(10) }))).toMatchObject({ buckets: 2, raw: 5, rolledUp: 5, difference: 0 })
    // Another tenant's roll-up saw none of it.
    expect(await aggregations(other)).toEqual([])
  })

  it('rebuilds a bucket already rolled up when a late event arrives, and never counts a duplicate', async () => {
    await record(tenant, [
      { name: 'form.viewed', occurredAt: at(3), properties: { formId: 'f1' }, source: 'site', dedupeKey: 'v:late' },
      { name: 'form.viewed', occurredAt: at(2), properties: { formId: 'f1' }, source: 'site', dedupeKey: 'v:2' },
    ])
    const pending = await asTenant(tenant, (tx) => reconcile(tx, { from: at(0), to: at(10), now: at(10) }))
    expect(pending).toMatchObject({ difference: 0, pending: { buckets: 1, raw: 4, rolledUp: 3, oldest: at(0) } })
    expect((await asTenant(tenant, (tx) => readWatermark(tx, at(10)))).watermark).toEqual(at(0))

    await rollUp(db.current.sql, { now: at(10), tenantId: tenant.id })
    expect(await totals(tenant)).toEqual([{ bucketStart: at(0), events: 4 }, { bucketStart: at(5), events: 2 }])
    // Rolling up again with nothing dirty changes nothing.
    expect((await rollUp(db.current.sql, { now: at(10), tenantId: tenant.id })).buckets).toBe(0)
    expect(await totals(tenant)).toEqual([{ bucketStart: at(0), events: 4 }, { bucketStart: at(5), events: 2 }])
  })

  it('follows deletions: a bucket whose events went is rebuilt empty', async () => {
    const t = await makeTenant(db.current.sql)
    await record(t, [{ name: 'page', occurredAt: at(1) }, { name: 'page', occurredAt: at(7) }])
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    expect(await totals(t)).toEqual([{ bucketStart: at(0), events: 1 }, { bucketStart: at(5), events: 1 }])
    await db.current.owner`delete from analytics.events where tenant_id = ${t.id} and occurred_at < ${at(5)}`
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    expect(await totals(t)).toEqual([{ bucketStart: at(5), events: 1 }])
    expect(await asTenant(t, (tx) => reconcile(tx, { from: at(0), to: at(60), now: LATER }))).toMatchObject({ raw: 1, rolledUp: 1, difference: 0 })
  })

  it('rolls up every tenant with dirty buckets in one cross-tenant run, each under its own tenant', async () => {
    const a = await makeTenant(db.current.sql)
    const b = await makeTenant(db.current.sql)
    await record(a, [{ name: 'page', occurredAt: at(1) }, { name: 'page', occurredAt: at(2) }])
    await record(b, [{ name: 'page', occurredAt: at(1) }])
    const result = await rollUp(db.current.sql, { now: LATER })
    expect(result.tenants).toBeGreaterThanOrEqual(2)
    expect(await totals(a)).toEqual([{ bucketStart: at(0), events: 2 }])
    expect(await totals(b)).toEqual([{ bucketStart: at(0), events: 1 }])
    const [dirty] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.rollup_dirty where bucket_start < ${at(60 * 24 * 3 - 5)}`
    expect(dirty!.n).toBe(0)
  })

  it('stops a run at its batch size and budget and carries on in the next', async () => {
    const t = await makeTenant(db.current.sql)
    await record(t, Array.from({ length: 6 }, (_, i) => ({ name: 'page', occurredAt: at(i * 5) })))
    const first = await rollUp(db.current.sql, { now: LATER, tenantId: t.id, batchBuckets: 2, budgetMs: 0 })
    expect(first).toMatchObject({ buckets: 2, incomplete: true })
    const rest = await rollUp(db.current.sql, { now: LATER, tenantId: t.id, batchBuckets: 2 })
    expect(rest).toMatchObject({ buckets: 4, incomplete: false })
    expect((await totals(t)).length).toBe(6)
  })

  it('counts unique leads and visitors per day in the tenant\'s timezone, recounting a day when its events change', async () => {
    const t = await makeTenant(db.current.sql, { timezone: 'America/Sao_Paulo' })
    const [ana, bia] = await db.current.owner<{ id: string }[]>`
      insert into marketing.leads (tenant_id, email, source) values (${t.id}, 'ana@example.com', 'test'), (${t.id}, 'bia@example.com', 'test') returning id`
    // 02:30 UTC on 1 Dec is 23:30 on 30 Nov in São Paulo (UTC−3).
    const late = new Date('2026-12-01T02:30:00Z')
    const next = new Date('2026-12-01T03:30:00Z')
    await record(t, [
      { name: 'page', occurredAt: late, leadId: ana!.id, anonymousId: 'anon-1' },
      { name: 'page', occurredAt: next, leadId: ana!.id },
      { name: 'page', occurredAt: next, leadId: bia!.id, anonymousId: 'anon-2' },
      { name: 'page', occurredAt: next, anonymousId: 'anon-2' },
    ])
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    const uniques = () => db.current.owner<{ day: string; kind: string; subject: string }[]>`
      -- Only this test's events: the merge below records its own lead.merged event (today) for the survivor.
      select day::text, kind, subject from analytics.daily_uniques where tenant_id = ${t.id} and name = 'page' order by day, kind, subject`
    expect(await uniques()).toEqual([
      { day: '2026-11-30', kind: 'lead', subject: ana!.id },
      { day: '2026-11-30', kind: 'visitor', subject: 'anon-1' },
      ...[{ day: '2026-12-01', kind: 'lead', subject: ana!.id }, { day: '2026-12-01', kind: 'lead', subject: bia!.id }]
        .sort((x, y) => x.subject.localeCompare(y.subject)),
      { day: '2026-12-01', kind: 'visitor', subject: 'anon-2' },
    ])

    // A merge moves bia's events to ana: the rows collapse at once, and the recount from raw agrees.
    await withTenant(db.current.sql, t.id, (tx) => mergeLeadInto(tx, ana!.id, bia!.id, { tenantId: t.id, reason: 'test', actor: 'test', requestId: null, matchedOn: {} }))
    const merged = [
      { day: '2026-11-30', kind: 'lead', subject: ana!.id },
      { day: '2026-11-30', kind: 'visitor', subject: 'anon-1' },
      { day: '2026-12-01', kind: 'lead', subject: ana!.id },
      { day: '2026-12-01', kind: 'visitor', subject: 'anon-2' },
    ]
    expect(await uniques()).toEqual(merged)
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    expect(await uniques()).toEqual(merged)

    // Erasure keeps the events without their lead or visitor: the recount drops the subjects.
    await db.current.owner`update analytics.events set lead_id = null, anonymous_id = null where tenant_id = ${t.id} and occurred_at = ${late}`
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    expect(await uniques()).toEqual(merged.slice(2))
  })

  it('forgets the rollups of days whose raw partitions retention dropped, and keeps the rest', async () => {
    const t = await makeTenant(db.current.sql)
    const nextDay = new Date(T0.getTime() + 86_400_000)
    await record(t, [
      { name: 'form.viewed', occurredAt: at(1), anonymousId: 'old', properties: { formId: 'f' } },
      { name: 'form.viewed', occurredAt: nextDay, anonymousId: 'new', properties: { formId: 'f' } },
    ])
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    // The assessment days (built from platform events only), one on each side of the cut.
    await db.current.owner`
      insert into analytics.assessment_rollups (tenant_id, day, measure, events)
      values (${t.id}, '2026-11-30', 'started', 2), (${t.id}, '2026-12-01', 'started', 3)`
    const cut = new Date('2026-12-01T00:00:00Z')
    const removed = await asTenant(t, async (tx) => ({
      aggregations: await deleteRollupsBefore(tx, 'event_aggregations', cut, 100),
      uniques: await deleteRollupsBefore(tx, 'daily_uniques', cut, 100),
      metrics: await deleteRollupsBefore(tx, 'metrics', cut, 100),
      assessments: await deleteRollupsBefore(tx, 'assessment_rollups', cut, 100),
    }))
    expect(removed).toEqual({ aggregations: 1, uniques: 1, metrics: 1, assessments: 1 })
    const assessmentDays = await db.current.owner<{ day: string }[]>`select day::text from analytics.assessment_rollups where tenant_id = ${t.id}`
    expect(assessmentDays.map((d) => d.day)).toEqual(['2026-12-01'])
    expect(await totals(t)).toEqual([{ bucketStart: nextDay, events: 1 }])
    const days = await db.current.owner<{ day: string }[]>`
      select day::text from analytics.daily_uniques where tenant_id = ${t.id} union all select day::text from analytics.metrics where tenant_id = ${t.id}`
    expect(days.map((d) => d.day)).toEqual(['2026-12-01', '2026-12-01'])
  })

  it("rolls up the other tenants when one tenant's roll-up fails, keeps that one's marks, and fails the run", async () => {
    const broken = await makeTenant(db.current.sql)
    const fine = await makeTenant(db.current.sql)
    await record(broken, [{ name: 'page', occurredAt: at(1) }])
    await record(fine, [{ name: 'page', occurredAt: at(1) }])
    // A timezone PostgreSQL does not know makes every day computation of that tenant fail.
    await db.current.owner`update core.tenants set timezone = 'Nowhere/Atlantis' where id = ${broken.id}`
    const run = rollUp(db.current.sql, { now: LATER })
    await expect(run).rejects.toBeInstanceOf(RollUpFailed)
    await expect(run).rejects.toMatchObject({ failures: [{ tenantId: broken.id }] })
    expect(await totals(fine)).toEqual([{ bucketStart: at(0), events: 1 }])
    expect(await totals(broken)).toEqual([])
    const [marks] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.rollup_dirty where tenant_id = ${broken.id}`
    expect(marks!.n).toBe(1)
    await db.current.owner`update core.tenants set timezone = 'UTC' where id = ${broken.id}`
    await rollUp(db.current.sql, { now: LATER })
    expect(await totals(broken)).toEqual([{ bucketStart: at(0), events: 1 }])
  })
})
