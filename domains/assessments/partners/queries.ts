/**
 * The SQL of partners, links, attribution and the money (migration 0035). Every function runs under withTenant
 * (RLS does the scoping) except the two public doors, which call the migration's security-definer lookups.
 * Money stays numeric in SQL and travels as text (`::text`), never through a JS number.
 */
import type { Queryable, Sql, Tx } from '../../../lib/db.js'

const ts = (d: Date | string | null) => (d === null ? null : d instanceof Date ? d.toISOString() : new Date(d).toISOString())

// ---------------------------------------------------------------------------------------------------------------
// Partners

export interface PartnerRow {
  id: string; code: string; name: string; commissionRate: string; tier: 'standard' | 'silver' | 'gold' | 'platinum'
  status: 'active' | 'suspended' | 'terminated'; currency: string; balance: string; clawbackDue: string; createdAt: Date; updatedAt: Date
}
const partnerColumns = (tx: Queryable) => tx`
  id, code, name, commission_rate::text as commission_rate, tier, status, currency, balance::text as balance,
  clawback_due::text as clawback_due, created_at, updated_at`

export const insertPartner = (tx: Tx, tenantId: string, p: { code: string; name: string; commissionRate: string; tier: string; currency: string }) =>
  tx<PartnerRow[]>`
    insert into assessments.partners (tenant_id, code, name, commission_rate, tier, currency)
    values (${tenantId}, ${p.code}, ${p.name}, ${p.commissionRate}, ${p.tier}, ${p.currency})
    returning ${partnerColumns(tx)}`.then((r) => r[0]!)

export const listPartners = (tx: Tx) => tx<PartnerRow[]>`select ${partnerColumns(tx)} from assessments.partners order by created_at, id`

// `for no key update`, as the ledger trigger takes it: foreign-key checks of concurrent inserts (key share) pass it.
export const findPartner = (tx: Tx, id: string, lock = false) =>
  tx<PartnerRow[]>`select ${partnerColumns(tx)} from assessments.partners where id = ${id} ${lock ? tx`for no key update` : tx``}`.then((r) => r[0] ?? null)

export const updatePartner = (tx: Tx, id: string, p: { name?: string; commissionRate?: string; tier?: string; status?: string }) =>
  tx<PartnerRow[]>`
    update assessments.partners set
      name = coalesce(${p.name ?? null}, name),
      commission_rate = coalesce(${p.commissionRate ?? null}::numeric, commission_rate),
      tier = coalesce(${p.tier ?? null}, tier),
      status = coalesce(${p.status ?? null}, status),
      updated_at = now()
     where id = ${id}
    returning ${partnerColumns(tx)}`.then((r) => r[0] ?? null)

export const setClawbackDue = (tx: Tx, partnerId: string, amount: string) =>
  tx`update assessments.partners set clawback_due = ${amount}, updated_at = now() where id = ${partnerId}`

// ---------------------------------------------------------------------------------------------------------------
// Links

export interface LinkRow {
  id: string; partnerId: string; assessmentId: string; linkCode: string; campaignName: string; type: 'customer' | 'campaign'
  targetAudience: string; focusArea: string; destination: 'web' | 'whatsapp'; phoneNumberId: string | null; active: boolean
  createdAt: Date; updatedAt: Date
}
const linkColumns = (tx: Queryable) => tx`
  id, partner_id, assessment_id, link_code, campaign_name, type, target_audience, focus_area, destination, phone_number_id, active, created_at, updated_at`

export interface NewLink {
  partnerId: string; assessmentId: string; linkCode: string; campaignName: string; type: string; targetAudience: string
  focusArea: string; destination: string; phoneNumberId: string | null; active: boolean
}
export const insertLink = (tx: Tx, tenantId: string, l: NewLink) =>
  tx<LinkRow[]>`
    insert into assessments.links (tenant_id, partner_id, assessment_id, link_code, campaign_name, type, target_audience, focus_area, destination, phone_number_id, active)
    values (${tenantId}, ${l.partnerId}, ${l.assessmentId}, ${l.linkCode}, ${l.campaignName}, ${l.type}, ${l.targetAudience}, ${l.focusArea},
            ${l.destination}, ${l.phoneNumberId}, ${l.active})
    returning ${linkColumns(tx)}`.then((r) => r[0]!)

export const listLinks = (tx: Tx, partnerId: string | null) =>
  tx<LinkRow[]>`
    select ${linkColumns(tx)} from assessments.links
     where ${partnerId === null ? tx`true` : tx`partner_id = ${partnerId}`} order by created_at, id`

export const findLink = (tx: Tx, id: string) => tx<LinkRow[]>`select ${linkColumns(tx)} from assessments.links where id = ${id}`.then((r) => r[0] ?? null)
export const findLinkByCode = (tx: Tx, code: string) =>
  tx<LinkRow[]>`select ${linkColumns(tx)} from assessments.links where link_code = ${code}`.then((r) => r[0] ?? null)

