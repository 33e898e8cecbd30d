import { type Sql, withTenant } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** A row of the reports' daily rollup (migration 0054), for the RLS test; the roll-up itself is tested in domains/assessments/report.int.test.ts. */
export async function populateReportRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, (tx) => tx`
    insert into analytics.assessment_rollups (tenant_id, day, measure, assessment_id, events)
    values (${tenant.id}, current_date, 'started', 'rows', 1)`)
}
