import { randomUUID } from 'node:crypto'
import { withTenant, type Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** One row in each media-plan table (0032) and in the attribution and spend tables (0041), owned by the tenant, for the RLS test. */
export async function populateMediaPlansRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const planId = randomUUID()
    await tx`
      insert into campaigns.media_plans (id, tenant_id, name, budget, currency, niche, lead_to_sale_pct, revenue_per_sale)
      values (${planId}, ${tenant.id}, 'Q1 plan', 1000.00, 'BRL', 'health', 10, 300.00)`
    await tx`
      insert into campaigns.media_plan_allocations (tenant_id, plan_id, platform, position, percent, cpl)
      values (${tenant.id}, ${planId}, 'meta', 0, 100, 20)`
    await tx`
      insert into campaigns.media_plan_snapshots (tenant_id, plan_id, name, plan_version, state)
      values (${tenant.id}, ${planId}, 'first', 1, '{}')`
    await tx`
      insert into campaigns.media_plan_templates (tenant_id, name, body) values (${tenant.id}, 'Mine', '{}')`
  })
}
