import type { Queryable, Tx } from '../../lib/db.js'
import { type MessageView, type PhoneNumberView, PROCESS_DELIVERY_TASK } from './schemas.js'

// ---------------------------------------------------------------------------------------------------------
// Numbers and accounts.

const phoneNumberColumns = (tx: Queryable) => tx`
  p.id, p.phone_number_id, b.waba_id, p.display_phone_number, p.verified_name, p.quality_rating, p.quality_event, p.messaging_limit,
  p.max_daily_conversations, p.throughput_level,
  p.status, p.app_mode, p.meta_app_id, p.token_invalid_at, p.created_at, p.updated_at`

export const upsertBusinessAccount = (tx: Tx, tenantId: string, wabaId: string) =>
  tx<{ id: string }[]>`
    insert into whatsapp.business_accounts (tenant_id, waba_id) values (${tenantId}, ${wabaId})
    on conflict (waba_id) do update set updated_at = now()
    returning id`.then((r) => r[0]!)

export const insertPhoneNumber = (
  tx: Tx,
  row: {
    tenantId: string; businessAccountId: string; phoneNumberId: string; displayPhoneNumber: string; verifiedName: string | null
    appMode: 'platform' | 'own'; metaAppId: string | null; appSecretSealed: string | null; appKey: Buffer | null; verifyTokenHash: Buffer | null
    accessTokenSealed: string
  },
) =>
  tx<{ id: string }[]>`
    insert into whatsapp.phone_numbers ${tx(row, 'tenantId', 'businessAccountId', 'phoneNumberId', 'displayPhoneNumber', 'verifiedName',
      'appMode', 'metaAppId', 'appSecretSealed', 'appKey', 'verifyTokenHash', 'accessTokenSealed')}
    returning id`.then((r) => r[0]!)

export const findPhoneNumber = (tx: Tx, id: string) =>
  tx<PhoneNumberView[]>`
    select ${phoneNumberColumns(tx)} from whatsapp.phone_numbers p join whatsapp.business_accounts b on b.id = p.business_account_id
     where p.id = ${id}`.then((r) => r[0] ?? null)

/**
 * The messaging limit tier Meta answered for the number (GET /{phone-number-id}), as of now. It is ordered with the
 * phone_number_quality_update webhooks on limit_event_at: a webhook stamped later than this answer has already won,
 * and one stamped earlier (delayed in transit) no longer overwrites it.
 */
export const recordMessagingLimit = (tx: Tx, id: string, tier: string) =>
  tx`
    update whatsapp.phone_numbers set messaging_limit = ${tier}, limit_event_at = now(), updated_at = now()
     where id = ${id} and (limit_event_at is null or limit_event_at <= now())`.then((r) => r.count > 0)

export const listPhoneNumbers = (tx: Tx) =>
  tx<PhoneNumberView[]>`
    select ${phoneNumberColumns(tx)} from whatsapp.phone_numbers p join whatsapp.business_accounts b on b.id = p.business_account_id
     order by p.created_at, p.id`

export const updatePhoneNumber = (tx: Tx, id: string, change: { accessTokenSealed?: string; status?: string }) =>
  tx`
    update whatsapp.phone_numbers set
      access_token_sealed = coalesce(${change.accessTokenSealed ?? null}, access_token_sealed),
      -- A new token clears the "token invalid" flag that a 190 error set.
      token_invalid_at = case when ${change.accessTokenSealed ?? null}::text is null then token_invalid_at end,
      status = coalesce(${change.status ?? null}, status),
      updated_at = now()
    where id = ${id}`.then((r) => r.count > 0)

// ---------------------------------------------------------------------------------------------------------
// Routing (security definer functions: they run before a tenant is known).

/** Who owns each phone number id, and under which app it is registered (appKey: own apps only, hex). */
export const routePhoneNumbers = (tx: Queryable, phoneNumberIds: string[]) =>
  tx<{ phoneNumberId: string; tenantId: string; id: string; status: string; appMode: 'platform' | 'own'; appKey: string | null }[]>`
    select phone_number_id, tenant_id, id, status, app_mode, app_key from whatsapp.route_phone_numbers(${phoneNumberIds}::text[])`

/** Who owns each WABA, and the apps its numbers are registered under (platform, and own apps' keys in hex). */
export const routeBusinessAccounts = (tx: Queryable, wabaIds: string[]) =>
  tx<{ wabaId: string; tenantId: string; id: string; platform: boolean; appKeys: string[] }[]>`
    select waba_id, tenant_id, id, platform, app_keys from whatsapp.route_business_accounts(${wabaIds}::text[])`

