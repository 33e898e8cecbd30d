/**
 * Rollups of analytics.events (migration 0022): 5-minute counts per name and dimensions (event_aggregations), unique
 * leads and visitors per tenant day (daily_uniques) and daily KPIs (metrics). A statement trigger on the events marks
 * every bucket a statement touches dirty (rollup_dirty); rollUp rebuilds each closed dirty bucket from raw (delete +
 * insert … group by, never an increment), so duplicates (which dedupe keeps out of raw) and late events (which just
 * dirty their bucket again) cannot make a rollup drift. reconcile compares the two and says where they differ.
 */
import { withTenant, type Sql, type Tx } from '../../lib/db.js'
import { listTenantsPage } from '../tenancy/queries.js'
import * as q from './rollup-queries.js'
import { rebuildAssessmentRollups, reconcileAssessmentRollups, type AssessmentReconciliation } from './assessment-rollups.js'

export { BUCKET_MINUTES, bucketOf } from './rollup-queries.js'

export interface RollUpOptions {
  /** Buckets ending at or before this are closed (tests and benches pass their own clock). */
  now?: Date
  /** Only this tenant (otherwise every tenant with dirty buckets: the cross-tenant cron task). */
  tenantId?: string
  /** Buckets rebuilt per transaction. */
  batchBuckets?: number
  /** No new batch starts after this many ms. */
  budgetMs?: number
}

export interface RollUpResult {
  tenants: number
  buckets: number
  /** Tenants skipped because another run held their roll-up. */
  busy: number
  /** True when the budget ran out with dirty closed buckets left (the next run carries on). */
  incomplete: boolean
}

const DEFAULT_BATCH = 50
const DEFAULT_BUDGET_MS = 45_000
const TENANTS_PER_PAGE = 100

/**
 * One batch of one tenant in one transaction: claim up to `limit` closed dirty buckets, rebuild their counts, their
 * days' unique subjects and KPIs, record the watermark. Returns the buckets rebuilt, or null when another run holds
 * the tenant.
 */
async function rollUpBatch(tx: Tx, now: Date, limit: number): Promise<number | null> {
  if (!(await q.tryLockTenantRollup(tx))) return null
  const claimed = await q.claimDirtyBuckets(tx, now, limit)
  if (claimed.length > 0) {
    // A backlog's batch groups hundreds of thousands of events: sorts and hashes in memory, not in temp files.
    if (limit > DEFAULT_BATCH) await q.setRollupWorkMem(tx)
    const tz = await q.tenantTimezone(tx)
    const buckets = claimed.map((c) => c.bucketStart)
    await q.rebuildAggregations(tx, buckets)
    await q.rebuildHourlyAggregations(tx, buckets)
    const recount = claimed.filter((c) => c.recount).map((c) => c.bucketStart)
    const recountDays = await q.daysOfBuckets(tx, recount, tz)
    await q.rebuildDailyUniques(tx, recountDays, tz)
    await q.addDailyUniques(tx, claimed.filter((c) => !c.recount).map((c) => c.bucketStart), tz)
    // A day's KPIs are rebuilt whole, so once per run is enough: a day that a closed bucket still waiting will touch
    // is left to the batch that takes that bucket (its marks keep it owed, even across a crash).
    const owed = new Set(withNeighbours(await q.daysStillDirty(tx, now, tz)))
    const days = withNeighbours(await q.daysOfBuckets(tx, buckets, tz)).filter((d) => !owed.has(d))
    await q.rebuildMetrics(tx, days, tz)
    // The assessment and partner reports' daily rollup (assessment-rollups.ts): the same days, the same rule.
    await rebuildAssessmentRollups(tx, days, tz)
  }
  await q.recordRollupRun(tx, now, claimed.length)
  return claimed.length
}

/** First-response time reads a day ahead and a day back: a change on D also changes D − 1 and D + 1. */
function withNeighbours(days: string[]): string[] {
  const all = new Set<string>()
  for (const d of days) {
    const t = Date.parse(`${d}T00:00:00Z`)
    for (const k of [-1, 0, 1]) all.add(new Date(t + k * 86_400_000).toISOString().slice(0, 10))
  }
  return [...all].sort()
}