export const updateLink = (tx: Tx, id: string, p: Partial<Omit<NewLink, 'partnerId' | 'assessmentId' | 'linkCode'>>) =>
  tx<LinkRow[]>`
    update assessments.links set
      campaign_name = coalesce(${p.campaignName ?? null}, campaign_name),
      type = coalesce(${p.type ?? null}, type),
      target_audience = coalesce(${p.targetAudience ?? null}, target_audience),
      focus_area = coalesce(${p.focusArea ?? null}, focus_area),
      destination = coalesce(${p.destination ?? null}, destination),
      phone_number_id = ${p.phoneNumberId === undefined ? tx`phone_number_id` : tx`${p.phoneNumberId}`},
      active = coalesce(${p.active ?? null}::boolean, active),
      updated_at = now()
     where id = ${id}
    returning ${linkColumns(tx)}`.then((r) => r[0] ?? null)

/** Whether this tenant sees the assessment and the WhatsApp number (null: not asked): foreign keys alone accept another tenant's ids. */
export const visibleReferences = (tx: Tx, assessmentId: string | null, phoneNumberId: string | null) =>
  tx<{ assessment: boolean; number: boolean }[]>`
    select ${assessmentId === null ? tx`true` : tx`exists (select 1 from assessments.assessments where id = ${assessmentId})`} as assessment,
           ${phoneNumberId === null ? tx`true` : tx`exists (select 1 from whatsapp.phone_numbers where id = ${phoneNumberId})`} as number`.then((r) => r[0]!)

/** The public door: a link's id and tenant by its code, before any tenant is known (migration 0035's definer function). */
export const findPublicLink = (sql: Sql, code: string) =>
  sql<{ id: string; tenantId: string; tenantStatus: string }[]>`select * from assessments.find_public_link(${code})`.then((r) => r[0] ?? null)

export interface LinkTarget {
  link: LinkRow
  partnerStatus: string
  assessmentPublicKey: string
  assessmentStatus: string
  /** The business number a wa.me link opens (the link's, else the tenant's first active one); null when none. */
  businessNumber: string | null
}
/** Everything a visit of /l/<code> needs, in one statement. */
export const findLinkTarget = (tx: Tx, linkId: string) =>
  tx<(LinkRow & { partnerStatus: string; assessmentPublicKey: string; assessmentStatus: string; businessNumber: string | null })[]>`
    select l.id, l.partner_id, l.assessment_id, l.link_code, l.campaign_name, l.type, l.target_audience, l.focus_area, l.destination,
           l.phone_number_id, l.active, l.created_at, l.updated_at,
           p.status as partner_status, a.public_key as assessment_public_key, a.status as assessment_status,
           coalesce((select n.display_phone_number from whatsapp.phone_numbers n where n.id = l.phone_number_id and n.status = 'active'),
                    (select n.display_phone_number from whatsapp.phone_numbers n where n.status = 'active' order by n.created_at, n.id limit 1)) as business_number
      from assessments.links l
      join assessments.partners p on p.id = l.partner_id
      join assessments.assessments a on a.id = l.assessment_id
     where l.id = ${linkId}`.then((r): LinkTarget | null => {
    const row = r[0]
    if (!row) return null
    const { partnerStatus, assessmentPublicKey, assessmentStatus, businessNumber, ...link } = row
    return { link, partnerStatus, assessmentPublicKey, assessmentStatus, businessNumber }
  })

/** Links by their codes (the ref:<code> of WhatsApp messages), with their partner. */
export const findLinksByCodes = (tx: Tx, codes: string[]) =>
  tx<{ id: string; linkCode: string; partnerId: string; active: boolean; partnerStatus: string }[]>`
    select l.id, l.link_code, l.partner_id, l.active, p.status as partner_status
      from assessments.links l join assessments.partners p on p.id = l.partner_id
     where l.link_code = any(${codes}::text[])`

// ---------------------------------------------------------------------------------------------------------------
// Clicks and attribution

export interface NewClick {
  linkId: string; partnerId: string; outcome: 'web' | 'whatsapp' | 'inactive'; visitorId: string | null
  ipPrefix: string | null; ipHash: string | null; userAgent: string | null; referrer: string | null; isBot: boolean; at: Date
  /** The visitor's lead, when the visitor is already known as one (analytics.identities). */
  leadId?: string | null
}
export const insertClick = (tx: Tx, tenantId: string, c: NewClick) =>
  tx<{ id: string }[]>`
    insert into assessments.link_clicks (tenant_id, link_id, partner_id, outcome, visitor_id, lead_id, ip_prefix, ip_hash, user_agent, referrer, is_bot, clicked_at)
    values (${tenantId}, ${c.linkId}, ${c.partnerId}, ${c.outcome}, ${c.visitorId}, ${c.leadId ?? null}, ${c.ipPrefix}::inet, ${c.ipHash}, ${c.userAgent}, ${c.referrer}, ${c.isBot}, ${c.at})
    returning id::text`.then((r) => r[0]!.id)

