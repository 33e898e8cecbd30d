import { type Sql, type Tx } from '../../lib/db.js'
import { parseSigner, registeredUnder } from './app-secrets.js'
import * as q from './queries.js'
import { applyInboundMessages, applyManagementItem, applyStatuses, applyValueErrors, senderIdentity, type ManagementItem, type RoutedPhone } from './apply-items.js'
import { splitDelivery, type DeliveryItem, type ErrorItem, type MessageItem, type StatusItem } from './webhook/split.js'

/** A new inbound message, for code that reacts to them (the bot) inside the same transaction. */
export interface NewInboundMessage {
  tenantId: string
  messageId: string
  leadId: string
  phoneId: string
  item: MessageItem
}
export type InboundHook = (tx: Tx, messages: NewInboundMessage[]) => Promise<void>

export interface ProcessResult {
  processed: string[]
  failed: { deliveryId: string; error: string }[]
}

interface Quarantine {
  deliveryId: string
  itemKey: string
  routeKey: string
  kind: string
  reason: string
  item: unknown
}

interface TenantWork {
  messages: { route: RoutedPhone; item: MessageItem }[]
  statuses: StatusItem[]
  errors: { route: RoutedPhone; items: ErrorItem[] }[]
  management: { businessAccountId: string; item: ManagementItem }[]
}

/**
 * Applies stored deliveries. All of them go in one transaction (one commit for the batch); if that fails, each
 * delivery is retried in a transaction of its own so one bad delivery cannot hold the others back, and the ones
 * that still fail are returned for the caller to retry with backoff. A crash anywhere leaves nothing half-applied:
 * a delivery's items and its `processed` mark commit together.
 */
export async function processDeliveries(sql: Sql, deliveryIds: string[], onInbound?: InboundHook): Promise<ProcessResult> {
  try {
    const processed = await sql.begin((tx) => applyDeliveries(tx, deliveryIds, onInbound))
    return { processed, failed: [] }
  } catch (err) {
    if (deliveryIds.length === 1) return { processed: [], failed: [{ deliveryId: deliveryIds[0]!, error: describe(err) }] }
  }
  const result: ProcessResult = { processed: [], failed: [] }
  for (const id of deliveryIds) {
    try {
      result.processed.push(...(await sql.begin((tx) => applyDeliveries(tx, [id], onInbound))))
    } catch (err) {
      result.failed.push({ deliveryId: id, error: describe(err) })
    }
  }
  return result
}

const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 2000)

async function applyDeliveries(tx: Tx, deliveryIds: string[], onInbound?: InboundHook): Promise<string[]> {
  // skip locked: a delivery being replayed by another job right now is that job's to finish.
  const rows = await tx<{ id: string; signedBy: string; payload: unknown }[]>`
    select id::text, signed_by, payload from whatsapp.webhook_deliveries
     where id = any(${deliveryIds}::bigint[]) and status <> 'processed'
     order by id
     for update skip locked`
  if (rows.length === 0) return []

  const deliveries = rows.map((r) => ({ id: r.id, signer: parseSigner(r.signedBy), items: splitDelivery(r.payload) }))
  const all = deliveries.flatMap((d) => d.items)
  const phoneIds = [...new Set(all.flatMap((i) => ('phoneNumberId' in i ? [i.phoneNumberId] : [])))]
  const wabaIds = [...new Set(all.flatMap((i) => (isManagement(i) ? [i.wabaId] : [])))]
  const phones = new Map((phoneIds.length ? await q.routePhoneNumbers(tx, phoneIds) : []).map((p) => [p.phoneNumberId, p]))
  const wabas = new Map((wabaIds.length ? await q.routeBusinessAccounts(tx, wabaIds) : []).map((b) => [b.wabaId, b]))

  const quarantine: Quarantine[] = []
  const work = new Map<string, TenantWork>()
  const workFor = (tenantId: string) => {
    let w = work.get(tenantId)
    if (!w) work.set(tenantId, (w = { messages: [], statuses: [], errors: [], management: [] }))
    return w
  }
  const counts = new Map<string, { items: number; quarantined: number }>()

  for (const delivery of deliveries) {
    const count = { items: delivery.items.length, quarantined: 0 }
    counts.set(delivery.id, count)
    const hold = (item: DeliveryItem, routeKey: string, reason: string) => {
      count.quarantined++
      quarantine.push({ deliveryId: delivery.id, itemKey: item.itemKey, routeKey, kind: item.kind, reason, item })
    }
    // Tenant boundary: a delivery reaches only what is registered under the app whose secret verified it (the
    // platform's app: platform-mode numbers; a tenant's own app: numbers registered with that app's key). Anything
    // else is refused here, before any tenant is touched, whoever the id belongs to.
    const outside = (what: string) => delivery.signer.kind === 'unbound'
      ? 'the delivery does not record which app signed it (stored before deliveries were bound to apps)'
      : `${what} is not registered under the app that signed this delivery`
    for (const item of delivery.items) {
      switch (item.kind) {
        case 'message':
        case 'status':
        case 'error': {
          const phone = phones.get(item.phoneNumberId)
          if (!phone) {
            hold(item, item.phoneNumberId, `unknown phone_number_id ${item.phoneNumberId}`)
            break
          }
          if (!registeredUnder(delivery.signer, { platform: phone.appMode === 'platform', appKeys: phone.appKey ? [phone.appKey] : [] })) {
            hold(item, item.phoneNumberId, outside(`phone_number_id ${item.phoneNumberId}`))
            break
          }
          const route = { tenantId: phone.tenantId, phoneId: phone.id }
          const w = workFor(phone.tenantId)
          if (item.kind === 'message') w.messages.push({ route, item })
          else if (item.kind === 'status') w.statuses.push(item)
          else w.errors.push({ route, items: [item] })
          break
        }
        case 'unknown':
          hold(item, item.wabaId, `unsupported webhook field ${item.field}`)
          break
        case 'invalid':
          hold(item, item.wabaId ?? 'unknown', item.reason)
          break
        default: {
          const account = wabas.get(item.wabaId)
          if (!account) hold(item, item.wabaId, `unknown WhatsApp Business Account ${item.wabaId}`)
          else if (!registeredUnder(delivery.signer, account)) hold(item, item.wabaId, outside(`WhatsApp Business Account ${item.wabaId}`))
          else workFor(account.tenantId).management.push({ businessAccountId: account.id, item })
        }
      }
    }
  }

  for (const [tenantId, w] of work) {
    await tx`select set_config('app.tenant_id', ${tenantId}, true)`
    await applyTenantWork(tx, tenantId, w, onInbound)
  }
  if (quarantine.length > 0) await insertQuarantine(tx, quarantine)

  const ids = deliveries.map((d) => d.id)
  await tx`
    update whatsapp.webhook_deliveries d
       set status = 'processed', processed_at = now(), attempts = d.attempts + 1, last_error = null,
           item_count = c.items, quarantined_count = c.quarantined
      from unnest(${ids}::bigint[], ${ids.map((i) => counts.get(i)!.items)}::int[], ${ids.map((i) => counts.get(i)!.quarantined)}::int[])
           as c(id, items, quarantined)
     where d.id = c.id`
  return ids
}