async function rollUpTenant(sql: Sql, tenantId: string, now: Date, limit: number, deadline: number): Promise<{ buckets: number; busy: boolean; incomplete: boolean }> {
  let buckets = 0
  for (;;) {
    const n = await withTenant(sql, tenantId, (tx) => rollUpBatch(tx, now, limit))
    if (n === null) return { buckets, busy: true, incomplete: false }
    buckets += n
    if (n < limit) return { buckets, busy: false, incomplete: false }
    if (Date.now() >= deadline) return { buckets, busy: false, incomplete: true }
  }
}

/**
 * Rebuilds every closed dirty bucket (bucket end ≤ now) from raw, oldest first, in bounded batches within a time
 * budget. Cross-tenant unless `tenantId` is given: tenants come from analytics.rollup_dirty_tenants (ids only), and
 * each one's work runs under its own tenant. Safe to run concurrently with writers and with another run.
 */
export async function rollUp(sql: Sql, options: RollUpOptions = {}): Promise<RollUpResult> {
  const now = options.now ?? new Date()
  const limit = options.batchBuckets ?? DEFAULT_BATCH
  const deadline = Date.now() + (options.budgetMs ?? DEFAULT_BUDGET_MS)
  const result: RollUpResult = { tenants: 0, buckets: 0, busy: 0, incomplete: false }
  const visit = async (tenantId: string) => {
    const r = await rollUpTenant(sql, tenantId, now, limit, deadline)
    result.tenants++
    result.buckets += r.buckets
    if (r.busy) result.busy++
    if (r.incomplete) result.incomplete = true
  }
  if (options.tenantId) {
    await visit(options.tenantId)
    return result
  }
  const seen = new Set<string>()
  const failed: { tenantId: string; err: unknown }[] = []
  const finish = () => {
    // One tenant's failure (a lead deleted under the rebuild, an outage) must not hold the others back: they were
    // rolled up; the failed ones keep their marks (their transaction rolled back) and the job fails to be retried.
    if (failed.length > 0) throw new RollUpFailed(failed, result)
    return result
  }
  for (;;) {
    // Each pass takes the tenants whose oldest dirty bucket is oldest; a tenant finished (or busy) is not taken again.
    const page = (await q.dirtyTenants(sql, now, TENANTS_PER_PAGE + seen.size)).filter((t) => !seen.has(t.tenantId))
    if (page.length === 0) return finish()
    for (const t of page) {
      if (Date.now() >= deadline) {
        result.incomplete = true
        return finish()
      }
      seen.add(t.tenantId)
      try {
        await visit(t.tenantId)
      } catch (err) {
        failed.push({ tenantId: t.tenantId, err })
      }
    }
  }
}

/** Some tenants' roll-up failed (the others' committed). Names tenant ids only; `cause` is the first error. */
export class RollUpFailed extends Error {
  constructor(readonly failures: { tenantId: string; err: unknown }[], readonly result: RollUpResult) {
    super(`analytics roll-up failed for ${failures.length} tenant(s): ${failures.slice(0, 5).map((f) => f.tenantId).join(', ')}`, { cause: failures[0]?.err })
    this.name = 'RollUpFailed'
  }
}

export interface Watermark {
  /** Every bucket before this is rolled up and clean. */
  watermark: Date
  lastRunAt: Date | null
}

/** The transaction's tenant's watermark, live (a late event lowers it until its bucket is rebuilt). */
export const readWatermark = (tx: Tx, now: Date = new Date()): Promise<Watermark> => q.readWatermark(tx, now)

export interface BucketMismatch { bucketStart: Date; raw: number; rolledUp: number; difference: number }

export interface Reconciliation {
  /** Buckets of the range with events, raw or rolled up. */
  buckets: number
  /** Events in clean buckets, raw and rolled up. */
  raw: number
  rolledUp: number
  /** Events by which clean buckets differ (Σ|raw − rolled up|): 0 when the rollups are exact. */
  difference: number
  mismatches: BucketMismatch[]
  /** Buckets still waiting for the roll-up (dirty or still open): not drift, reported apart. */
  pending: { buckets: number; raw: number; rolledUp: number; oldest: Date | null }
  /** The assessment and partner reports' daily rollup against raw, row by row, over the range's final days. */
  assessments: AssessmentReconciliation
}