/**
 * Visitors became leads, set-based, in one statement: their clicks not yet naming a lead get it, and each visitor's
 * attribution row is merged into its lead's (first touch the earlier, last touch the later, touches summed; the
 * lead's own conversation kept) or becomes the lead's when the lead had none. Several visitors of one lead are folded
 * together first (one upsert may not touch a row twice). Idempotent: a second run finds no unlinked click and no
 * visitor row. Pairs arrive deduplicated by visitor and sorted by lead, so concurrent joins lock in one order.
 * `merged` runs though nothing reads it (PostgreSQL runs every data-modifying WITH exactly once); `attributions`
 * counts the visitor rows folded in.
 */
export const joinVisitorsToLeads = (tx: Tx, pairs: readonly { visitor_id: string; lead_id: string }[]) =>
  tx<{ clicks: number; attributions: number }[]>`
    with pairs as (
      select x.visitor_id, x.lead_id from jsonb_to_recordset(${tx.json(pairs as never)}::jsonb) as x(visitor_id text, lead_id uuid)
    ), clicks as (
      update assessments.link_clicks c set lead_id = p.lead_id
        from pairs p where c.visitor_id = p.visitor_id and c.lead_id is null
      returning 1
    ), moved as (
      delete from assessments.attributions a using pairs p where a.visitor_id = p.visitor_id
      returning a.tenant_id, p.lead_id, a.conversation_id, a.first_partner_id, a.first_link_id, a.first_channel, a.first_at,
                a.last_partner_id, a.last_link_id, a.last_channel, a.last_at, a.touches
    ), per_lead as (
      select tenant_id, lead_id,
             (array_agg(conversation_id order by last_at desc) filter (where conversation_id is not null))[1] as conversation_id,
             (array_agg(first_partner_id order by first_at))[1] as first_partner_id,
             (array_agg(first_link_id order by first_at))[1] as first_link_id,
             (array_agg(first_channel order by first_at))[1] as first_channel,
             min(first_at) as first_at,
             (array_agg(last_partner_id order by last_at desc))[1] as last_partner_id,
             (array_agg(last_link_id order by last_at desc))[1] as last_link_id,
             (array_agg(last_channel order by last_at desc))[1] as last_channel,
             max(last_at) as last_at,
             sum(touches)::integer as touches
        from moved group by tenant_id, lead_id
    ), merged as (
      insert into assessments.attributions as a (tenant_id, lead_id, conversation_id, first_partner_id, first_link_id, first_channel, first_at,
                                                 last_partner_id, last_link_id, last_channel, last_at, touches)
      select tenant_id, lead_id, conversation_id, first_partner_id, first_link_id, first_channel, first_at,
             last_partner_id, last_link_id, last_channel, last_at, touches
        from per_lead order by lead_id
      on conflict (tenant_id, lead_id) where lead_id is not null do update set
        touches = a.touches + excluded.touches,
        conversation_id = coalesce(a.conversation_id, excluded.conversation_id),
        first_partner_id = case when excluded.first_at < a.first_at then excluded.first_partner_id else a.first_partner_id end,
        first_link_id = case when excluded.first_at < a.first_at then excluded.first_link_id else a.first_link_id end,
        first_channel = case when excluded.first_at < a.first_at then excluded.first_channel else a.first_channel end,
        first_at = least(a.first_at, excluded.first_at),
        last_partner_id = case when excluded.last_at > a.last_at then excluded.last_partner_id else a.last_partner_id end,
        last_link_id = case when excluded.last_at > a.last_at then excluded.last_link_id else a.last_link_id end,
        last_channel = case when excluded.last_at > a.last_at then excluded.last_channel else a.last_channel end,
        last_at = greatest(a.last_at, excluded.last_at)
      returning 1
    )
    select (select count(*)::integer from clicks) as clicks, (select count(*)::integer from moved) as attributions`.then((r) => r[0]!)

/**
 * Cross-tenant (assessments__prune_click_details): up to `limit` clicks that never came to name a lead, older than
 * their tenant's privacy.retention_settings.link_click_details_days (`defaultDays` for a tenant without settings),
 * lose their network, address hash, user agent and referrer; the row stays for the counts. Rows another transaction
 * holds are skipped (migration 0062's definer function). Returns how many were pruned.
 */
export const pruneLinkClickDetails = (sql: Queryable, limit: number, defaultDays: number) =>
  sql<{ n: number }[]>`select assessments.prune_link_click_details(${limit}, ${defaultDays}) as n`.then((r) => r[0]!.n)

export interface Touch {
  partnerId: string; linkId: string | null; channel: 'web' | 'whatsapp'; at: Date
  leadId?: string | null; visitorId?: string | null; conversationId?: string | null
}
export interface AttributionRow {
  id: string; leadId: string | null; visitorId: string | null; conversationId: string | null
  firstPartnerId: string; firstLinkId: string | null; firstChannel: string; firstAt: Date
  lastPartnerId: string; lastLinkId: string | null; lastChannel: string; lastAt: Date; touches: number
}
const attributionColumns = (tx: Queryable) => tx`
  id, lead_id, visitor_id, conversation_id, first_partner_id, first_link_id, first_channel, first_at,
  last_partner_id, last_link_id, last_channel, last_at, touches`