export const ownAppSecrets = (tx: Queryable, phoneNumberIds: string[], wabaIds: string[]) =>
  tx<{ phoneId: string; appSecretSealed: string; bound: boolean }[]>`
    select phone_id, app_secret_sealed, bound from whatsapp.own_app_secrets(${phoneNumberIds}::text[], ${wabaIds}::text[])`

/** Gives older own-app registrations their app key (computed from the exact sealed secret it names). */
export const bindOwnAppKeys = (tx: Queryable, rows: { phoneId: string; sealed: string; appKey: Buffer }[]) =>
  tx`
    select whatsapp.bind_own_app_keys(${rows.map((r) => r.phoneId)}::uuid[], ${rows.map((r) => r.sealed)}::text[],
                                      array(select decode(k.hex, 'hex') from unnest(${rows.map((r) => r.appKey.toString('hex'))}::text[])
                                                   with ordinality as k(hex, ord) order by k.ord))`

export const verifyTokenKnown = (tx: Queryable, hash: Buffer) =>
  tx<{ known: boolean }[]>`select whatsapp.verify_token_known(${hash}) as known`.then((r) => r[0]!.known)

// ---------------------------------------------------------------------------------------------------------
// Messages, for the API.

const messageColumns = (tx: Queryable) => tx`
  m.id, m.lead_id, m.direction, m.wamid, m.wa_id, m.type, m.content, m.context, m.referral, m.errors, m.status, m.status_at,
  m.error_code, m.error_title, m.pricing, m.occurred_at`

export const listLeadMessages = (tx: Tx, leadId: string, limit: number, before: { occurredAt: string; id: string } | null) =>
  tx<(MessageView & { statusHistory: MessageView['statusHistory'] })[]>`
    select ${messageColumns(tx)},
           coalesce((select json_agg(json_build_object('status', s.status, 'occurredAt', s.occurred_at, 'errors', s.errors,
                                                       'pricing', s.pricing, 'conversation', s.conversation)
                                     order by whatsapp.status_rank(s.status), s.occurred_at)
                       from whatsapp.message_statuses s where s.wamid = m.wamid), '[]') as status_history
      from whatsapp.messages m
     where m.lead_id = ${leadId}
       ${before ? tx`and (m.occurred_at, m.id) < (${before.occurredAt}::timestamptz, ${before.id}::uuid)` : tx``}
     order by m.occurred_at desc, m.id desc
     limit ${limit}`

// ---------------------------------------------------------------------------------------------------------
// Operators: the inbox, its quarantine, replays. Platform tables, no tenant.

/** For /metrics, at scrape time: what waits for an operator. Both counts use partial indexes. */
export const whatsappBacklog = (tx: Queryable) =>
  tx<{ quarantinedItems: number; parkedDeliveries: number }[]>`
    select (select count(*)::int from whatsapp.quarantined_items where released_at is null) as quarantined_items,
           (select count(*)::int from whatsapp.webhook_deliveries where status = 'parked') as parked_deliveries`.then((r) => r[0]!)

export const listDeliveries = (tx: Queryable, filter: { status?: string; limit: number; beforeId?: string | null }) =>
  tx`
    select id::text, received_at, signed_by, status, attempts, last_error, item_count, quarantined_count, processed_at
      from whatsapp.webhook_deliveries
     where true
       ${filter.status ? tx`and status = ${filter.status}` : tx``}
       ${filter.beforeId ? tx`and id < ${filter.beforeId}::bigint` : tx``}
     order by id desc
     limit ${filter.limit}`

export const listQuarantine = (tx: Queryable, filter: { open: boolean; limit: number; beforeId?: string | null }) =>
  tx`
    select id::text, delivery_id::text, item_key, route_key, kind, reason, item, created_at, released_at
      from whatsapp.quarantined_items
     where true
       ${filter.open ? tx`and released_at is null` : tx``}
       ${filter.beforeId ? tx`and id < ${filter.beforeId}::bigint` : tx``}
     order by id desc
     limit ${filter.limit}`

/** Signed deliveries PostgreSQL could not store as jsonb, kept as raw bytes; newest first, without the bytes. */
export const listUnparseableDeliveries = (tx: Queryable, filter: { limit: number; beforeId?: string | null }) =>
  tx`
    select id::text, received_at, signed_by, reason, octet_length(raw_body) as byte_count, encode(body_sha256, 'hex') as body_sha256
      from whatsapp.unparseable_deliveries
     where true
       ${filter.beforeId ? tx`and id < ${filter.beforeId}::bigint` : tx``}
     order by id desc
     limit ${filter.limit}`

