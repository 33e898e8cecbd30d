import type { Tx } from '../../lib/db.js'
import { phoneMatchKey, waIdToE164 } from '../marketing/identity/phone.js'
import type {
  AccountUpdateItem, ErrorItem, MessageItem, PhoneNumberNameItem, PhoneNumberQualityItem, StatusItem,
  TemplateCategoryItem, TemplateQualityItem, TemplateStatusItem,
} from './webhook/split.js'

/** The tenant-side context of one routed item. */
export interface RoutedPhone {
  tenantId: string
  /** Our whatsapp.phone_numbers.id */
  phoneId: string
}

/**
 * The identity key of a WhatsApp sender: the canonical phone key when the wa_id is a phone number; Meta's
 * business-scoped user id for people who hide their number behind a username.
 */
export function senderIdentity(item: MessageItem): { waId: string; phoneE164: string | null; phoneKey: string } | null {
  const waId = item.message.from ?? item.message.fromUserId
  if (!waId) return null
  const e164 = item.message.from ? waIdToE164(item.message.from) : null
  return { waId, phoneE164: e164, phoneKey: e164 ? phoneMatchKey(e164) : `bsuid:${waId}` }
}

export interface InboundEntry {
  route: RoutedPhone
  item: MessageItem
  sender: { waId: string; phoneE164: string | null; phoneKey: string }
}

/**
 * A tenant's inbound messages of one batch, set-based: one statement finds or creates their leads, one stores the
 * messages (once per wamid) and, only for the ones that were new, adds their interactions and analytics events and
 * moves the service windows. A replay, or the same message in another delivery, inserts nothing and leaves the lead
 * as it was (its times only move with greatest/least). Returns the messages that were new, in arrival order.
 */
export async function applyInboundMessages(tx: Tx, tenantId: string, entries: InboundEntry[]): Promise<{ messageId: string; leadId: string; entry: InboundEntry }[]> {
  const byWamid = new Map<string, InboundEntry>()
  for (const e of entries) if (!byWamid.has(e.item.message.wamid)) byWamid.set(e.item.message.wamid, e)
  const unique = [...byWamid.values()]
  if (unique.length === 0) return []

  // One row per person. Sorted by key so that concurrent batches lock leads in the same order (no deadlocks).
  const people = new Map<string, { phone_key: string; phone_e164: string | null; wa_id: string; profile_name: string | null; source: string; source_details: unknown; first_seen_at: string; last_seen_at: string }>()
  for (const { item, sender } of unique) {
    const at = (item.message.timestamp ?? new Date()).toISOString()
    const referral = item.message.referral
    const p = people.get(sender.phoneKey)
    if (!p) {
      people.set(sender.phoneKey, {
        phone_key: sender.phoneKey, phone_e164: sender.phoneE164, wa_id: sender.waId, profile_name: item.contactName,
        source: referral ? 'whatsapp_ad' : 'whatsapp', source_details: referral ? { referral } : {}, first_seen_at: at, last_seen_at: at,
      })
    } else {
      p.wa_id = sender.waId
      p.profile_name = item.contactName ?? p.profile_name
      if (at < p.first_seen_at) p.first_seen_at = at
      if (at > p.last_seen_at) p.last_seen_at = at
    }
  }
  const leadRows = [...people.values()].sort((a, b) => (a.phone_key < b.phone_key ? -1 : 1))
  const leads = await tx<{ id: string; phoneKey: string }[]>`
    insert into marketing.leads as l (tenant_id, phone_e164, phone_key, wa_id, profile_name, source, source_details, first_seen_at, last_seen_at)
    select ${tenantId}, x.phone_e164, x.phone_key, x.wa_id, x.profile_name, x.source, x.source_details, x.first_seen_at, x.last_seen_at
      from jsonb_to_recordset(${tx.json(leadRows as never)}::jsonb)
           as x(phone_e164 text, phone_key text, wa_id text, profile_name text, source text, source_details jsonb,
                first_seen_at timestamptz, last_seen_at timestamptz)
     order by x.phone_key
    on conflict (tenant_id, phone_key) where merged_into is null do update
      set wa_id = excluded.wa_id,
          profile_name = coalesce(excluded.profile_name, l.profile_name),
          first_seen_at = least(l.first_seen_at, excluded.first_seen_at),
          last_seen_at = greatest(l.last_seen_at, excluded.last_seen_at)
    returning id, phone_key`
  const leadId = new Map(leads.map((l) => [l.phoneKey, l.id]))

  const rows = unique.map(({ route, item, sender }, ord) => {
    const m = item.message
    return {
      ord, phone_id: route.phoneId, lead_id: leadId.get(sender.phoneKey)!, wamid: m.wamid, wa_id: sender.waId, type: m.type,
      content: item.parseError ? { raw: item.raw } : m.content, context: m.context ?? null, referral: m.referral ?? null, errors: m.errors ?? null,
      occurred_at: (m.timestamp ?? new Date()).toISOString(),
      details: { direction: 'inbound', type: m.type, rawType: m.rawType, ...(item.parseError ? { parseError: item.parseError } : {}) },
      event: { type: m.type, phoneNumberId: item.phoneNumberId, referral: !!m.referral },
    }
  })
  const inserted = await tx<{ id: string; wamid: string; leadId: string }[]>`
    with input as (
      select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
        as x(ord int, phone_id uuid, lead_id uuid, wamid text, wa_id text, type text, content jsonb, context jsonb, referral jsonb,
             errors jsonb, occurred_at timestamptz, details jsonb, event jsonb)
    ), msg as (
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, context, referral, errors, status, occurred_at)
      select ${tenantId}, phone_id, lead_id, 'inbound', wamid, wa_id, type, content, context, referral, errors, 'received', occurred_at
        from input order by ord
      on conflict (tenant_id, wamid) do nothing
      returning id, wamid, lead_id, phone_number_id, wa_id, occurred_at
    ), interaction as (
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, message_id, details, dedupe_key)
      select ${tenantId}, m.lead_id, 'whatsapp_message', 'whatsapp', 'lead', m.occurred_at, m.id, i.details, 'wa:msg:' || m.wamid
        from msg m join input i on i.wamid = m.wamid order by i.ord
      on conflict (tenant_id, dedupe_key) do nothing
    ), event as (
      insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key)
      select ${tenantId}, 'whatsapp.message_received', m.lead_id, m.occurred_at, i.event, 'wa:msg:' || m.wamid
        from msg m join input i on i.wamid = m.wamid order by i.ord
      on conflict (tenant_id, dedupe_key) do nothing
    ), service_window as (
      insert into whatsapp.service_windows as w (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
      select distinct on (m.phone_number_id, m.wa_id) ${tenantId}, m.phone_number_id, m.wa_id, m.lead_id, m.occurred_at
        from msg m order by m.phone_number_id, m.wa_id, m.occurred_at desc
      on conflict (tenant_id, phone_number_id, wa_id) do update
        set last_inbound_at = greatest(w.last_inbound_at, excluded.last_inbound_at), lead_id = excluded.lead_id
    )
    select m.id, m.wamid, m.lead_id from msg m`
  const order = new Map(unique.map((e, i) => [e.item.message.wamid, i]))
  return inserted
    .map((r) => ({ messageId: r.id, leadId: r.leadId, entry: byWamid.get(r.wamid)! }))
    .sort((a, b) => order.get(a.entry.item.message.wamid)! - order.get(b.entry.item.message.wamid)!)
}