/**
 * One touch: the subject's attribution is created (first = last = this touch) or its last touch moves here. A touch
 * older than the stored last one (a late event) does not move it back. Keyed by lead when known, else by visitor.
 */
export function touchAttribution(tx: Tx, tenantId: string, t: Touch) {
  const target = t.leadId ? tx`(tenant_id, lead_id) where lead_id is not null` : tx`(tenant_id, visitor_id) where visitor_id is not null`
  return tx<AttributionRow[]>`
    insert into assessments.attributions as a (tenant_id, lead_id, visitor_id, conversation_id, first_partner_id, first_link_id, first_channel, first_at,
                                               last_partner_id, last_link_id, last_channel, last_at)
    values (${tenantId}, ${t.leadId ?? null}, ${t.leadId ? null : t.visitorId ?? null}, ${t.conversationId ?? null}, ${t.partnerId}, ${t.linkId}, ${t.channel}, ${t.at},
            ${t.partnerId}, ${t.linkId}, ${t.channel}, ${t.at})
    on conflict ${target} do update set
      touches = a.touches + 1,
      conversation_id = coalesce(excluded.conversation_id, a.conversation_id),
      last_partner_id = case when excluded.last_at >= a.last_at then excluded.last_partner_id else a.last_partner_id end,
      last_link_id = case when excluded.last_at >= a.last_at then excluded.last_link_id else a.last_link_id end,
      last_channel = case when excluded.last_at >= a.last_at then excluded.last_channel else a.last_channel end,
      last_at = greatest(a.last_at, excluded.last_at),
      first_partner_id = case when excluded.first_at < a.first_at then excluded.first_partner_id else a.first_partner_id end,
      first_link_id = case when excluded.first_at < a.first_at then excluded.first_link_id else a.first_link_id end,
      first_channel = case when excluded.first_at < a.first_at then excluded.first_channel else a.first_channel end,
      first_at = least(a.first_at, excluded.first_at)
    returning ${attributionColumns(tx)}`.then((r) => r[0]!)
}

export const findAttribution = (tx: Tx, by: { leadId?: string; visitorId?: string; conversationId?: string }) =>
  tx<AttributionRow[]>`
    select ${attributionColumns(tx)} from assessments.attributions
     where ${by.leadId ? tx`lead_id = ${by.leadId}` : by.visitorId ? tx`visitor_id = ${by.visitorId}` : tx`conversation_id = ${by.conversationId ?? null}`}
     order by last_at desc limit 1`.then((r) => r[0] ?? null)

/**
 * The WhatsApp touches of one inbound batch, set-based: each (lead, conversation, link) pair updates the lead's
 * attribution. Rows arrive sorted by lead so concurrent batches take the attribution rows in one order.
 */
export const touchWhatsAppAttributions = (tx: Tx, rows: { tenant_id: string; lead_id: string; conversation_id: string | null; partner_id: string; link_id: string; at: string }[]) =>
  rows.length === 0 ? Promise.resolve([] as { leadId: string; conversationId: string | null; partnerId: string; linkId: string }[]) : tx<{ leadId: string; conversationId: string | null; partnerId: string; linkId: string }[]>`
    insert into assessments.attributions as a (tenant_id, lead_id, conversation_id, first_partner_id, first_link_id, first_channel, first_at,
                                               last_partner_id, last_link_id, last_channel, last_at)
    select distinct on (x.lead_id) x.tenant_id, x.lead_id, x.conversation_id, x.partner_id, x.link_id, 'whatsapp', x.at, x.partner_id, x.link_id, 'whatsapp', x.at
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as x(tenant_id uuid, lead_id uuid, conversation_id uuid, partner_id uuid, link_id uuid, at timestamptz)
     order by x.lead_id, x.at desc
    on conflict (tenant_id, lead_id) where lead_id is not null do update set
      touches = a.touches + 1,
      conversation_id = coalesce(excluded.conversation_id, a.conversation_id),
      last_partner_id = case when excluded.last_at >= a.last_at then excluded.last_partner_id else a.last_partner_id end,
      last_link_id = case when excluded.last_at >= a.last_at then excluded.last_link_id else a.last_link_id end,
      last_channel = case when excluded.last_at >= a.last_at then excluded.last_channel else a.last_channel end,
      last_at = greatest(a.last_at, excluded.last_at)
    returning lead_id, conversation_id, last_partner_id as partner_id, last_link_id as link_id`

export const conversationsOf = (tx: Tx, pairs: { lead_id: string; phone_id: string }[]) =>
  pairs.length === 0 ? Promise.resolve([] as { leadId: string; phoneId: string; id: string }[]) : tx<{ leadId: string; phoneId: string; id: string }[]>`
    select c.lead_id, c.phone_number_id as phone_id, c.id
      from conversations.conversations c
      join jsonb_to_recordset(${tx.json(pairs as never)}::jsonb) as x(lead_id uuid, phone_id uuid) on c.lead_id = x.lead_id and c.phone_number_id = x.phone_id`