/**
 * Rollups against raw for [from, to) under the transaction's tenant, per 5-minute bucket. Buckets still dirty (or
 * open at `now`) are waiting for the roll-up and are reported under `pending`, not as drift. The assessment rollup is
 * compared row by row over the range's whole days behind the watermark (`assessments`).
 */
export async function reconcile(tx: Tx, range: { from: Date; to: Date; now?: Date }): Promise<Reconciliation> {
  const now = range.now ?? new Date()
  const open = q.bucketOf(now).getTime()
  const rows = await q.bucketCounts(tx, range.from, range.to)
  const { watermark } = await q.readWatermark(tx, now)
  const assessments = await reconcileAssessmentRollups(tx, range, watermark)
  const out: Reconciliation = { buckets: rows.length, raw: 0, rolledUp: 0, difference: 0, mismatches: [], pending: { buckets: 0, raw: 0, rolledUp: 0, oldest: null }, assessments }
  for (const r of rows) {
    if (r.dirty || r.bucketStart.getTime() >= open) {
      out.pending.buckets++
      out.pending.raw += r.raw
      out.pending.rolledUp += r.rolledUp
      out.pending.oldest ??= r.bucketStart
      continue
    }
    out.raw += r.raw
    out.rolledUp += r.rolledUp
    if (r.raw !== r.rolledUp) {
      out.difference += Math.abs(r.raw - r.rolledUp)
      out.mismatches.push({ bucketStart: r.bucketStart, raw: r.raw, rolledUp: r.rolledUp, difference: r.raw - r.rolledUp })
    }
  }
  return out
}

/** Cross-tenant health for /metrics: the platform's watermark lag and the difference over a recent window. */
export async function rollupHealth(sql: Sql, windowMinutes: number, now = new Date()): Promise<{ lagSeconds: number; dirtyBuckets: number; difference: number }> {
  const h = await q.rollupHealth(sql, new Date(now.getTime() - windowMinutes * 60_000), now)
  const watermark = Math.min(q.bucketOf(now).getTime(), h.oldestDirty?.getTime() ?? Infinity)
  return { lagSeconds: Math.max(0, (now.getTime() - watermark) / 1000), dirtyBuckets: h.dirtyBuckets, difference: h.difference }
}

export { mergeDailyUniques } from './rollup-queries.js'

export interface TenantReconciliation extends Reconciliation { tenantId: string }

/**
 * For operators: reconcile for one tenant, or for every tenant in turn (each under its own tenant), with the totals.
 * Tenants whose range holds no events are left out.
 */
export async function reconcileTenants(sql: Sql, range: { from: Date; to: Date; tenantId?: string; now?: Date }) {
  const tenants: TenantReconciliation[] = []
  const one = async (tenantId: string) => {
    const r = await withTenant(sql, tenantId, (tx) => reconcile(tx, range))
    if (r.buckets > 0 || r.assessments.rows > 0 || range.tenantId) tenants.push({ tenantId, ...r })
  }
  if (range.tenantId) await one(range.tenantId)
  else {
    let after: string | null = null
    for (;;) {
      const page = await listTenantsPage(sql, 200, after)
      for (const t of page) await one(t.id)
      if (page.length < 200) break
      after = page[page.length - 1]!.id
    }
  }
  const total = { raw: 0, rolledUp: 0, difference: 0, pendingBuckets: 0, assessmentDifference: 0 }
  for (const t of tenants) {
    total.raw += t.raw
    total.rolledUp += t.rolledUp
    total.difference += t.difference
    total.pendingBuckets += t.pending.buckets
    total.assessmentDifference += t.assessments.difference + (Number(t.assessments.amountDifference) === 0 ? 0 : t.assessments.mismatches.length)
  }
  return { from: range.from, to: range.to, total, tenants }
}
