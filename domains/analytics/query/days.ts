/**
 * The day level of the rollups (migration 0023): analytics.daily_aggregations, each tenant day's event counts by
 * name and dimensions, summed from the 5-minute analytics.event_aggregations. A trigger marks a day dirty whenever
 * the roll-up rebuilds one of its buckets; rollUpDays rebuilds the marked days (delete + insert, never an
 * increment), and the query API reads a day from this level only while it has no mark. So the day level can never
 * drift from the 5-minute level, which cannot drift from raw.
 */
import { withTenant, type Sql } from '../../../lib/db.js'
import * as q from './queries.js'

const TENANTS_PER_RUN = 500
const DAYS_PER_BATCH = 40

/** Rebuilds every marked day, per tenant (all tenants with marks unless one is given). Returns the days rebuilt. */
export async function rollUpDays(sql: Sql, options: { tenantId?: string } = {}): Promise<{ tenants: number; days: number }> {
  const tenants = options.tenantId ? [options.tenantId] : await q.dirtyDayTenants(sql, TENANTS_PER_RUN)
  let days = 0
  for (const tenantId of tenants) {
    for (;;) {
      const n = await withTenant(sql, tenantId, async (tx) => {
        const claimed = await q.claimDirtyDays(tx, DAYS_PER_BATCH)
        await q.rebuildDailyAggregations(tx, claimed)
        return claimed.length
      })
      days += n
      if (n < DAYS_PER_BATCH) break
    }
  }
  return { tenants: tenants.length, days }
}
