import { randomBytes } from 'node:crypto'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { makeLead } from './marketing-rows.js'
import type { TestTenant } from './tenants.js'

/** A published assessment row (enough for links to point at; core's factories build real definitions). */
export async function makeLinkableAssessment(tx: Tx, tenantId: string, status = 'published'): Promise<{ id: string; publicKey: string; versionId: string }> {
  const publicKey = `pk_${randomBytes(12).toString('hex')}`
  const [a] = await tx<{ id: string }[]>`
    insert into assessments.assessments (tenant_id, key, type, name, public_key, status, published_version, rubric_version)
    values (${tenantId}, ${`a_${randomBytes(4).toString('hex')}`}, 'health', 'Linkable', ${publicKey}, ${status}, 1, 1) returning id`
  const [v] = await tx<{ id: string }[]>`
    insert into assessments.assessment_versions (tenant_id, assessment_id, version, questions, categories, rubric, questions_hash, rubric_version, published_at)
    values (${tenantId}, ${a!.id}, 1, '[]', '[]', '{}', 'h', 1, now()) returning id`
  return { id: a!.id, publicKey, versionId: v!.id }
}

export async function makePartner(tx: Tx, tenantId: string, o: { code?: string; commissionRate?: string; tier?: string; status?: string; currency?: string } = {}) {
  const [p] = await tx<{ id: string; code: string }[]>`
    insert into assessments.partners (tenant_id, code, name, commission_rate, tier, status, currency)
    values (${tenantId}, ${o.code ?? `p-${randomBytes(4).toString('hex')}`}, 'Partner', ${o.commissionRate ?? '0.1000'}, ${o.tier ?? 'standard'},
            ${o.status ?? 'active'}, ${o.currency ?? 'USD'})
    returning id, code`
  return p!
}

export async function makePartnerLink(tx: Tx, tenantId: string, partnerId: string, assessmentId: string, o: { code?: string; active?: boolean; destination?: string } = {}) {
  const [l] = await tx<{ id: string; linkCode: string }[]>`
    insert into assessments.links (tenant_id, partner_id, assessment_id, link_code, campaign_name, destination, active)
    values (${tenantId}, ${partnerId}, ${assessmentId}, ${o.code ?? `L${randomBytes(6).toString('hex')}`}, 'Spring', ${o.destination ?? 'web'}, ${o.active ?? true})
    returning id, link_code`
  return l!
}

export async function makeProduct(tx: Tx, tenantId: string, o: { sku?: string; price?: string; commissionRate?: string | null; currency?: string } = {}) {
  const [p] = await tx<{ id: string; sku: string }[]>`
    insert into assessments.products (tenant_id, sku, title, price, currency, commission_rate)
    values (${tenantId}, ${o.sku ?? `sku-${randomBytes(4).toString('hex')}`}, 'Supplement', ${o.price ?? '100.00'}, ${o.currency ?? 'USD'},
            ${o.commissionRate === undefined ? null : o.commissionRate})
    returning id, sku`
  return p!
}

/** One row in each table of migration 0035 (partners … ledger), for the RLS test. */
export async function populateAssessmentPartnersRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const lead = await makeLead(tx, tenant.id)
    const assessment = await makeLinkableAssessment(tx, tenant.id)
    const partner = await makePartner(tx, tenant.id)
    const link = await makePartnerLink(tx, tenant.id, partner.id, assessment.id)
    await tx`
      insert into assessments.link_clicks (tenant_id, link_id, partner_id, outcome, visitor_id, lead_id, ip_prefix, ip_hash, user_agent, referrer)
      values (${tenant.id}, ${link.id}, ${partner.id}, 'web', 'v-rows', ${lead.id}, '203.0.113.0/24', 'h', 'UA', 'https://ref.example/')`
    await tx`
      insert into assessments.attributions (tenant_id, lead_id, first_partner_id, first_link_id, first_channel, first_at, last_partner_id, last_link_id, last_channel, last_at)
      values (${tenant.id}, ${lead.id}, ${partner.id}, ${link.id}, 'web', now(), ${partner.id}, ${link.id}, 'web', now())`
    const product = await makeProduct(tx, tenant.id)
    await tx`insert into assessments.shop_endpoints (tenant_id, public_key, secret_sealed) values (${tenant.id}, ${`shop_${randomBytes(16).toString('hex')}`}, 'sealed')`
    const [purchase] = await tx<{ id: string }[]>`
      insert into assessments.purchases (tenant_id, external_id, source, product_id, quantity, amount, currency, lead_id, partner_id, link_id, purchased_at)
      values (${tenant.id}, 'tx-rows', 'api', ${product.id}, 1, '100.00', 'USD', ${lead.id}, ${partner.id}, ${link.id}, now()) returning id`
    const [commission] = await tx<{ id: string }[]>`
      insert into assessments.commissions (tenant_id, purchase_id, partner_id, base_amount, base_rate, rate_source, tier, tier_multiplier, rate, amount, currency, status)
      values (${tenant.id}, ${purchase!.id}, ${partner.id}, '100.00', '0.1', 'partner', 'standard', '1.00', '0.1', '10.00', 'USD', 'approved') returning id`
    await tx`
      insert into assessments.ledger_entries (tenant_id, partner_id, kind, amount, balance_after, currency, commission_id, actor)
      values (${tenant.id}, ${partner.id}, 'commission_approved', '10.00', 0, 'USD', ${commission!.id}, 'test')`
    const [w] = await tx<{ id: string }[]>`
      insert into assessments.withdrawals (tenant_id, partner_id, amount, currency, requested_by) values (${tenant.id}, ${partner.id}, '5.00', 'USD', 'test') returning id`
    await tx`
      insert into assessments.ledger_entries (tenant_id, partner_id, kind, amount, balance_after, currency, withdrawal_id, actor)
      values (${tenant.id}, ${partner.id}, 'withdrawal_requested', '-5.00', 0, 'USD', ${w!.id}, 'test')`
  })
}

/** A lead's rows in the partner tables a merge moves (a click, a purchase) and an assessment session through the link. */
export async function makeLeadPartnerRows(tx: Tx, tenantId: string, leadId: string): Promise<void> {
  const assessment = await makeLinkableAssessment(tx, tenantId)
  const partner = await makePartner(tx, tenantId)
  const link = await makePartnerLink(tx, tenantId, partner.id, assessment.id)
  const product = await makeProduct(tx, tenantId)
  await tx`
    insert into assessments.link_clicks (tenant_id, link_id, partner_id, outcome, visitor_id, lead_id, ip_prefix, ip_hash)
    values (${tenantId}, ${link.id}, ${partner.id}, 'web', ${`v-${leadId.slice(0, 8)}`}, ${leadId}, '198.51.100.0/24', 'h')`
  await tx`
    insert into assessments.purchases (tenant_id, external_id, source, product_id, quantity, amount, currency, lead_id, partner_id, link_id, purchased_at)
    values (${tenantId}, ${`tx-${leadId}`}, 'api', ${product.id}, 1, '100.00', 'USD', ${leadId}, ${partner.id}, ${link.id}, now())`
  await tx`
    insert into assessments.sessions (tenant_id, assessment_id, version_id, channel, lead_id, link_id, partner_id)
    values (${tenantId}, ${assessment.id}, ${assessment.versionId}, 'web', ${leadId}, ${link.id}, ${partner.id})`
}
