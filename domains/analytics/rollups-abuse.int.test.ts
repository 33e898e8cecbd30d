import { describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { abusiveStream } from '../../test/factories/event-stream.js'
import { makeTenant } from '../../test/factories/tenants.js'
import { reconcile, rollUp } from './rollups.js'
import { recordEvents } from './service.js'

/** The bench's correctness-under-abuse run (ops/bench/analytics-rollup.ts) at a test's scale. */
describe('rollups under abuse: duplicates and late arrivals', () => {
  const db = useTestDatabase()

  it('reconciles to 0 after 5,000 events with 20% duplicates and 10% late, rolled up while they arrive', async () => {
    const t = await makeTenant(db.current.sql)
    const now = new Date()
    const from = new Date(now.getTime() - 3 * 3_600_000)
    const stream = abusiveStream(5000, { from, to: new Date(now.getTime() - 10 * 60_000), batch: 250, seed: 7 })
    const send = async (batches: typeof stream.onTime) => {
      let added = 0
      for (const b of batches) added += await withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, b))
      return added
    }
    let stop = false
    const roller = (async () => {
      while (!stop) await rollUp(db.current.sql, { tenantId: t.id, batchBuckets: 5 })
    })()
    const onTime = await send(stream.onTime)
    stop = true
    await roller
    await rollUp(db.current.sql, { tenantId: t.id })
    // Every bucket the late events fall in was rolled up already.
    const late = await send(stream.late)
    expect(onTime + late).toBe(stream.unique)
    const before = await withTenant(db.current.sql, t.id, (tx) => reconcile(tx, { from, to: now }))
    expect(before.difference).toBe(0)
    expect(before.pending.buckets).toBeGreaterThan(0)

    await rollUp(db.current.sql, { tenantId: t.id })
    const after = await withTenant(db.current.sql, t.id, (tx) => reconcile(tx, { from, to: now }))
    expect(after).toMatchObject({ raw: stream.unique, rolledUp: stream.unique, difference: 0, mismatches: [], pending: { buckets: 0 } })
  })
})
