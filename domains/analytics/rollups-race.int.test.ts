import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import * as q from './rollup-queries.js'
import { reconcile, rollUp } from './rollups.js'
import { recordEvents, type EventRow } from './service.js'

const B = new Date('2026-11-30T10:00:00.000Z')
const inB = (seconds: number) => new Date(B.getTime() + seconds * 1000)
const LATER = new Date('2026-12-01T00:00:00.000Z')

/** A promise and its resolve, to hold one connection's transaction open while the other acts. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

/**
 * Writers and the roll-up on two connections, interleaved by hand at the points where a lost event would happen:
 * the roll-up must never delete the mark of an event it did not count.
 */
describe('rollups under concurrent writers: no event is lost', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
  })

  const record = (rows: EventRow[]) => withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, rows))
  const rolledUp = async () => {
    const [r] = await db.current.owner<{ n: number }[]>`
      select coalesce(sum(events), 0)::int as n from analytics.event_aggregations where tenant_id = ${tenant.id} and bucket_start = ${B}`
    return r!.n
  }
  const marks = async () => {
    const [r] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.rollup_dirty where tenant_id = ${tenant.id} and bucket_start = ${B}`
    return r!.n
  }
  const check = () => withTenant(db.current.sql, tenant.id, (tx) => reconcile(tx, { from: B, to: LATER, now: LATER }))

  it('keeps the bucket dirty when a writer that marked it commits after the roll-up counted without it', async () => {
    await record([{ name: 'page', occurredAt: inB(1), dedupeKey: 'e1' }])
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    expect(await rolledUp()).toBe(1)

    // Connection 1: a writer records e2 in the rolled-up bucket (its trigger marks it) and does not commit yet.
    const inserted = gate()
    const commit = gate()
    const writer = withTenant(db.current.sql, tenant.id, async (tx) => {
      await recordEvents(tx, [{ name: 'page', occurredAt: inB(2), dedupeKey: 'e2' }])
      inserted.open()
      await commit.opened
    })
    await inserted.opened
    // Meanwhile e3 commits in the same bucket: its mark is committed and visible.
    await record([{ name: 'page', occurredAt: inB(3), dedupeKey: 'e3' }])

    // Connection 2: the roll-up neither waits for the writer nor counts its uncommitted e2, and deletes only e3's mark.
    const run = await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    expect(run.buckets).toBe(1)
    expect(await rolledUp()).toBe(2)

    commit.open()
    await writer
    // e2's mark survived: the bucket is pending (not drift) until the next run counts it.
    expect(await check()).toMatchObject({ difference: 0, pending: { buckets: 1, raw: 3, rolledUp: 2 } })
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    expect(await rolledUp()).toBe(3)
    expect(await check()).toMatchObject({ raw: 3, rolledUp: 3, difference: 0, pending: { buckets: 0 } })
  })

  it('counts a writer that commits between the roll-up taking its marks and rebuilding, and rebuilds once more for its mark', async () => {
    // Connection 2 first: the roll-up takes the bucket's marks and stops before rebuilding.
    await record([{ name: 'page', occurredAt: inB(4), dedupeKey: 'e4' }])
    const claimed = gate()
    const rebuild = gate()
    const roller = withTenant(db.current.sql, tenant.id, async (tx) => {
      const taken = await q.claimDirtyBuckets(tx, LATER, 10)
      claimed.open()
      await rebuild.opened
      await q.rebuildAggregations(tx, taken.map((t) => t.bucketStart))
    })
    await claimed.opened
    // Connection 1: a writer records e5 and commits while the roll-up is between its statements (nothing waits).
    await record([{ name: 'page', occurredAt: inB(5), dedupeKey: 'e5' }])
    rebuild.open()
    await roller
    // The rebuild's own snapshot saw e5; e5's mark was not taken, so the bucket is rebuilt again, to the same count.
    expect(await rolledUp()).toBe(5)
    expect(await marks()).toBe(1)
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    expect(await rolledUp()).toBe(5)
    expect(await marks()).toBe(0)
    expect(await check()).toMatchObject({ raw: 5, rolledUp: 5, difference: 0 })
  })

  it('loses nothing with many writers and roll-ups running at once', async () => {
    const t = await makeTenant(db.current.sql)
    const writers = Array.from({ length: 8 }, (_, w) => (async () => {
      for (let i = 0; i < 20; i++) {
        await withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, Array.from({ length: 5 }, (_, k) => ({
          name: 'page', occurredAt: new Date(B.getTime() + ((w * 100 + i * 5 + k) % 900) * 1000), dedupeKey: `w${w}:${i}:${k}`,
        }))))
      }
    })())
    let stop = false
    const rollers = Array.from({ length: 2 }, () => (async () => {
      while (!stop) await rollUp(db.current.sql, { now: LATER, tenantId: t.id, batchBuckets: 2 })
    })())
    await Promise.all(writers)
    stop = true
    await Promise.all(rollers)
    await rollUp(db.current.sql, { now: LATER, tenantId: t.id })
    const result = await withTenant(db.current.sql, t.id, (tx) => reconcile(tx, { from: B, to: LATER, now: LATER }))
    expect(result).toMatchObject({ raw: 800, rolledUp: 800, difference: 0, pending: { buckets: 0 } })
  })
})