/** One unparseable delivery with its exact bytes (base64). */
export const findUnparseableDelivery = (tx: Queryable, id: string) =>
  tx<{ rawBody: Buffer }[]>`
    select id::text, received_at, signed_by, reason, octet_length(raw_body) as byte_count, encode(body_sha256, 'hex') as body_sha256, raw_body
      from whatsapp.unparseable_deliveries
     where id = ${id}::bigint`.then((r) => {
    if (!r[0]) return null
    const { rawBody, ...row } = r[0]
    return { ...row, rawBase64: rawBody.toString('base64') }
  })

/**
 * Up to `limit` processed raw deliveries older than the retention, none with an item still in quarantine; returns how
 * many went (a caller loops until fewer than `limit` went, keeping each transaction short on a backlog).
 */
export const pruneProcessedDeliveries = (sql: Queryable, retentionDays: number, limit: number) =>
  sql`
    delete from whatsapp.webhook_deliveries
     where id in (
       select d.id from whatsapp.webhook_deliveries d
        where d.status = 'processed' and d.processed_at < now() - make_interval(days => ${retentionDays})
          and not exists (select 1 from whatsapp.quarantined_items q where q.delivery_id = d.id and q.released_at is null)
        limit ${limit})`.then((r) => r.count)

/** Raw unparseable deliveries older than the retention: they hold leads' messages too. Returns how many went. */
export const pruneUnparseableDeliveries = (tx: Queryable, retentionDays: number) =>
  tx`delete from whatsapp.unparseable_deliveries where received_at < now() - make_interval(days => ${retentionDays})`.then((r) => r.count)

/** Puts a delivery back in line: its quarantined items are released and the job enqueued, in one commit. */
export const replayDelivery = (tx: Tx, deliveryId: string, task: string) =>
  tx`
    with d as (
      update whatsapp.webhook_deliveries set status = 'received', last_error = null
       where id = ${deliveryId}::bigint
      returning id
    ), released as (
      update whatsapp.quarantined_items set released_at = now() where delivery_id in (select id from d) and released_at is null
    )
    select graphile_worker.add_job(${task}, json_build_object('deliveryId', id::text), max_attempts := 8,
                                   job_key := 'whatsapp:delivery:' || id::text) as job
      from d`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------
// Retention.

/**
 * Up to `limit` of a tenant's messages older than `days` days, oldest first. A message whose send is still open is
 * kept: deleting it would cancel a send in flight and leave Meta's status for it with nothing to apply to.
 */
export const messagesOlderThan = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx<{ id: string }[]>`
    select m.id from whatsapp.messages m
     where m.tenant_id = ${tenantId} and m.occurred_at < now() - make_interval(days => ${days})
       and not exists (select 1 from whatsapp.outbound_sends o where o.message_id = m.id and o.state not in ('accepted', 'failed', 'cancelled'))
     order by m.occurred_at
     limit ${limit}`.then((rows) => rows.map((r) => r.id))

/**
 * Deletes messages with what hangs off them: their status history (by wamid: no foreign key) and their outbound
 * sends (the foreign key cascades; counted first). Conversation events keep their rows (message_id set null).
 */
export const deleteMessagesWithHistory = (tx: Tx, tenantId: string, messageIds: string[]) =>
  tx<{ messages: number; statuses: number; sends: number }[]>`
    with doomed as (
      select id, wamid from whatsapp.messages where tenant_id = ${tenantId} and id = any(${messageIds}::uuid[])
    ), statuses as (
      delete from whatsapp.message_statuses s using doomed d
       where s.tenant_id = ${tenantId} and s.wamid = d.wamid returning 1
    ), sends as (
      select count(*)::int as n from whatsapp.outbound_sends o join doomed d on d.id = o.message_id
    ), gone as (
      delete from whatsapp.messages m using doomed d where m.id = d.id returning 1
    )
    select (select count(*)::int from gone) as messages, (select count(*)::int from statuses) as statuses,
           (select n from sends) as sends`.then(([r]) => r!)

/** The retrying job of one delivery that failed in its batch; keyed so a delivery never has two. */
export const enqueueDeliveryJob = (tx: Tx, deliveryId: string, maxAttempts: number) =>
  tx`
    select graphile_worker.add_job(${PROCESS_DELIVERY_TASK}, json_build_object('deliveryId', ${deliveryId}::text),
                                   max_attempts := ${maxAttempts}, job_key := ${`whatsapp:delivery:${deliveryId}`})`