/** Statuses go to the history first (once each); the messages they name are then re-derived from it. */
export async function applyStatuses(tx: Tx, tenantId: string, items: StatusItem[]): Promise<void> {
  if (items.length === 0) return
  const rows = items.map(({ status: s }) => ({
    wamid: s.wamid, status: s.status, occurred_at: s.timestamp.toISOString(), recipient_id: s.recipientId ?? s.recipientUserId,
    errors: s.errors.length ? s.errors : null, pricing: s.pricing ?? null, conversation: s.conversation ?? null,
    biz_opaque_callback_data: s.bizOpaqueCallbackData ?? null,
  }))
  await tx`
    insert into whatsapp.message_statuses (tenant_id, wamid, status, occurred_at, recipient_id, errors, pricing, conversation, biz_opaque_callback_data)
    select ${tenantId}, s.wamid, s.status, s.occurred_at, s.recipient_id, s.errors, s.pricing, s.conversation, s.biz_opaque_callback_data
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
           as s(wamid text, status text, occurred_at timestamptz, recipient_id text, errors jsonb, pricing jsonb, conversation jsonb,
                biz_opaque_callback_data text)
    on conflict (tenant_id, wamid, status, occurred_at) do nothing`
  await refreshMessageStatuses(tx, [...new Set(rows.map((r) => r.wamid))])
}

/**
 * Derives each outbound message's status from its whole history, so the order statuses arrive in never matters:
 * the highest-ranked status wins (a late "delivered" never replaces "read"), and a status that arrived before its
 * message is applied as soon as the message exists (call this after storing a wamid).
 */
export function refreshMessageStatuses(tx: Tx, wamids: string[]) {
  return tx`
    with h as (
      select s.wamid,
             max(whatsapp.status_rank(s.status)) as rank,
             (array_agg(s.status order by whatsapp.status_rank(s.status) desc, s.occurred_at desc))[1] as status,
             (array_agg(s.occurred_at order by whatsapp.status_rank(s.status) desc, s.occurred_at desc))[1] as status_at,
             min(s.occurred_at) filter (where s.status = 'sent') as sent_at,
             min(s.occurred_at) filter (where s.status = 'delivered') as delivered_at,
             min(s.occurred_at) filter (where s.status in ('read', 'played')) as read_at,
             min(s.occurred_at) filter (where s.status = 'failed') as failed_at,
             (array_agg(s.errors order by s.occurred_at desc) filter (where s.status = 'failed'))[1] as failure,
             (array_agg(s.pricing order by s.occurred_at desc) filter (where s.pricing is not null))[1] as pricing,
             (array_agg(s.conversation order by s.occurred_at desc) filter (where s.conversation is not null))[1] as conversation
        from whatsapp.message_statuses s
       where s.wamid = any(${wamids}::text[])
       group by s.wamid
    )
    update whatsapp.messages m
       set status = h.status, status_rank = h.rank, status_at = h.status_at,
           sent_at = h.sent_at, delivered_at = h.delivered_at, read_at = h.read_at, failed_at = h.failed_at,
           error_code = coalesce((h.failure -> 0 ->> 'code')::int, m.error_code),
           error_title = coalesce(h.failure -> 0 ->> 'title', m.error_title),
           pricing = coalesce(h.pricing, m.pricing), conversation = coalesce(h.conversation, m.conversation)
      from h
     where m.wamid = h.wamid and m.direction = 'outbound' and h.rank >= m.status_rank`
}

