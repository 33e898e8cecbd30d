import type { Tx } from '../../lib/db.js'
import { phoneMatchKey, waIdToE164 } from '../marketing/leads/identity/phone.js'
import { recordEventsFrom } from '../analytics/service.js'
import { anonymousIdInText, linkAnonymousIds, whatsappStatusEventsFrom } from '../analytics/platform-events.js'
import { changeLeadPhone, recordInteractionsFrom, upsertWhatsAppSenders, type PhoneChange } from '../marketing/leads/service.js'
import { markReturningSenders } from '../privacy/suppression.js'
import { resolveTemplateExposures, type TemplateOutcome } from '../experiments/service.js'
import { toTimestamp } from './webhook/normalize.js'
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
  return waIdentity(waId, item.message.from !== null)
}

const waIdentity = (waId: string, isPhone: boolean) => {
  const e164 = isPhone ? waIdToE164(waId) : null
  return { waId, phoneE164: e164, phoneKey: e164 ? phoneMatchKey(e164) : `bsuid:${waId}` }
}

/** `user_changed_number` (older: `customer_changed_number`) names the new number in `wa_id` (very old: `new_wa_id`). */
const NUMBER_CHANGES = new Set(['user_changed_number', 'customer_changed_number'])
function newNumberOf(item: MessageItem): string | null {
  if (item.parseError !== null || item.message.type !== 'system') return null
  const c = item.message.content as { type?: unknown; wa_id?: unknown; new_wa_id?: unknown }
  if (typeof c.type !== 'string' || !NUMBER_CHANGES.has(c.type)) return null
  const waId = typeof c.wa_id === 'string' && c.wa_id !== '' ? c.wa_id : c.new_wa_id === undefined || c.new_wa_id === '' ? null : String(c.new_wa_id)
  return waId
}

export interface InboundEntry {
  route: RoutedPhone
  item: MessageItem
  sender: { waId: string; phoneE164: string | null; phoneKey: string }
}

/**
 * A tenant's inbound messages of one batch, set-based: the lead domain finds or creates their leads (one
 * statement); one statement stores the messages (once per wamid), adds the interactions (the lead domain's insert)
 * and analytics events (analytics' insert) of only the ones that were new, and moves the service windows. A replay,
 * or the same message in another delivery, inserts nothing and leaves the lead as it was (its times only move with
 * greatest/least). Returns the messages that were new, in arrival order.
 */