const MANAGEMENT_KINDS = new Set(['template_status', 'template_quality', 'template_category', 'account_update', 'phone_number_quality', 'phone_number_name'])
const isManagement = (i: DeliveryItem): i is ManagementItem => MANAGEMENT_KINDS.has(i.kind)

async function applyTenantWork(tx: Tx, tenantId: string, w: TenantWork, onInbound?: InboundHook): Promise<void> {
  const entries = w.messages.flatMap(({ route, item }) => {
    const sender = senderIdentity(item)
    return sender ? [{ route, item, sender }] : []
  })
  const inserted = await applyInboundMessages(tx, tenantId, entries)
  await applyStatuses(tx, tenantId, w.statuses)
  for (const e of w.errors) await applyValueErrors(tx, e.route, e.items)
  for (const m of w.management) await applyManagementItem(tx, tenantId, m.businessAccountId, m.item)
  if (onInbound && inserted.length > 0) {
    await onInbound(tx, inserted.map(({ messageId, leadId, entry }) => ({ tenantId, messageId, leadId, phoneId: entry.route.phoneId, item: entry.item })))
  }
}

function insertQuarantine(tx: Tx, rows: Quarantine[]) {
  const data = rows.map((r) => ({ delivery_id: r.deliveryId, item_key: r.itemKey, route_key: r.routeKey, kind: r.kind, reason: r.reason, item: r.item }))
  return tx`
    insert into whatsapp.quarantined_items (delivery_id, item_key, route_key, kind, reason, item)
    select r.delivery_id, r.item_key, r.route_key, r.kind, r.reason, r.item
      from jsonb_to_recordset(${tx.json(data as never)}::jsonb)
           as r(delivery_id bigint, item_key text, route_key text, kind text, reason text, item jsonb)
    on conflict (delivery_id, item_key) do update
      set reason = excluded.reason, route_key = excluded.route_key, released_at = null, created_at = now()`
}

/** Records a failed attempt on the delivery row (in its own transaction: the work itself rolled back). */
export function recordDeliveryFailure(sql: Sql | Tx, deliveryId: string, error: string, parked: boolean) {
  return sql`
    update whatsapp.webhook_deliveries
       set attempts = attempts + 1, last_error = ${error}, status = ${parked ? 'parked' : 'failed'}
     where id = ${deliveryId} and status <> 'processed'`
}

/**
 * A delivery that failed in its batch goes to a retrying job of its own (PROCESS_DELIVERY_TASK): the failure is
 * recorded and the job enqueued in one transaction, so the batch job can complete and nothing is lost.
 */
export function handDeliveryToItsOwnJob(sql: Sql, deliveryId: string, error: string, maxAttempts: number) {
  return sql.begin(async (tx) => {
    await recordDeliveryFailure(tx, deliveryId, error, false)
    await q.enqueueDeliveryJob(tx, deliveryId, maxAttempts)
  })
}
