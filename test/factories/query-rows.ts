import { withTenant, type Sql } from '../../lib/db.js'
import { rollUpDays } from '../../domains/analytics/query/days.js'
import type { TestTenant } from './tenants.js'

/**
 * Rows of the query API's day level (migration 0023), for the RLS test: the days populateAnalyticsRows rolled up,
 * summed, then one mark left waiting for the next rebuild.
 */
export async function populateQueryRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await rollUpDays(sql, { tenantId: tenant.id })
  await withTenant(sql, tenant.id, (tx) => tx`insert into analytics.daily_aggregations_dirty (tenant_id, day) values (${tenant.id}, current_date)`)
}