export async function applyInboundMessages(tx: Tx, tenantId: string, entries: InboundEntry[]): Promise<{ messageId: string; leadId: string; entry: InboundEntry }[]> {
  const byWamid = new Map<string, InboundEntry>()
  for (const e of entries) if (!byWamid.has(e.item.message.wamid)) byWamid.set(e.item.message.wamid, e)
  const unique = [...byWamid.values()]
  if (unique.length === 0) return []

  const leadId = await upsertWhatsAppSenders(tx, tenantId, unique.map(({ item, sender }) => {
    const referral = item.message.referral
    return {
      phoneKey: sender.phoneKey, phoneE164: sender.phoneE164, waId: sender.waId, profileName: item.contactName,
      source: referral ? 'whatsapp_ad' : 'whatsapp', sourceDetails: referral ? { referral } : {}, at: item.message.timestamp ?? new Date(),
    }
  }))
  // privacy: a sender erased before (privacy.suppressions) is back by their own act; their new lead is marked so.
  const senders = new Map(unique.map(({ sender }) => [sender.phoneKey, sender.waId]))
  await markReturningSenders(tx, [...senders].map(([phoneKey, waId]) => ({ leadId: leadId.get(phoneKey)!, phoneKey, waId })))

  const rows = unique.map(({ route, item, sender }, ord) => {
    const m = item.message
    return {
      ord, phone_id: route.phoneId, lead_id: leadId.get(sender.phoneKey)!, wamid: m.wamid, wa_id: sender.waId, type: m.type,
      content: item.parseError ? { raw: item.raw } : m.content, context: m.context ?? null, referral: m.referral ?? null, errors: m.errors ?? null,
      identity: m.identity ?? null,
      occurred_at: (m.timestamp ?? new Date()).toISOString(),
      details: { direction: 'inbound', type: m.type, rawType: m.rawType, ...(item.parseError ? { parseError: item.parseError } : {}) },
      event: { type: m.type, phoneNumberId: item.phoneNumberId, referral: !!m.referral },
    }
  })
  // One statement: the messages, and for the new ones (the insert's returning rows) their interaction (the lead
  // domain's insert) and event (analytics' insert), keyed by wamid, and the service windows.
  const fresh = tx`select m.id, m.wamid, m.lead_id, m.occurred_at, i.ord, i.details, i.event from msg m join input i on i.wamid = m.wamid`
  const inserted = await tx<{ id: string; wamid: string; leadId: string }[]>`
    with input as (
      select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
        as x(ord int, phone_id uuid, lead_id uuid, wamid text, wa_id text, type text, content jsonb, context jsonb, referral jsonb,
             errors jsonb, identity jsonb, occurred_at timestamptz, details jsonb, event jsonb)
    ), msg as (
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, context, referral, errors, identity, status, occurred_at)
      select ${tenantId}, phone_id, lead_id, 'inbound', wamid, wa_id, type, content, context, referral, errors, identity, 'received', occurred_at
        from input order by ord
      on conflict (tenant_id, wamid) do nothing
      returning id, wamid, lead_id, phone_number_id, wa_id, occurred_at
    ), interaction as (
      ${recordInteractionsFrom(tx, tx`
        select f.lead_id, 'whatsapp_message' as type, 'whatsapp' as channel, 'lead' as actor, f.occurred_at, f.id as message_id, f.details,
               'wa:msg:' || f.wamid as dedupe_key
          from (${fresh}) f order by f.ord`)}
    ), ${recordEventsFrom(tx, tx`
        select 'whatsapp.message_received' as name, f.lead_id, f.occurred_at, f.event as properties, 'wa:msg:' || f.wamid as dedupe_key,
               'whatsapp' as source
          from (${fresh}) f order by f.ord`)}, service_window as (
      insert into whatsapp.service_windows as w (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
      select distinct on (m.phone_number_id, m.wa_id) ${tenantId}, m.phone_number_id, m.wa_id, m.lead_id, m.occurred_at
        from msg m order by m.phone_number_id, m.wa_id, m.occurred_at desc
      on conflict (tenant_id, phone_number_id, wa_id) do update
        set last_inbound_at = greatest(w.last_inbound_at, excluded.last_inbound_at), lead_id = excluded.lead_id
    )
    select m.id, m.wamid, m.lead_id from msg m`
  const order = new Map(unique.map((e, i) => [e.item.message.wamid, i]))
  const created = inserted
    .map((r) => ({ messageId: r.id, leadId: r.leadId, entry: byWamid.get(r.wamid)! }))
    .sort((a, b) => order.get(a.entry.item.message.wamid)! - order.get(b.entry.item.message.wamid)!)

  // Number changes, only from notices stored just now (a replay moves nothing). Leads merged on the way are reported
  // under their survivor, so the bot hook never starts a conversation on a merged lead.
  const changes: PhoneChange[] = created.flatMap(({ messageId, leadId, entry }) => {
    const to = newNumberOf(entry.item)
    if (!to || to === entry.sender.waId) return []
    const next = waIdentity(to, true)
    return [{
      leadId, fromWaId: entry.sender.waId, toWaId: to, phoneE164: next.phoneE164, phoneKey: next.phoneKey,
      occurredAt: (entry.item.message.timestamp ?? new Date()).toISOString(), messageId, dedupeKey: `wa:number:${entry.item.message.wamid}`,
    }]
  })
  const mergedInto = changes.length === 0 ? new Map<string, string>() : await changeLeadPhone(tx, tenantId, changes)
  const live = (id: string): string => (mergedInto.has(id) ? live(mergedInto.get(id)!) : id)
  const result = changes.length === 0 ? created : created.map((c) => ({ ...c, leadId: live(c.leadId) }))
  // A click-to-WhatsApp link from the business's site carries the visitor's anonymous id in its prefilled text
  // (`[ref:<id>]`): the visitor is linked to this lead. No statement unless a new message carries one.
  const links = result.flatMap(({ leadId, entry }) => {
    const anonymousId = entry.item.parseError === null && entry.item.message.type === 'text' ? anonymousIdInText((entry.item.message.content as { body?: unknown }).body) : null
    return anonymousId ? [{ anonymousId, leadId, via: 'whatsapp' as const }] : []
  })
  if (links.length > 0) await linkAnonymousIds(tx, links)
  return result
}