// ---------------------------------------------------------------------------------------------------------------
// Products and the shop endpoint

export interface ProductRow {
  id: string; sku: string; title: string; price: string; currency: string; commissionRate: string | null; active: boolean; createdAt: Date; updatedAt: Date
}
const productColumns = (tx: Queryable) => tx`id, sku, title, price::text as price, currency, commission_rate::text as commission_rate, active, created_at, updated_at`

export const insertProduct = (tx: Tx, tenantId: string, p: { sku: string; title: string; price: string; currency: string; commissionRate: string | null; active: boolean }) =>
  tx<ProductRow[]>`
    insert into assessments.products (tenant_id, sku, title, price, currency, commission_rate, active)
    values (${tenantId}, ${p.sku}, ${p.title}, ${p.price}, ${p.currency}, ${p.commissionRate}, ${p.active})
    returning ${productColumns(tx)}`.then((r) => r[0]!)
export const listProducts = (tx: Tx) => tx<ProductRow[]>`select ${productColumns(tx)} from assessments.products order by created_at, id`
export const findProductBySku = (tx: Tx, sku: string) =>
  tx<ProductRow[]>`select ${productColumns(tx)} from assessments.products where sku = ${sku}`.then((r) => r[0] ?? null)
export const updateProduct = (tx: Tx, id: string, p: { title?: string; price?: string; commissionRate?: string | null; active?: boolean }) =>
  tx<ProductRow[]>`
    update assessments.products set
      title = coalesce(${p.title ?? null}, title),
      price = coalesce(${p.price ?? null}::numeric, price),
      commission_rate = ${p.commissionRate === undefined ? tx`commission_rate` : tx`${p.commissionRate}::numeric`},
      active = coalesce(${p.active ?? null}::boolean, active),
      updated_at = now()
     where id = ${id}
    returning ${productColumns(tx)}`.then((r) => r[0] ?? null)

export const upsertShopEndpoint = (tx: Tx, tenantId: string, publicKey: string, secretSealed: string) =>
  tx<{ publicKey: string; rotatedAt: Date }[]>`
    insert into assessments.shop_endpoints (tenant_id, public_key, secret_sealed) values (${tenantId}, ${publicKey}, ${secretSealed})
    on conflict (tenant_id) do update set public_key = excluded.public_key, secret_sealed = excluded.secret_sealed, rotated_at = now()
    returning public_key, rotated_at`.then((r) => r[0]!)
export const findShopEndpointOfTenant = (tx: Tx) =>
  tx<{ publicKey: string; rotatedAt: Date }[]>`select public_key, rotated_at from assessments.shop_endpoints`.then((r) => r[0] ?? null)
/** The public door of the shop webhook (migration 0035's definer function). */
export const findShopEndpoint = (sql: Sql, publicKey: string) =>
  sql<{ tenantId: string; secretSealed: string }[]>`select * from assessments.find_shop_endpoint(${publicKey})`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Purchases and commissions

export interface PurchaseRow {
  id: string; externalId: string; source: 'api' | 'webhook'; productId: string; quantity: number; amount: string; currency: string
  leadId: string | null; sessionId: string | null; visitorId: string | null; partnerId: string | null; linkId: string | null
  firstPartnerId: string | null; firstLinkId: string | null; status: 'completed' | 'refunded'; purchasedAt: Date; refundedAt: Date | null
}
const purchaseColumns = (tx: Queryable) => tx`
  id, external_id, source, product_id, quantity, amount::text as amount, currency, lead_id, session_id, visitor_id, partner_id, link_id,
  first_partner_id, first_link_id, status, purchased_at, refunded_at`

export interface NewPurchase extends Omit<PurchaseRow, 'id' | 'status' | 'refundedAt'> {}
/** Inserted once per shop transaction id: a repeat returns null (the caller reads the stored one). */
export const insertPurchase = (tx: Tx, tenantId: string, p: NewPurchase) =>
  tx<PurchaseRow[]>`
    insert into assessments.purchases (tenant_id, external_id, source, product_id, quantity, amount, currency, lead_id, session_id, visitor_id,
                                       partner_id, link_id, first_partner_id, first_link_id, purchased_at)
    values (${tenantId}, ${p.externalId}, ${p.source}, ${p.productId}, ${p.quantity}, ${p.amount}, ${p.currency}, ${p.leadId}, ${p.sessionId},
            ${p.visitorId}, ${p.partnerId}, ${p.linkId}, ${p.firstPartnerId}, ${p.firstLinkId}, ${p.purchasedAt})
    on conflict (tenant_id, external_id) do nothing
    returning ${purchaseColumns(tx)}`.then((r) => r[0] ?? null)

