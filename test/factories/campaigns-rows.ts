import { randomUUID } from 'node:crypto'
import { withTenant, type Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** One row in each campaigns table, owned by the tenant, for the RLS test. */
export async function populateCampaignsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const productId = randomUUID()
    await tx`
      insert into campaigns.products (id, tenant_id, name, sku, price, currency, url, utm)
      values (${productId}, ${tenant.id}, 'Starter plan', ${`SKU-${productId.slice(0, 8)}`}, 49.90, 'BRL', 'https://example.com/starter',
              ${tx.json({ source: 'meta', medium: 'cpc' })})`
    await tx`
      insert into campaigns.campaigns (tenant_id, name, type, status, budget, currency, product_id, utm_campaign, config)
      values (${tenant.id}, 'Launch', 'lead_generation', 'draft', 1500.00, 'BRL', ${productId}, ${`launch-${productId.slice(0, 8)}`}, '{}')`
  })
}
