import { withTenant, type Sql } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** One row in each table of migration 0018 (export requests and their pieces, retention settings and runs). */
export async function populatePrivacyExportRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const [request] = await tx<{ id: string }[]>`
      insert into privacy.export_requests (tenant_id, subject_kind, subject_hash, status, requested_by, ready_at, expires_at, row_counts, bytes)
      values (${tenant.id}, 'email', 'rows-hash', 'ready', 'test', now(), now() + interval '7 days', '{}', 2)
      returning id`
    await tx`insert into privacy.export_chunks (tenant_id, export_id, seq, body) values (${tenant.id}, ${request!.id}, 0, '{}')`
    await tx`
      insert into privacy.retention_settings (tenant_id, analytics_events_days, messages_days, interactions_days, exports_days, updated_by)
      values (${tenant.id}, 90, null, null, 7, 'test')`
    await tx`insert into privacy.retention_runs (tenant_id, settings, status, finished_at) values (${tenant.id}, '{}', 'completed', now())`
  })
}

export interface PersonWithHistory {
  leadId: string
  mergedLeadId: string
  email: string
  waId: string
  /** A string written into every row of this person's history: an export of anyone else must not contain it. */
  marker: string
  messageIds: string[]
  outboundWamid: string
  conversationId: string
}

/**
 * A person with everything the platform can hold about them: a form submission with its consent, WhatsApp messages
 * in and out with the outbound one's status history and send, interactions, a conversation with events, analytics
 * events, a lead merged into them earlier, and a submission still waiting in the form inbox. `events` sets how many
 * analytics events (each with a ~1 KB property) to add.
 */
export async function makePersonWithHistory(
  sql: Sql,
  tenant: TestTenant,
  input: { number: { id: string }; formId: string; marker: string; waId: string; events?: number },
): Promise<PersonWithHistory> {
  const { marker, waId } = input
  const email = `${marker}@example.com`
  return withTenant(sql, tenant.id, async (tx) => {
    const [lead] = await tx<{ id: string }[]>`
      insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, email, name, source, fields)
      values (${tenant.id}, ${`+${waId}`}, ${`+${waId}`}, ${waId}, ${email}, ${`Name ${marker}`}, 'web_form', ${tx.json({ note: marker })})
      returning id`
    const leadId = lead!.id
    const [merged] = await tx<{ id: string }[]>`
      insert into marketing.leads (tenant_id, email, name, source, merged_into)
      values (${tenant.id}, ${`old-${email}`}, ${`Old ${marker}`}, 'import', ${leadId}) returning id`
    await tx`
      insert into marketing.lead_merges (tenant_id, survivor_id, merged_id, reason, merged_snapshot, actor)
      values (${tenant.id}, ${leadId}, ${merged!.id}, 'manual', ${tx.json({ name: `Old ${marker}` })}, 'test')`
    const [submission] = await tx<{ id: string }[]>`
      insert into marketing.form_submissions (tenant_id, form_id, lead_id, answers, ip, user_agent)
      values (${tenant.id}, ${input.formId}, ${leadId}, ${tx.json({ name: `Name ${marker}`, email })}, '203.0.113.7', ${`agent ${marker}`})
      returning id`
    await tx`
      insert into marketing.consents (tenant_id, lead_id, channel, form_id, submission_id, granted, purpose, policy_version, ip, user_agent, occurred_at)
      values (${tenant.id}, ${leadId}, 'web_form', ${input.formId}, ${submission!.id}, true, 'Contact me on WhatsApp', 'v1', '203.0.113.7', ${`agent ${marker}`}, now())`
    const [inbound] = await tx<{ id: string }[]>`
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
      values (${tenant.id}, ${input.number.id}, ${leadId}, 'inbound', ${`wamid.in-${marker}`}, ${waId}, 'text', ${tx.json({ body: `hello from ${marker}` })}, 'received', now())
      returning id`
    const outboundWamid = `wamid.out-${marker}`
    const [outbound] = await tx<{ id: string }[]>`
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, status_rank, occurred_at)
      values (${tenant.id}, ${input.number.id}, ${leadId}, 'outbound', ${outboundWamid}, ${waId}, 'text', ${tx.json({ body: `reply to ${marker}` })}, 'delivered', 20, now())
      returning id`
    await tx`
      insert into whatsapp.outbound_sends (message_id, tenant_id, phone_number_id, wa_id, kind, body, source, requested_by, idempotency_key, state, accepted_at)
      values (${outbound!.id}, ${tenant.id}, ${input.number.id}, ${waId}, 'text', ${tx.json({ to: waId, text: { body: `reply to ${marker}` } })}, 'bot', 'test', ${`idem-${marker}`}, 'accepted', now())`
    for (const status of ['sent', 'delivered']) {
      await tx`
        insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at, recipient_id)
        values (${tenant.id}, ${outboundWamid}, ${status}, now(), ${waId})`
    }
    await tx`
      insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
      values (${tenant.id}, ${input.number.id}, ${waId}, ${leadId}, now())`
    await tx`
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, occurred_at, message_id, details)
      values (${tenant.id}, ${leadId}, 'whatsapp_message', 'whatsapp', now(), ${inbound!.id}, ${tx.json({ marker })}),
             (${tenant.id}, ${leadId}, 'form_submitted', 'web', now(), null, ${tx.json({ marker })})`
    const [conversation] = await tx<{ id: string }[]>`
      insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id, state)
      values (${tenant.id}, ${leadId}, ${input.number.id}, ${waId}, ${tx.json({ answers: { name: marker } })}) returning id`
    await tx`
      insert into conversations.events (tenant_id, conversation_id, kind, dedupe_key, message_id, payload, occurred_at, status)
      values (${tenant.id}, ${conversation!.id}, 'message', ${`m-${marker}`}, ${inbound!.id}, ${tx.json({ text: `hello from ${marker}` })}, now(), 'applied'),
             (${tenant.id}, ${conversation!.id}, 'timer', ${`t-${marker}`}, null, ${tx.json({ marker })}, now(), 'pending')`
    const padding = 'x'.repeat(1000)
    await tx`
      insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties)
      select ${tenant.id}, 'page_viewed', ${leadId}, now() - g * interval '1 minute', jsonb_build_object('marker', ${marker}::text, 'n', g, 'pad', ${padding}::text)
        from generate_series(1, ${input.events ?? 3}) g`
    await tx`
      insert into marketing.form_submission_inbox (id, tenant_id, form_id, submission, received_at, status, attempts, last_error)
      values (gen_random_uuid(), ${tenant.id}, ${input.formId}, ${tx.json({ lead: { email, phoneE164: null, name: marker } })}, now(), 'parked', 8, 'test')`
    return {
      leadId, mergedLeadId: merged!.id, email, waId, marker, messageIds: [inbound!.id, outbound!.id], outboundWamid, conversationId: conversation!.id,
    }
  })
}
