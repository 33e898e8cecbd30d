import { beforeAll, describe, expect, it } from 'vitest'
import { rollUp, rollupHealth } from '../domains/analytics/rollups.js'
import { recordEvents } from '../domains/analytics/service.js'
import { withTenant } from '../lib/db.js'
import { startMetricsServer } from '../lib/http/metrics.js'
import { startWorker, type WorkerHandle } from '../services/workers/worker.js'
import { testConfig, testLogger } from './apps.js'
import { useTestDatabase } from './db.js'
import { makeTenant } from './factories/tenants.js'

const sample = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? null : Number(line.split(' ')[1])
}

describe('rollup health on /metrics: analytics_rollup_difference_events and the watermark lag', () => {
  const db = useTestDatabase()
  const now = new Date()
  const bucket = new Date(Math.floor((now.getTime() - 30 * 60_000) / 300_000) * 300_000)

  beforeAll(async () => {
    const t = await makeTenant(db.current.sql)
    await withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, [
      { name: 'page', occurredAt: new Date(bucket.getTime() + 1000) }, { name: 'page', occurredAt: new Date(bucket.getTime() + 2000) },
      { name: 'page', occurredAt: new Date(bucket.getTime() + 5 * 60_000) },
    ]))
  })

  it('says how far the watermark lags and excludes buckets still waiting from the difference', async () => {
    const before = await rollupHealth(db.current.sql, 60, now)
    expect(before.difference).toBe(0)
    expect(before.dirtyBuckets).toBe(2)
    expect(before.lagSeconds).toBeCloseTo((now.getTime() - bucket.getTime()) / 1000, 0)
    await rollUp(db.current.sql, { now })
    const after = await rollupHealth(db.current.sql, 60, now)
    expect(after).toMatchObject({ difference: 0, dirtyBuckets: 0 })
    // Nothing waits: the lag is the open bucket's age only.
    expect(after.lagSeconds).toBeLessThanOrEqual(300)
  })

  it("reports drift on the worker's /metrics, read from the database at scrape time", async () => {
    await db.current.owner`update analytics.event_aggregations set events = events + 5 where bucket_start = ${bucket}`
    const server = (await startMetricsServer({ config: testConfig(), log: testLogger(), service: 'worker', port: 0 }))!
    let worker: WorkerHandle | undefined
    try {
      worker = await startWorker({ config: testConfig(), metricsSql: db.current.sql, log: testLogger(), connectionString: db.current.runtimeUrl, pollInterval: 60_000 })
      const text = await (await fetch(`${server.url}/metrics`)).text()
      expect(sample(text, 'analytics_rollup_difference_events')).toBe(5)
      expect(sample(text, 'analytics_rollup_dirty_buckets')).toBe(0)
      expect(sample(text, 'analytics_rollup_watermark_lag_seconds')).toBeLessThanOrEqual(300 + 60)
    } finally {
      await worker?.stop()
      await server.close()
    }
  })
})
