import { randomUUID } from 'node:crypto'
import { withTenant, type Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** One row in each campaigns table, owned by the tenant, for the RLS test. */
export async function populateCampaignsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const productId = randomUUID()
    const campaignId = randomUUID()
    const imageId = randomUUID()
    const creativeId = randomUUID()
    const integrationId = randomUUID()
    await tx`
      insert into campaigns.products (id, tenant_id, name, sku, price, currency, url, utm)
      values (${productId}, ${tenant.id}, 'Starter plan', ${`SKU-${productId.slice(0, 8)}`}, 49.90, 'BRL', 'https://example.com/starter',
              ${tx.json({ source: 'meta', medium: 'cpc' })})`
    await tx`
      insert into campaigns.campaigns (id, tenant_id, name, type, status, budget, currency, product_id, utm_campaign, config)
      values (${campaignId}, ${tenant.id}, 'Launch', 'lead_generation', 'draft', 1500.00, 'BRL', ${productId}, ${`launch-${productId.slice(0, 8)}`}, '{}')`
    await tx`insert into campaigns.product_images (id, tenant_id, product_id, url, is_primary) values (${imageId}, ${tenant.id}, ${productId}, 'https://example.com/a.png', true)`
    await tx`insert into campaigns.product_images (tenant_id, product_id, kind, parent_image_id, url) values (${tenant.id}, ${productId}, 'background', ${imageId}, 'https://example.com/a-bg.png')`
    await tx`insert into campaigns.creatives (id, tenant_id, campaign_id, title, format, width, height) values (${creativeId}, ${tenant.id}, ${campaignId}, 'Feed 1:1', 'image', 1080, 1080)`
    await tx`insert into campaigns.creative_versions (tenant_id, creative_id, version, title, format, width, height, elements, created_by) values (${tenant.id}, ${creativeId}, 1, 'Feed 1:1', 'image', 1080, 1080, '[]', 'test')`
    await tx`insert into campaigns.creative_assets (tenant_id, creative_id, kind, url) values (${tenant.id}, ${creativeId}, 'image', 'https://example.com/asset.png')`
    await tx`insert into campaigns.platform_integrations (id, tenant_id, platform, account_id, access_token_sealed) values (${integrationId}, ${tenant.id}, 'meta', ${`act_${integrationId.slice(0, 8)}`}, 'v1.sealed')`
    await tx`insert into campaigns.publications (tenant_id, campaign_id, platform, integration_id, external_id, status) values (${tenant.id}, ${campaignId}, 'meta', ${integrationId}, ${`ext-${campaignId}`}, 'published')`
    await tx`
      insert into campaigns.ai_generations (tenant_id, campaign_id, type, prompt, service, cost, started_at, completed_at, created_by)
      values (${tenant.id}, ${campaignId}, 'copy', 'Write a headline', 'emulator', 0.0012, now() - interval '2 seconds', now(), 'test')`
    await tx`insert into campaigns.campaign_drafts (campaign_id, tenant_id, data, base_version, expires_at) values (${campaignId}, ${tenant.id}, '{"name":"Launch 2"}', 1, now() + interval '7 days')`
    await tx`insert into campaigns.campaign_snapshots (tenant_id, campaign_id, label, version, state, created_by) values (${tenant.id}, ${campaignId}, 'v1', 1, '{}', 'test')`
    await tx`insert into campaigns.legacy_imports (tenant_id, legacy_key, target_type, target_id, imported_by) values (${tenant.id}, ${`campaign:${campaignId}`}, 'campaign', ${campaignId}, 'test')`
  })
}