export const findPurchaseByExternalId = (tx: Tx, externalId: string, lock = false) =>
  tx<PurchaseRow[]>`select ${purchaseColumns(tx)} from assessments.purchases where external_id = ${externalId} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)
export const findPurchase = (tx: Tx, id: string) =>
  tx<PurchaseRow[]>`select ${purchaseColumns(tx)} from assessments.purchases where id = ${id}`.then((r) => r[0] ?? null)
export const listPurchases = (tx: Tx, partnerId: string | null, limit: number) =>
  tx<PurchaseRow[]>`
    select ${purchaseColumns(tx)} from assessments.purchases
     where ${partnerId === null ? tx`true` : tx`partner_id = ${partnerId}`} order by purchased_at desc, id limit ${limit}`
export const markPurchaseRefunded = (tx: Tx, id: string, at: Date) =>
  tx<PurchaseRow[]>`update assessments.purchases set status = 'refunded', refunded_at = ${at} where id = ${id} returning ${purchaseColumns(tx)}`.then((r) => r[0]!)

/** The session's link, partner and lead (a purchase naming a session is attributed through it). */
export const findSessionAttribution = (tx: Tx, sessionId: string) =>
  tx<{ id: string; linkId: string | null; partnerId: string | null; leadId: string | null; startedAt: Date }[]>`
    select id, link_id, partner_id, lead_id, started_at from assessments.sessions where id = ${sessionId}`.then((r) => r[0] ?? null)

export interface CommissionRow {
  id: string; purchaseId: string; partnerId: string; baseAmount: string; baseRate: string; rateSource: 'product' | 'partner'
  tier: 'standard' | 'silver' | 'gold' | 'platinum'; tierMultiplier: string; rate: string; amount: string; currency: string
  status: 'pending' | 'approved' | 'paid' | 'rejected' | 'reversed'; decidedBy: string | null; reason: string | null
  approvedAt: Date | null; paidAt: Date | null; rejectedAt: Date | null; reversedAt: Date | null; createdAt: Date
}
const commissionColumns = (tx: Queryable) => tx`
  id, purchase_id, partner_id, base_amount::text as base_amount, base_rate::text as base_rate, rate_source, tier,
  tier_multiplier::text as tier_multiplier, rate::text as rate, amount::text as amount, currency, status, decided_by, reason,
  approved_at, paid_at, rejected_at, reversed_at, created_at`

export const insertCommission = (tx: Tx, tenantId: string, c: {
  purchaseId: string; partnerId: string; baseAmount: string; baseRate: string; rateSource: string; tier: string; tierMultiplier: string
  rate: string; amount: string; currency: string
}) =>
  tx<CommissionRow[]>`
    insert into assessments.commissions (tenant_id, purchase_id, partner_id, base_amount, base_rate, rate_source, tier, tier_multiplier, rate, amount, currency)
    values (${tenantId}, ${c.purchaseId}, ${c.partnerId}, ${c.baseAmount}, ${c.baseRate}, ${c.rateSource}, ${c.tier}, ${c.tierMultiplier}, ${c.rate},
            ${c.amount}, ${c.currency})
    on conflict (purchase_id) do nothing
    returning ${commissionColumns(tx)}`.then((r) => r[0] ?? null)

export const findCommission = (tx: Tx, id: string, lock = false) =>
  tx<CommissionRow[]>`select ${commissionColumns(tx)} from assessments.commissions where id = ${id} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)
export const findCommissionOfPurchase = (tx: Tx, purchaseId: string, lock = false) =>
  tx<CommissionRow[]>`select ${commissionColumns(tx)} from assessments.commissions where purchase_id = ${purchaseId} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)
export const listCommissions = (tx: Tx, f: { partnerId?: string; status?: string }, limit: number) =>
  tx<CommissionRow[]>`
    select ${commissionColumns(tx)} from assessments.commissions
     where ${f.partnerId ? tx`partner_id = ${f.partnerId}` : tx`true`} and ${f.status ? tx`status = ${f.status}` : tx`true`}
     order by created_at desc, id limit ${limit}`

export const setCommissionStatus = (tx: Tx, id: string, status: CommissionRow['status'], actor: string, reason: string | null) =>
  tx<CommissionRow[]>`
    update assessments.commissions set status = ${status}, decided_by = ${actor}, reason = coalesce(${reason}, reason),
      approved_at = case when ${status} = 'approved' then now() else approved_at end,
      rejected_at = case when ${status} = 'rejected' then now() else rejected_at end,
      reversed_at = case when ${status} = 'reversed' then now() else reversed_at end
     where id = ${id}
    returning ${commissionColumns(tx)}`.then((r) => r[0]!)

/**
 * Approved commissions become paid, oldest approval first, as far as the partner's completed withdrawals cover them
 * (withdrawn money pays the earliest earnings). Runs under the partner's lock.
 */
export const markCoveredCommissionsPaid = (tx: Tx, partnerId: string) =>
  tx<{ id: string }[]>`
    with paid_out as (
      select coalesce(sum(amount), 0) as total from assessments.withdrawals where partner_id = ${partnerId} and status = 'completed'
    ), already as (
      select coalesce(sum(amount), 0) as total from assessments.commissions where partner_id = ${partnerId} and status = 'paid'
    ), queue as (
      select id, sum(amount) over (order by approved_at, id) as running
        from assessments.commissions where partner_id = ${partnerId} and status = 'approved'
    )
    update assessments.commissions c set status = 'paid', paid_at = now()
      from queue, paid_out, already
     where c.id = queue.id and queue.running <= paid_out.total - already.total
    returning c.id`

// ---------------------------------------------------------------------------------------------------------------
// Withdrawals and the ledger

export interface WithdrawalRow {
  id: string; partnerId: string; amount: string; currency: string; status: 'requested' | 'approved' | 'completed' | 'rejected'
  requestedBy: string; decidedBy: string | null; reference: string | null; reason: string | null
  requestedAt: Date; approvedAt: Date | null; completedAt: Date | null; rejectedAt: Date | null
}
const withdrawalColumns = (tx: Queryable) => tx`
  id, partner_id, amount::text as amount, currency, status, requested_by, decided_by, reference, reason, requested_at, approved_at, completed_at, rejected_at`

export const insertWithdrawal = (tx: Tx, tenantId: string, w: { partnerId: string; amount: string; currency: string; requestedBy: string }) =>
  tx<WithdrawalRow[]>`
    insert into assessments.withdrawals (tenant_id, partner_id, amount, currency, requested_by)
    values (${tenantId}, ${w.partnerId}, ${w.amount}, ${w.currency}, ${w.requestedBy})
    returning ${withdrawalColumns(tx)}`.then((r) => r[0]!)
export const findWithdrawal = (tx: Tx, id: string, lock = false) =>
  tx<WithdrawalRow[]>`select ${withdrawalColumns(tx)} from assessments.withdrawals where id = ${id} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)
