import { withTenant, type Sql } from '../../lib/db.js'
import { makeTemplate, makeWhatsAppLead } from './conversations-rows.js'
import type { TestTenant } from './tenants.js'
import { makePhoneNumber } from './whatsapp.js'

/** A broadcast with one recipient, for the RLS test (domains/campaigns/broadcasts). */
export async function populateBroadcastRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const number = await makePhoneNumber(sql, tenant)
  const template = await makeTemplate(sql, tenant, number, { name: 'rls_broadcast', components: [{ type: 'BODY', text: 'Hello' }] })
  const lead = await makeWhatsAppLead(sql, tenant)
  await withTenant(sql, tenant.id, async (tx) => {
    const [b] = await tx<{ id: string }[]>`
      insert into campaigns.broadcasts (tenant_id, name, phone_number_id, template_id, template_name, template_language, audience)
      values (${tenant.id}, 'Rows', ${number.id}, ${template.id}, ${template.name}, ${template.language}, ${tx.json({ type: 'list', leadIds: [lead.id] })})
      returning id`
    await tx`
      insert into campaigns.broadcast_recipients (tenant_id, broadcast_id, lead_id, wa_id, state, components)
      values (${tenant.id}, ${b!.id}, ${lead.id}, ${lead.waId}, 'pending', '[]')`
  })
}
