import { randomBytes } from 'node:crypto'
import { type Sql, withTenant } from '../../lib/db.js'
import { makePartner } from './assessment-partners-rows.js'
import type { TestTenant } from './tenants.js'

/**
 * A row of the reports' daily rollup (migration 0054) and a partner key (0055), for the RLS test; the roll-up is
 * tested in domains/assessments/report.int.test.ts, the keys in services/api/modules/partner-portal.
 */
export async function populateReportRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    await tx`
      insert into analytics.assessment_rollups (tenant_id, day, measure, assessment_id, events)
      values (${tenant.id}, current_date, 'started', 'rows', 1)`
    const partner = await makePartner(tx, tenant.id)
    await tx`
      insert into assessments.partner_keys (tenant_id, partner_id, label, prefix, key_hash, created_by)
      values (${tenant.id}, ${partner.id}, 'rows', 'wpk_rows', ${randomBytes(32)}, 'test')`
  })
}