export const listWithdrawals = (tx: Tx, f: { partnerId?: string; status?: string }, limit: number) =>
  tx<WithdrawalRow[]>`
    select ${withdrawalColumns(tx)} from assessments.withdrawals
     where ${f.partnerId ? tx`partner_id = ${f.partnerId}` : tx`true`} and ${f.status ? tx`status = ${f.status}` : tx`true`}
     order by requested_at desc, id limit ${limit}`
export const setWithdrawalStatus = (tx: Tx, id: string, status: WithdrawalRow['status'], actor: string, extra: { reference?: string; reason?: string }) =>
  tx<WithdrawalRow[]>`
    update assessments.withdrawals set status = ${status}, decided_by = ${actor},
      reference = coalesce(${extra.reference ?? null}, reference), reason = coalesce(${extra.reason ?? null}, reason),
      approved_at = case when ${status} = 'approved' then now() else approved_at end,
      completed_at = case when ${status} = 'completed' then now() else completed_at end,
      rejected_at = case when ${status} = 'rejected' then now() else rejected_at end
     where id = ${id}
    returning ${withdrawalColumns(tx)}`.then((r) => r[0]!)

export interface LedgerRow {
  id: string; kind: 'commission_approved' | 'commission_reversed' | 'clawback' | 'withdrawal_requested' | 'withdrawal_released'
  amount: string; balanceAfter: string; currency: string; commissionId: string | null; withdrawalId: string | null; actor: string; createdAt: Date
}
const ledgerColumns = (tx: Queryable) => tx`
  id, kind, amount::text as amount, balance_after::text as balance_after, currency, commission_id, withdrawal_id, actor, created_at`

/** The trigger computes balance_after under the partner's lock and refuses (23514) a balance below zero. */
export const insertLedgerEntry = (tx: Tx, tenantId: string, e: {
  partnerId: string; kind: LedgerRow['kind']; amount: string; currency: string; commissionId?: string | null; withdrawalId?: string | null; actor: string
}) =>
  tx<LedgerRow[]>`
    insert into assessments.ledger_entries (tenant_id, partner_id, kind, amount, balance_after, currency, commission_id, withdrawal_id, actor)
    values (${tenantId}, ${e.partnerId}, ${e.kind}, ${e.amount}, 0, ${e.currency}, ${e.commissionId ?? null}, ${e.withdrawalId ?? null}, ${e.actor})
    returning ${ledgerColumns(tx)}`.then((r) => r[0]!)

export const listLedger = (tx: Tx, partnerId: string, afterId: string | null, limit: number) =>
  tx<LedgerRow[]>`
    select ${ledgerColumns(tx)} from assessments.ledger_entries
     where partner_id = ${partnerId} and ${afterId === null ? tx`true` : tx`id > ${afterId}::bigint`}
     order by id limit ${limit}`

// ---------------------------------------------------------------------------------------------------------------
// Reports: the facts per link of one partner, over [from, to).