export function applyValueErrors(tx: Tx, route: RoutedPhone, items: ErrorItem[]) {
  const rows = items.map((i) => ({ code: i.error.code, title: i.error.title, message: i.error.message, details: { details: i.error.details }, item_key: i.itemKey }))
  return tx`
    insert into whatsapp.webhook_errors (tenant_id, phone_number_id, code, title, message, details, item_key)
    select ${route.tenantId}, ${route.phoneId}, e.code, e.title, e.message, e.details, e.item_key
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as e(code int, title text, message text, details jsonb, item_key text)
    on conflict (tenant_id, item_key) do nothing`
}

export type ManagementItem = TemplateStatusItem | TemplateQualityItem | TemplateCategoryItem | AccountUpdateItem | PhoneNumberQualityItem | PhoneNumberNameItem

/** Management changes update the whatsapp schema; each is guarded so an older event never overwrites a newer one. */
export function applyManagementItem(tx: Tx, tenantId: string, businessAccountId: string, item: ManagementItem) {
  const at = item.at ?? new Date()
  switch (item.kind) {
    case 'template_status': {
      const v = item.value as Record<string, unknown>
      const reason = typeof v.reason === 'string' && v.reason !== 'NONE' ? v.reason : null
      const category = typeof v.message_template_category === 'string' ? v.message_template_category : null
      return tx`
        insert into whatsapp.templates as t (tenant_id, business_account_id, meta_template_id, name, language, category, status, rejection_reason, last_event_at)
        values (${tenantId}, ${businessAccountId}, ${item.templateId}, ${String(v.message_template_name ?? item.templateId)},
                ${String(v.message_template_language ?? 'und')}, ${category}, ${item.event}, ${reason}, ${at})
        on conflict (tenant_id, business_account_id, name, language) do update
          set meta_template_id = excluded.meta_template_id, status = excluded.status, rejection_reason = excluded.rejection_reason,
              category = coalesce(excluded.category, t.category), last_event_at = excluded.last_event_at, updated_at = now()
          where t.last_event_at is null or t.last_event_at <= excluded.last_event_at`
    }
    case 'template_quality':
      return tx`
        update whatsapp.templates set quality_score = ${item.newScore}, updated_at = now()
         where meta_template_id = ${item.templateId}`
    case 'template_category':
      if (!item.newCategory) return tx`select 1`
      return tx`
        update whatsapp.templates set previous_category = coalesce(${item.previousCategory}, category), category = ${item.newCategory}, updated_at = now()
         where meta_template_id = ${item.templateId}`
    case 'account_update': {
      const v = item.value as Record<string, unknown>
      const restriction = v.ban_info ?? v.restriction_info ?? null
      return tx`
        update whatsapp.business_accounts
           set last_account_event = ${tx.json({ ...v, at: at.toISOString() } as never)},
               restriction = coalesce(${restriction ? tx.json(restriction as never) : null}::jsonb, restriction),
               review_status = case when ${item.event} in ('VERIFIED_ACCOUNT', 'DISABLED_UPDATE', 'ACCOUNT_VIOLATION', 'ACCOUNT_RESTRICTION') then ${item.event} else review_status end,
               updated_at = now()
         where id = ${businessAccountId}`
    }
    case 'phone_number_quality':
      return tx`
        update whatsapp.phone_numbers
           set quality_rating = ${item.event}, messaging_limit = coalesce(${item.currentLimit}, messaging_limit),
               last_quality_event = ${tx.json({ ...(item.value as object), at: at.toISOString() } as never)}, updated_at = now()
         where business_account_id = ${businessAccountId}
           and regexp_replace(display_phone_number, '\\D', '', 'g') = regexp_replace(${item.displayPhoneNumber}, '\\D', '', 'g')`
    case 'phone_number_name': {
      const v = item.value as Record<string, unknown>
      if (item.decision !== 'APPROVED' || typeof v.requested_verified_name !== 'string') return tx`select 1`
      return tx`
        update whatsapp.phone_numbers set verified_name = ${v.requested_verified_name}, updated_at = now()
         where business_account_id = ${businessAccountId}
           and regexp_replace(display_phone_number, '\\D', '', 'g') = regexp_replace(${item.displayPhoneNumber}, '\\D', '', 'g')`
    }
  }
}
