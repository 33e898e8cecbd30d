import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { recordEvents } from '../../../../domains/analytics/service.js'
import { withTenant } from '../../../../lib/db.js'
import { crontab } from '../../../../services/workers/crontab.js'
import { rollUpTask } from '../../../../services/workers/tasks/analytics__roll_up.js'
import { workerLogger } from '../../../../services/workers/worker.js'
import { bearer, buildTestApi, OPERATOR_KEY, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { expectErrorShape } from '../../../../test/raw-http.js'

type App = Awaited<ReturnType<typeof buildTestApi>>

// An hour ago and before: closed buckets, rolled up by the real task.
const base = new Date(Math.floor((Date.now() - 3_600_000) / 300_000) * 300_000)
const at = (minutes: number) => new Date(base.getTime() + minutes * 60_000)
const range = { from: at(-60).toISOString(), to: new Date(Date.now() + 3_600_000).toISOString() }
const url = (q: Record<string, string> = range) => `/v1/ops/analytics/reconciliation?${new URLSearchParams(q)}`

describe('GET /v1/ops/analytics/reconciliation and the analytics__roll_up task', () => {
  const db = useTestDatabase()
  let api: App
  let a: TestTenant
  let b: TestTenant

  /** The real task, run once by graphile-worker as the cron would. */
  const runRollUpJob = async () => {
    await db.current.owner`select graphile_worker.add_job('analytics__roll_up', '{}'::json)`
    await runOnce({
      connectionString: db.current.runtimeUrl,
      taskList: { analytics__roll_up: rollUpTask({ config: testConfig(), sql: db.current.sql, log: testLogger() }) },
      logger: workerLogger(testLogger()),
    })
  }
  const get = (path: string, key = OPERATOR_KEY) => api.inject({ method: 'GET', url: path, headers: bearer(key) })

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
    await withTenant(db.current.sql, a.id, (tx) => recordEvents(tx, [
      { name: 'page', occurredAt: at(1), dedupeKey: 'a1' }, { name: 'page', occurredAt: at(6), dedupeKey: 'a2' }, { name: 'page', occurredAt: at(7), dedupeKey: 'a3' },
    ]))
    await withTenant(db.current.sql, b.id, (tx) => recordEvents(tx, [{ name: 'page', occurredAt: at(2), dedupeKey: 'b1' }]))
  })
  afterAll(async () => {
    await api?.close()
  })

  it('runs every minute from the crontab, with an id', () => {
    expect(crontab).toContain('* * * * * analytics__roll_up ?id=roll_up&max=1')
  })

  it('reports closed buckets not rolled up yet as pending, not as a difference', async () => {
    const res = await get(url())
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.total).toEqual({ raw: 0, rolledUp: 0, difference: 0, pendingBuckets: 3, assessmentDifference: 0 })
    expect(body.tenants.find((t: { tenantId: string }) => t.tenantId === a.id).pending).toEqual({ buckets: 2, raw: 3, rolledUp: 0, oldest: at(0).toISOString() })
  })

  it('reports 0 difference per tenant and in total after the task ran, and a bucket that drifted as a mismatch', async () => {
    await runRollUpJob()
    const res = await get(url())
    expect(res.statusCode).toBe(200)
    expect(res.json().total).toEqual({ raw: 4, rolledUp: 4, difference: 0, pendingBuckets: 0, assessmentDifference: 0 })

    // Drift as only a bug (or a hand edit) could make it: a rolled-up count changed behind the roll-up's back.
    await db.current.owner`update analytics.event_aggregations set events = events + 2 where tenant_id = ${a.id} and bucket_start = ${at(5)}`
    const drifted = (await get(url({ ...range, tenantId: a.id }))).json()
    expect(drifted.tenants).toEqual([{
      tenantId: a.id, buckets: 2, raw: 3, rolledUp: 5, difference: 2,
      mismatches: [{ bucketStart: at(5).toISOString(), raw: 2, rolledUp: 4, difference: -2 }],
      pending: { buckets: 0, raw: 0, rolledUp: 0, oldest: null },
      assessments: { days: expect.any(Number), rows: 0, difference: 0, amountDifference: '0', mismatches: [] },
    }])
    expect(drifted.total.difference).toBe(2)
  })

  it.each([
    ['no range', {}, 'from'],
    ['a date that is not ISO', { from: 'yesterday', to: range.to }, 'from'],
    ['to before from', { from: range.to, to: range.from }, 'to'],
    ['more than 31 days', { from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }, 'to'],
    ['a tenant id that is not a uuid', { ...range, tenantId: 'acme' }, 'tenantId'],
  ])('answers 400 for %s', async (_why, query, path) => {
    const res = await get(url(query as Record<string, string>))
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String), details: expect.any(Array), requestId: expect.any(String) } })
    expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
  })

  describe('security', () => {
    it('refuses a tenant admin key (403) and no key (401): counts across tenants are for operators only', async () => {
      const tenantKey = await get(url(), a.adminKey)
      expect(tenantKey.statusCode).toBe(403)
      expectErrorShape(tenantKey.json(), 'FORBIDDEN')
      const none = await api.inject({ method: 'GET', url: url() })
      expect(none.statusCode).toBe(401)
      expectErrorShape(none.json(), 'UNAUTHORIZED')
    })

    it('shows one tenant only its own buckets when asked for one', async () => {
      const body = (await get(url({ ...range, tenantId: b.id }))).json()
      expect(body.tenants.map((t: { tenantId: string }) => t.tenantId)).toEqual([b.id])
      expect(body.total).toMatchObject({ raw: 1, rolledUp: 1 })
    })
  })
})