export interface LinkCounts {
  linkId: string; linkCode: string; clicks: number; uniqueVisitors: number; inactiveClicks: number; starts: number; completions: number
  conversions: number; revenue: string; pending: string; approved: string; paid: string; rejected: string; reversed: string
}
export const partnerLinkCounts = (tx: Tx, partnerId: string, from: string, to: string) =>
  tx<LinkCounts[]>`
    select l.id as link_id, l.link_code,
           coalesce(c.clicks, 0)::int as clicks, coalesce(c.unique_visitors, 0)::int as unique_visitors, coalesce(c.inactive, 0)::int as inactive_clicks,
           coalesce(s.starts, 0)::int as starts, coalesce(s.completions, 0)::int as completions,
           coalesce(p.conversions, 0)::int as conversions, coalesce(p.revenue, 0)::text as revenue,
           coalesce(m.pending, 0)::text as pending, coalesce(m.approved, 0)::text as approved, coalesce(m.paid, 0)::text as paid,
           coalesce(m.rejected, 0)::text as rejected, coalesce(m.reversed, 0)::text as reversed
      from assessments.links l
      left join lateral (
        select count(*) filter (where outcome <> 'inactive' and not is_bot) as clicks,
               count(distinct coalesce(visitor_id, ip_hash)) filter (where outcome <> 'inactive' and not is_bot) as unique_visitors,
               count(*) filter (where outcome = 'inactive') as inactive
          from assessments.link_clicks k where k.link_id = l.id and k.clicked_at >= ${from} and k.clicked_at < ${to}) c on true
      left join lateral (
        select count(*) as starts, count(*) filter (where status = 'completed') as completions
          from assessments.sessions x where x.link_id = l.id and x.started_at >= ${from} and x.started_at < ${to}) s on true
      left join lateral (
        select count(*) filter (where status = 'completed') as conversions, sum(amount) filter (where status = 'completed') as revenue
          from assessments.purchases y where y.link_id = l.id and y.purchased_at >= ${from} and y.purchased_at < ${to}) p on true
      left join lateral (
        select sum(cm.amount) filter (where cm.status = 'pending') as pending, sum(cm.amount) filter (where cm.status = 'approved') as approved,
               sum(cm.amount) filter (where cm.status = 'paid') as paid, sum(cm.amount) filter (where cm.status = 'rejected') as rejected,
               sum(cm.amount) filter (where cm.status = 'reversed') as reversed
          from assessments.commissions cm join assessments.purchases y on y.id = cm.purchase_id
         where y.link_id = l.id and cm.partner_id = ${partnerId} and y.purchased_at >= ${from} and y.purchased_at < ${to}) m on true
     where l.partner_id = ${partnerId}
     order by l.created_at, l.id`

export { ts as isoOrNull }

// ---------------------------------------------------------------------------------------------------------------
// Partner keys (migration 0055) and what a partner reads with one: every query names the partner.

export interface PartnerKeyRow { id: string; partnerId: string; label: string; prefix: string; createdBy: string; createdAt: Date; lastUsedAt: Date | null; revokedAt: Date | null }
const partnerKeyColumns = (tx: Queryable) => tx`id, partner_id, label, prefix, created_by, created_at, last_used_at, revoked_at`

export const insertPartnerKey = (tx: Tx, tenantId: string, k: { partnerId: string; label: string; prefix: string; keyHash: Buffer; createdBy: string }) =>
  tx<PartnerKeyRow[]>`
    insert into assessments.partner_keys (tenant_id, partner_id, label, prefix, key_hash, created_by)
    values (${tenantId}, ${k.partnerId}, ${k.label}, ${k.prefix}, ${k.keyHash}, ${k.createdBy})
    returning ${partnerKeyColumns(tx)}`.then((r) => r[0]!)

export const listPartnerKeys = (tx: Tx, partnerId: string) =>
  tx<PartnerKeyRow[]>`select ${partnerKeyColumns(tx)} from assessments.partner_keys where partner_id = ${partnerId} order by created_at, id`

/** Revokes once: a key already revoked keeps its first revocation time. Null when the partner has no such key. */
export const revokePartnerKey = (tx: Tx, partnerId: string, keyId: string) =>
  tx<PartnerKeyRow[]>`
    update assessments.partner_keys set revoked_at = coalesce(revoked_at, now())
     where id = ${keyId} and partner_id = ${partnerId}
    returning ${partnerKeyColumns(tx)}`.then((r) => r[0] ?? null)

/** Before any tenant is known: the key's tenant and partner (assessments.authenticate_partner_key), or null. */
export const authenticatePartnerKeyHash = (sql: Queryable, keyHash: Buffer) =>
  sql<{ keyId: string; tenantId: string; partnerId: string }[]>`
    select key_id, tenant_id, partner_id from assessments.authenticate_partner_key(${keyHash})`.then((r) => r[0] ?? null)

export interface PartnerClickRow { id: string; linkId: string; linkCode: string; outcome: 'web' | 'whatsapp' | 'inactive'; isBot: boolean; clickedAt: Date }

/** A partner's clicks, newest first, keyset by id: no visitor, address, agent or referrer (those are the tenant's). */
export const listClicksOfPartner = (tx: Tx, partnerId: string, beforeId: string | null, limit: number) =>
  tx<PartnerClickRow[]>`
    select k.id::text as id, k.link_id, l.link_code, k.outcome, k.is_bot, k.clicked_at
      from assessments.link_clicks k join assessments.links l on l.id = k.link_id and l.partner_id = k.partner_id
     where k.partner_id = ${partnerId} and ${beforeId === null ? tx`true` : tx`k.id < ${beforeId}::bigint`}
     order by k.id desc limit ${limit}`