/**
 * Serializes the two writers of a message's status: the sender storing the wamid Meta answered with, and the inbox
 * storing a status of that wamid. Without it, both commit at once under READ COMMITTED, each re-derivation misses
 * the other's uncommitted row (the sender sees no status yet, the inbox sees no message with that wamid yet), and
 * the message stays `pending` with its statuses in the history. Transaction-scoped, taken in sorted order.
 */
export const lockWamids = (tx: Tx, wamids: readonly string[]) =>
  tx`select pg_advisory_xact_lock(hashtext('whatsapp.wamid'), k)
       from (select distinct hashtext(w) as k from unnest(${[...wamids]}::text[]) w order by 1) keys`

/** Statuses go to the history first (once each); the messages they name are then re-derived from it. */
export async function applyStatuses(tx: Tx, tenantId: string, items: StatusItem[]): Promise<void> {
  if (items.length === 0) return
  await lockWamids(tx, items.map((i) => i.status.wamid))
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
  // Delivered and failed statuses resolve template sends that named an experiment. The message id comes from the
  // status's own biz_opaque_callback_data (our idempotency key, `wa-out:<message id>`), so this works even while the
  // sender's commit of the wamid is in flight.
  const reported = items.flatMap(({ status: s }): TemplateOutcome[] => {
    const outcome = outcomeOf(s.status)
    if (!outcome) return []
    const messageId = OUTBOX_KEY.exec(s.bizOpaqueCallbackData ?? '')?.[1] ?? null
    return [{ message_id: messageId, wamid: s.wamid, outcome, at: s.timestamp.toISOString() }]
  })
  await refreshMessageStatuses(tx, [...new Set(rows.map((r) => r.wamid))], reported)
}

/** The outbox's idempotency key, which Meta echoes in every status of the message (domains/whatsapp/outbound). */
const OUTBOX_KEY = /^wa-out:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/
const outcomeOf = (status: string): TemplateOutcome['outcome'] | null =>
  status === 'delivered' || status === 'read' || status === 'played' ? 'delivered' : status === 'failed' ? 'failed' : null

/**
 * Derives each outbound message's status from its whole history, so the order statuses arrive in never matters:
 * the highest-ranked status wins (a late "delivered" never replaces "read"), and a status that arrived before its
 * message is applied as soon as the message exists (call this after storing a wamid). In the same statement, each
 * status of the history becomes its analytics event once (whatsapp.message_delivered / _read / _failed, keyed by
 * wamid and status), whatever the order, the repeats, or whether the message row came first. Then template sends
 * that named an experiment are resolved from what Meta reported (`reported`, from the status items) and from the
 * messages' derived delivered/failed times (a status that came before the wamid was stored), in one more statement
 * only when there is something delivered or failed.
 */
