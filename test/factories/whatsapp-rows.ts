import { withTenant, type Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'
import { makePhoneNumber } from './whatsapp.js'

/** One row in each whatsapp table, and the lead, interaction and event an inbound message brings. */
export async function populateWhatsappRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const number = await makePhoneNumber(sql, tenant)
  await withTenant(sql, tenant.id, async (tx) => {
    const [account] = await tx<{ id: string }[]>`select business_account_id as id from whatsapp.phone_numbers where id = ${number.id}`
    const [lead] = await tx<{ id: string }[]>`
      insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, source)
      values (${tenant.id}, '+5511987654321', '+5511987654321', '5511987654321', 'whatsapp') returning id`
    const [message] = await tx<{ id: string }[]>`
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
      values (${tenant.id}, ${number.id}, ${lead!.id}, 'inbound', ${`wamid.rows-${tenant.id}`}, '5511987654321', 'text', '{"body":"hi"}', 'received', now())
      returning id`
    await tx`
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, message_id, dedupe_key)
      values (${tenant.id}, ${lead!.id}, 'whatsapp_message', 'whatsapp', now(), ${message!.id}, ${`rows:${tenant.id}`})`
    await tx`insert into analytics.events (tenant_id, name, lead_id, occurred_at) values (${tenant.id}, 'whatsapp.message_received', ${lead!.id}, now())`
    await tx`
      insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at)
      values (${tenant.id}, ${`wamid.out-${tenant.id}`}, 'sent', now())`
    await tx`
      insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
      values (${tenant.id}, ${number.id}, '5511987654321', ${lead!.id}, now())`
    await tx`
      insert into whatsapp.templates (tenant_id, business_account_id, meta_template_id, name, language, status)
      values (${tenant.id}, ${account!.id}, ${`tpl-${tenant.id}`}, 'welcome', 'en_US', 'APPROVED')`
    await tx`
      insert into whatsapp.management_events (tenant_id, business_account_id, kind, item_key, occurred_at, value)
      values (${tenant.id}, ${account!.id}, 'account_update', ${`account_update:${tenant.id}`}, now(), '{"event":"VERIFIED_ACCOUNT"}')`
    await tx`
      insert into whatsapp.webhook_errors (tenant_id, phone_number_id, code, title, item_key)
      values (${tenant.id}, ${number.id}, 130429, 'Rate limit hit', ${`error:${tenant.id}`})`
  })
}
