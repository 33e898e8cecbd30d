import { randomUUID } from 'node:crypto'
import { withTenant, type Sql } from '../../lib/db.js'
import { makeLead } from './marketing-rows.js'
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
    const campaignId = randomUUID()
    await tx`insert into campaigns.campaigns (id, tenant_id, name, utm_campaign) values (${campaignId}, ${tenant.id}, 'Performance', ${`perf-${campaignId.slice(0, 8)}`})`
    const lead = await makeLead(tx, tenant.id)
    await tx`
      insert into marketing.lead_attributions (tenant_id, lead_id, campaign_id, matched_on, match_value, platform, attributed_at)
      values (${tenant.id}, ${lead.id}, ${campaignId}, 'utm_campaign', ${`perf-${campaignId.slice(0, 8)}`}, 'meta', now())`
    await tx`
      insert into campaigns.spend_entries (tenant_id, campaign_id, platform, day, amount, currency)
      values (${tenant.id}, ${campaignId}, 'meta', current_date, 120.50, 'BRL')`
  })
}