export async function refreshMessageStatuses(tx: Tx, wamids: string[], reported: readonly TemplateOutcome[] = []): Promise<void> {
  const updated = await tx<{ id: string; wamid: string; deliveredAt: Date | null; readAt: Date | null; failedAt: Date | null }[]>`
    with ${whatsappStatusEventsFrom(tx, tx`
        select distinct on (s.wamid, s.status) s.wamid, s.status, s.occurred_at, m.lead_id, m.id as message_id, t.name as template_name,
               case when (s.errors -> 0 ->> 'code') ~ '^[0-9]{1,9}$' then (s.errors -> 0 ->> 'code')::int end as error_code
          from whatsapp.message_statuses s
          join whatsapp.messages m on m.wamid = s.wamid and m.direction = 'outbound'
          left join whatsapp.outbound_sends o on o.message_id = m.id
          left join whatsapp.templates t on t.id = o.template_id
         where s.wamid = any(${wamids}::text[])
         order by s.wamid, s.status, s.occurred_at`)}, h as (
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
     where m.wamid = h.wamid and m.direction = 'outbound' and h.rank >= m.status_rank
    returning m.id, m.wamid, m.delivered_at, m.read_at, m.failed_at`
  const seen = new Set(reported.filter((r) => r.message_id !== null).map((r) => r.message_id))
  const derived = updated.flatMap((m): TemplateOutcome[] => {
    if (seen.has(m.id)) return []
    const delivered = m.deliveredAt ?? m.readAt
    if (delivered) return [{ message_id: m.id, wamid: m.wamid, outcome: 'delivered', at: delivered.toISOString() }]
    return m.failedAt ? [{ message_id: m.id, wamid: m.wamid, outcome: 'failed', at: m.failedAt.toISOString() }] : []
  })
  await resolveTemplateExposures(tx, [...reported, ...derived])
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

/** Phone quality events that say something about the number's quality; the others (ONBOARDING, THROUGHPUT_UPGRADE) do not. */
const PHONE_QUALITY_EVENTS = ['FLAGGED', 'UNFLAGGED', 'UPGRADE', 'DOWNGRADE']

/** `restriction_info[]` with every expiration as an ISO timestamp (Meta sends ISO text or unix seconds), and the latest one. */
function restrictionsOf(value: Record<string, unknown>): { list: unknown[]; expiresAt: Date | null } | null {
  if (!Array.isArray(value.restriction_info)) return null
  let expiresAt: Date | null = null
  const list = value.restriction_info.map((r: Record<string, unknown>) => {
    const at = toTimestamp(r.expiration)
    if (at && (!expiresAt || at > expiresAt)) expiresAt = at
    return { ...r, ...(r.expiration === undefined ? {} : { expiration: at ? at.toISOString() : r.expiration }) }
  })
  return { list, expiresAt }
}

const sameNumber = (tx: Tx, displayPhoneNumber: string) =>
  tx`regexp_replace(display_phone_number, '\\D', '', 'g') = regexp_replace(${displayPhoneNumber}, '\\D', '', 'g')`

type TemplateStream = 'quality_event_at' | 'category_event_at'
/** A query used as a part of another (postgres.js nests them). */
type Fragment = { readonly [Symbol.toStringTag]?: string } & PromiseLike<unknown>
interface TemplateFields { quality_score?: string; category?: string | null; previous_category?: string | null; pending_category?: string | null; pending_category_at?: Date | null }

/**
 * A quality or category change of a template, in one statement: the template is found by Meta's id; one the product
 * has not seen (made in WhatsApp Manager) is recorded by name and language, as status updates record it. Only a
 * first sighting (`logged`) that is not older than the stream's last event is applied; `set` may read the row as `t`.
 */
function upsertTemplateStream(
  tx: Tx, logged: Fragment, tenantId: string, businessAccountId: string, templateId: string, name: string, language: string,
  stream: TemplateStream, at: Date, fields: TemplateFields, set: Fragment,
) {
  const newer = tx`(t.${tx(stream)} is null or t.${tx(stream)} <= ${at})`
  return tx`
    with logged as (${logged}), updated as (
      update whatsapp.templates t set ${set}, ${tx(stream)} = ${at}, updated_at = now()
       where t.meta_template_id = ${templateId} and exists (select 1 from logged) and ${newer}
      returning t.id
    )
    insert into whatsapp.templates as t (tenant_id, business_account_id, meta_template_id, name, language, quality_score, category,
                                         previous_category, pending_category, pending_category_at, quality_event_at, category_event_at)
    select ${tenantId}, ${businessAccountId}, ${templateId}, ${name}, ${language}, ${fields.quality_score ?? null}::text, ${fields.category ?? null}::text,
           ${fields.previous_category ?? null}::text, ${fields.pending_category ?? null}::text, ${fields.pending_category_at ?? null}::timestamptz,
           ${stream === 'quality_event_at' ? at : null}::timestamptz, ${stream === 'category_event_at' ? at : null}::timestamptz
     where exists (select 1 from logged)
       and not exists (select 1 from whatsapp.templates k where k.meta_template_id = ${templateId})
    on conflict (tenant_id, business_account_id, name, language) do update
      set ${set}, ${tx(stream)} = excluded.${tx(stream)}, meta_template_id = excluded.meta_template_id, updated_at = now()
      where ${newer}`
}

/**
 * Applies one management change. Each is logged once in whatsapp.management_events (by item key) and applied only on
 * its first sighting, so a redelivered copy changes nothing; and each stream (template status, quality, category;
 * account; number quality/limit, name) only moves forward in event time, so an older event arriving late changes
 * nothing either (the log still keeps it). One statement per change: these are rare next to messages.
 */
export function applyManagementItem(tx: Tx, tenantId: string, businessAccountId: string, item: ManagementItem) {
  const at = item.at ?? new Date()
  const logged = tx`
    insert into whatsapp.management_events (tenant_id, business_account_id, kind, item_key, occurred_at, value)
    values (${tenantId}, ${businessAccountId}, ${item.kind}, ${item.itemKey}, ${at}, ${tx.json(item.value as never)})
    on conflict (tenant_id, item_key) do nothing
    returning id`
  const v = item.value as Record<string, unknown>
  const name = String(v.message_template_name ?? ('templateId' in item ? item.templateId : ''))
  const language = String(v.message_template_language ?? 'und')
  switch (item.kind) {
    case 'template_status': {
      const reason = typeof v.reason === 'string' && v.reason !== 'NONE' ? v.reason : null
      const category = typeof v.message_template_category === 'string' ? v.message_template_category : null
      const rejectionInfo = v.rejection_info && typeof v.rejection_info === 'object' ? tx.json(v.rejection_info as never) : null
      return tx`
        with logged as (${logged})
        insert into whatsapp.templates as t (tenant_id, business_account_id, meta_template_id, name, language, category, status, rejection_reason, rejection_info, last_event_at)
        select ${tenantId}, ${businessAccountId}, ${item.templateId}, ${name}, ${language}, ${category}, ${item.event}, ${reason}, ${rejectionInfo}::jsonb, ${at}
         where exists (select 1 from logged)
        on conflict (tenant_id, business_account_id, name, language) do update
          set meta_template_id = excluded.meta_template_id, status = excluded.status, rejection_reason = excluded.rejection_reason,
              rejection_info = excluded.rejection_info, category = coalesce(excluded.category, t.category),
              last_event_at = excluded.last_event_at, updated_at = now()
          where t.last_event_at is null or t.last_event_at <= excluded.last_event_at`
    }
    case 'template_quality':
      return upsertTemplateStream(tx, logged, tenantId, businessAccountId, item.templateId, name, language, 'quality_event_at', at,
        { quality_score: item.newScore },
        tx`quality_score = ${item.newScore}`)
    case 'template_category': {
      if (item.correctCategory !== null) {
        // An announced change: `new_category` is the current category, `correct_category` what it becomes, and when.
        const due = toTimestamp(v.category_update_timestamp)
        return upsertTemplateStream(tx, logged, tenantId, businessAccountId, item.templateId, name, language, 'category_event_at', at,
          { category: item.newCategory, pending_category: item.correctCategory, pending_category_at: due },
          tx`category = coalesce(t.category, ${item.newCategory}), pending_category = ${item.correctCategory}, pending_category_at = ${due}::timestamptz`)
      }
      if (!item.newCategory) return tx`with logged as (${logged}) select count(*) from logged`
      return upsertTemplateStream(tx, logged, tenantId, businessAccountId, item.templateId, name, language, 'category_event_at', at,
        { category: item.newCategory, previous_category: item.previousCategory },
        tx`previous_category = coalesce(${item.previousCategory}, t.category), category = ${item.newCategory}, pending_category = null, pending_category_at = null`)
    }
    case 'account_update': {
      const restrictions = restrictionsOf(v)
      const restriction = v.ban_info ?? restrictions?.list ?? null
      return tx`
        with logged as (${logged})
        update whatsapp.business_accounts
           set last_account_event = ${tx.json({ ...v, at: at.toISOString() } as never)},
               restriction = coalesce(${restriction ? tx.json(restriction as never) : null}::jsonb, restriction),
               restriction_expires_at = ${restrictions ? tx`${restrictions.expiresAt}::timestamptz` : tx`restriction_expires_at`},
               review_status = case when ${item.event} in ('VERIFIED_ACCOUNT', 'DISABLED_UPDATE', 'ACCOUNT_VIOLATION', 'ACCOUNT_RESTRICTION') then ${item.event} else review_status end,
               account_event_at = ${at}, updated_at = now()
         where id = ${businessAccountId} and exists (select 1 from logged)
           and (account_event_at is null or account_event_at <= ${at})`
    }
    case 'phone_number_quality': {
      // THROUGHPUT_UPGRADE reports a throughput level (current_limit TIER_UNLIMITED), not a messaging limit; only the
      // quality events carry something about quality. Limits are ordered on their own time, so a late quality event
      // still lands after a newer throughput one.
      const throughput = item.event === 'THROUGHPUT_UPGRADE'
      const quality = PHONE_QUALITY_EVENTS.includes(item.event)
      const limitEvent = !throughput
      return tx`
        with logged as (${logged})
        update whatsapp.phone_numbers
           set quality_event = case when quality_event_at is null or quality_event_at <= ${at} then ${item.event} else quality_event end,
               quality_event_at = greatest(quality_event_at, ${at}),
               throughput_level = case when ${throughput} then 'HIGH' else throughput_level end,
               quality_rating = case when ${quality} and (limit_event_at is null or limit_event_at <= ${at}) then ${item.event} else quality_rating end,
               messaging_limit = case when ${limitEvent} and (limit_event_at is null or limit_event_at <= ${at})
                                      then coalesce(${item.currentLimit}, ${item.maxDailyConversations}, messaging_limit) else messaging_limit end,
               max_daily_conversations = case when ${limitEvent} and (limit_event_at is null or limit_event_at <= ${at})
                                              then coalesce(${item.maxDailyConversations}, max_daily_conversations) else max_daily_conversations end,
               last_quality_event = case when ${limitEvent} and (limit_event_at is null or limit_event_at <= ${at})
                                         then ${tx.json({ ...(item.value as object), at: at.toISOString() } as never)}::jsonb else last_quality_event end,
               limit_event_at = case when ${limitEvent} then greatest(limit_event_at, ${at}) else limit_event_at end,
               updated_at = now()
         where business_account_id = ${businessAccountId} and ${sameNumber(tx, item.displayPhoneNumber)}
           and exists (select 1 from logged)`
    }
    case 'phone_number_name': {
      // Only an approval changes the name, so only approvals are ordered: a late approval still beats a newer rejection.
      if (item.decision !== 'APPROVED' || typeof v.requested_verified_name !== 'string') return tx`with logged as (${logged}) select count(*) from logged`
      return tx`
        with logged as (${logged})
        update whatsapp.phone_numbers set verified_name = ${v.requested_verified_name}, name_event_at = ${at}, updated_at = now()
         where business_account_id = ${businessAccountId} and ${sameNumber(tx, item.displayPhoneNumber)}
           and exists (select 1 from logged) and (name_event_at is null or name_event_at <= ${at})`
    }
  }
}
