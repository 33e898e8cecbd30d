import type postgres from 'postgres'
import type { Queryable, Tx } from '../../lib/db.js'
import { deleteEmptyQueues, hashedQueueName, hashedQueueNameSql, UUID_PATTERN } from '../../lib/job-queue.js'
import type { FlowState } from './flows/schema.js'
import type { ConversationView, FlowVersionView, FlowView } from './schemas.js'

// ---------------------------------------------------------------------------------------------------------
// Conversations and their event queue.

/** Never locks an existing conversation (`do nothing`): the bot may hold it while waiting for the lead's row. */
export async function ensureConversation(tx: Tx, c: { tenantId: string; leadId: string; phoneId: string; waId: string }): Promise<string> {
  const [created] = await tx<{ id: string }[]>`
    insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id)
    values (${c.tenantId}, ${c.leadId}, ${c.phoneId}, ${c.waId})
    on conflict (tenant_id, lead_id, phone_number_id) do nothing
    returning id`
  if (created) return created.id
  const [existing] = await tx<{ id: string }[]>`
    select id from conversations.conversations where lead_id = ${c.leadId} and phone_number_id = ${c.phoneId}`
  return existing!.id
}

/** Queues one event; the same dedupe key (the message, the timer, the release request) is queued once, ever. */
export const insertEvent = (
  tx: Tx,
  e: { tenantId: string; conversationId: string; kind: 'message' | 'timer' | 'release'; dedupeKey: string; messageId: string | null; payload: unknown; occurredAt: Date | string },
) =>
  tx<{ id: string }[]>`
    insert into conversations.events (tenant_id, conversation_id, kind, dedupe_key, message_id, payload, occurred_at)
    values (${e.tenantId}, ${e.conversationId}, ${e.kind}, ${e.dedupeKey}, ${e.messageId}, ${tx.json(e.payload as never)}, ${e.occurredAt})
    on conflict (tenant_id, conversation_id, dedupe_key) do nothing
    returning id::text`.then((r) => r[0] ?? null)

/** The outbox for the bot: a conversation's jobs share its queue, so one runner at a time works on a lead. */
export const enqueueRunBot = (tx: Tx, tenantId: string, conversationId: string, task: string, runAt: Date | null = null) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::uuid, 'conversationId', ${conversationId}::uuid),
                                    queue_name := ${botQueueName(conversationId)}, run_at := ${runAt}::timestamptz, max_attempts := 10)`

/**
 * The bot's queues: one of BOT_QUEUES shared ones (`bot:N`), picked by the conversation id (hashedQueueName), not one
 * per conversation (`bot:<id>` before), whose rows piled up, one per conversation ever, each slowing every job fetch.
 * The queue only keeps a conversation's runs one after another (its row lock already keeps them correct); a run is a
 * few short transactions, so a conversation that shares a busy queue waits milliseconds. 64 queues let 64 bot runs go at
 * once across the fleet (8 workers at the default WORKER_CONCURRENCY of 8), for a quarter of the rows that the 256
 * send queues add to every fetch.
 */
export const BOT_QUEUES = 64
export const botQueueName = (conversationId: string) => hashedQueueName('bot', conversationId, BOT_QUEUES)
/** botQueueName in SQL, for the inbound hook's set-based enqueue; queue-names.int.test.ts checks that the two agree. */
export const botQueueNameSql = (tx: Queryable, conversationId: postgres.Fragment) => hashedQueueNameSql(tx, 'bot', conversationId, BOT_QUEUES)

/** Empty queue rows of the one-queue-per-conversation bot (`bot:<conversation id>`), swept by whatsapp__gc_send_queues. */
export const LEGACY_BOT_QUEUE_PATTERN = `^bot:${UUID_PATTERN}$`
export const deleteLegacyBotQueues = (sql: Queryable, limit: number) => deleteEmptyQueues(sql, LEGACY_BOT_QUEUE_PATTERN, limit)

/**
 * Is a message from this sender stored in the WhatsApp inbox but not yet applied? Deliveries are processed by
 * concurrent jobs, so a lead's messages can reach the bot out of order; the bot waits for the ones in flight (they
 * are milliseconds away) and then applies everything in the lead's order. Bounded to the last minute, so a delivery
 * that keeps failing cannot hold a conversation back for long. Reads the platform inbox by containment only.
 */
export const hasInboundInFlight = (tx: Tx, waId: string) =>
  tx<{ inFlight: boolean }[]>`
    select exists (
      select 1 from whatsapp.webhook_deliveries d
       where d.status = 'received' and d.received_at > now() - interval '1 minute'
         and d.payload @> ${tx.json({ entry: [{ changes: [{ value: { messages: [{ from: waId }] } }] }] })}::jsonb
    ) as in_flight`.then((r) => r[0]!.inFlight)

export interface ConversationRow {
  id: string
  tenantId: string
  leadId: string
  phoneNumberId: string
  waId: string
  flowId: string | null
  flowVersion: number | null
  state: FlowState | null
  handedOverAt: Date | null
  handedOverBy: string | null
  handoverNote: string | null
  inboundCount: number
}

/**
 * The conversation's row lock serializes everything that advances it, whichever process runs it. `no key update`,
 * not `update`: inbound processing inserts events that reference this row (a key-share lock) while it holds the
 * lead's row, which the bot may be waiting for; a full `for update` here would deadlock with it.
 */
export const lockConversation = (tx: Tx, id: string) =>
  tx<ConversationRow[]>`
    select id, tenant_id, lead_id, phone_number_id, wa_id, flow_id, flow_version, state, handed_over_at, handed_over_by, handover_note, inbound_count
      from conversations.conversations where id = ${id}
       for no key update`.then((r) => r[0] ?? null)

export interface PendingEvent {
  id: string
  kind: 'message' | 'timer' | 'release'
  messageId: string | null
  payload: Record<string, unknown>
  occurredAt: Date
  attempts: number
}

export const nextPendingEvent = (tx: Tx, conversationId: string) =>
  tx<PendingEvent[]>`
    select id::text, kind, message_id, payload, occurred_at, attempts from conversations.events
     where conversation_id = ${conversationId} and status = 'pending'
     order by occurred_at, id limit 1`.then((r) => r[0] ?? null)

export const markEventApplied = (tx: Tx, id: string, outcome: string, actions: unknown) =>
  tx`
    update conversations.events set status = 'applied', outcome = ${outcome}, actions = ${tx.json(actions as never)}, applied_at = clock_timestamp()
     where id = ${id} and status = 'pending'`

/** In its own transaction (the event's work rolled back): counts the attempt, and gives up on it at the limit. */
export const recordEventFailure = (tx: Tx, id: string, error: string, maxAttempts: number) =>
  tx<{ status: string }[]>`
    update conversations.events
       set attempts = attempts + 1, last_error = ${error},
           status = case when attempts + 1 >= ${maxAttempts} then 'failed' else status end,
           applied_at = case when attempts + 1 >= ${maxAttempts} then clock_timestamp() end
     where id = ${id} and status = 'pending'
    returning status`.then((r) => r[0]?.status ?? null)

export const saveConversation = (
  tx: Tx,
  id: string,
  c: { flowId: string | null; flowVersion: number | null; state: FlowState | null; handedOverAt: Date | null; handedOverBy: string | null; handoverNote: string | null; inboundCount: number },
) =>
  tx`
    update conversations.conversations
       set flow_id = ${c.flowId}, flow_version = ${c.flowVersion}, state = ${c.state ? tx.json(c.state as never) : null},
           handed_over_at = ${c.handedOverAt}, handed_over_by = ${c.handedOverBy}, handover_note = ${c.handoverNote},
           inbound_count = ${c.inboundCount}, last_event_at = clock_timestamp(), updated_at = now()
     where id = ${id}`

// ---------------------------------------------------------------------------------------------------------
// The lead, as the bot reads and changes it.

export interface LeadRow {
  id: string
  name: string | null
  profileName: string | null
  email: string | null
  phoneE164: string | null
  company: string | null
  tags: string[]
  status: string
  fields: Record<string, unknown>
  optedOutAt: Date | null
}

export const findLead = (tx: Tx, leadId: string) =>
  tx<LeadRow[]>`
    select id, name, profile_name, email, phone_e164, company, tags, status, fields, opted_out_at
      from marketing.leads where id = ${leadId}`.then((r) => r[0] ?? null)

// Its changes (fields, tags, status, opt-out) and interactions are marketing/leads' to write (service.ts there).

// ---------------------------------------------------------------------------------------------------------
// Flow timers: at most one pending per conversation (the job key), replaced when a new one is scheduled.

const timerKey = (conversationId: string) => `flow-timer:${conversationId}`

export const scheduleFlowTimer = (tx: Tx, task: string, p: { tenantId: string; conversationId: string; dueAt: string; kind: string }) =>
  tx`select graphile_worker.add_job(${task}, ${tx.json(p)}::json, run_at := ${p.dueAt}::timestamptz, job_key := ${timerKey(p.conversationId)}, max_attempts := 10)`

/** An optimisation only: a stale timer that fires anyway is ignored by the interpreter. */
export const cancelFlowTimer = (tx: Tx, conversationId: string) =>
  tx`select graphile_worker.remove_job(${timerKey(conversationId)})`

// ---------------------------------------------------------------------------------------------------------
// Flows and versions.

export interface PublishedFlow {
  flowId: string
  version: number
  document: unknown
  createdAt: Date
}

export const listPublishedFlows = (tx: Tx) =>
  tx<PublishedFlow[]>`
    select f.id as flow_id, v.version, v.document, f.created_at
      from conversations.flows f join conversations.flow_versions v on v.flow_id = f.id and v.version = f.published_version
     order by f.created_at, f.id`

export const findFlowVersionDocument = (tx: Tx, flowId: string, version: number) =>
  tx<{ document: unknown }[]>`
    select document from conversations.flow_versions where flow_id = ${flowId} and version = ${version}`.then((r) => r[0]?.document ?? null)

const flowColumns = (tx: Queryable) => tx`
  f.id, f.name, f.latest_version, f.published_version, f.published_at, f.created_at, f.updated_at,
  (select v.document -> 'trigger' from conversations.flow_versions v
    where v.flow_id = f.id and v.version = coalesce(f.published_version, f.latest_version)) as trigger`

export const insertFlow = (tx: Tx, f: { tenantId: string; name: string }) =>
  tx<{ id: string }[]>`insert into conversations.flows (tenant_id, name) values (${f.tenantId}, ${f.name}) returning id`.then((r) => r[0]!)

/** The next version number comes from the flow row, locked by the update: concurrent writers get 2 and 3, not 2 twice. */
export const insertFlowVersion = (tx: Tx, v: { tenantId: string; flowId: string; name: string; document: unknown; createdBy: string }) =>
  tx<{ version: number }[]>`
    with f as (
      update conversations.flows set latest_version = latest_version + 1, name = ${v.name}, updated_at = now()
       where id = ${v.flowId}
      returning id, latest_version
    )
    insert into conversations.flow_versions (tenant_id, flow_id, version, document, created_by)
    select ${v.tenantId}, f.id, f.latest_version, ${tx.json(v.document as never)}, ${v.createdBy} from f
    returning version`.then((r) => r[0] ?? null)

export const publishFlowVersion = (tx: Tx, flowId: string, version: number | null) =>
  tx`
    update conversations.flows
       set published_version = ${version}, published_at = case when ${version}::int is null then null else now() end, updated_at = now()
     where id = ${flowId}`.then((r) => r.count > 0)

export const listFlows = (tx: Tx) => tx<FlowView[]>`select ${flowColumns(tx)} from conversations.flows f order by f.created_at, f.id`

export const getFlow = (tx: Tx, flowId: string) =>
  tx<FlowView[]>`select ${flowColumns(tx)} from conversations.flows f where f.id = ${flowId}`.then((r) => r[0] ?? null)

export const getFlowVersion = (tx: Tx, flowId: string, version: number) =>
  tx<FlowVersionView[]>`
    select v.flow_id, v.version, v.document, (f.published_version = v.version) is true as published, v.created_by, v.created_at
      from conversations.flow_versions v join conversations.flows f on f.id = v.flow_id
     where v.flow_id = ${flowId} and v.version = ${version}`.then((r) => r[0] ?? null)

export const listFlowVersions = (tx: Tx, flowId: string) =>
  tx<FlowVersionView[]>`
    select v.flow_id, v.version, v.document, (f.published_version = v.version) is true as published, v.created_by, v.created_at
      from conversations.flow_versions v join conversations.flows f on f.id = v.flow_id
     where v.flow_id = ${flowId} order by v.version desc`

// ---------------------------------------------------------------------------------------------------------
// Conversations, for the API.

const conversationColumns = (tx: Queryable) => tx`
  c.id, c.lead_id, c.phone_number_id, c.wa_id, c.flow_id, c.flow_version, c.state,
  case when c.handed_over_at is null then 'bot' else 'handed_over' end as mode,
  c.handed_over_at, c.handed_over_by, c.handover_note, c.inbound_count, c.last_event_at, c.created_at, c.updated_at,
  json_build_object('name', l.name, 'profileName', l.profile_name, 'email', l.email, 'status', l.status, 'tags', l.tags,
                    'fields', l.fields, 'optedOutAt', l.opted_out_at) as lead`

type ConversationRowView = Omit<ConversationView, 'lead'> & { lead: Omit<ConversationView['lead'], 'optedOutAt'> & { optedOutAt: string | null } }
const toView = (r: ConversationRowView): ConversationView => ({ ...r, lead: { ...r.lead, optedOutAt: r.lead.optedOutAt ? new Date(r.lead.optedOutAt) : null } })

export const listConversations = (tx: Tx, filter: { leadId?: string; mode?: 'bot' | 'handed_over' }, limit: number, before: { updatedAt: string; id: string } | null) =>
  tx<ConversationRowView[]>`
    select ${conversationColumns(tx)}
      from conversations.conversations c join marketing.leads l on l.id = c.lead_id
     where true
       ${filter.leadId ? tx`and c.lead_id = ${filter.leadId}` : tx``}
       ${filter.mode === 'bot' ? tx`and c.handed_over_at is null` : filter.mode === 'handed_over' ? tx`and c.handed_over_at is not null` : tx``}
       ${before ? tx`and (c.updated_at, c.id) < (${before.updatedAt}::timestamptz, ${before.id}::uuid)` : tx``}
     order by c.updated_at desc, c.id desc
     limit ${limit}`.then((rows) => rows.map(toView))

export const getConversation = (tx: Tx, id: string) =>
  tx<ConversationRowView[]>`
    select ${conversationColumns(tx)}
      from conversations.conversations c join marketing.leads l on l.id = c.lead_id
     where c.id = ${id}`.then((r) => (r[0] ? toView(r[0]) : null))

export const listConversationEvents = (tx: Tx, conversationId: string, limit: number) =>
  tx`
    select id::text, kind, message_id, payload, occurred_at, status, outcome, actions, applied_at
      from conversations.events where conversation_id = ${conversationId}
     order by occurred_at desc, id desc limit ${limit}`

/** A person takes the lead: immediate, so the bot says nothing more from the next event on. */
/** Null when there is no such conversation; `fresh` when it was not handed over before (this is the handover). */
export const markHandedOver = (tx: Tx, id: string, by: string, note: string | null) =>
  tx<{ leadId: string; flowId: string | null; handedOverAt: Date; fresh: boolean }[]>`
    update conversations.conversations c
       set handed_over_at = coalesce(c.handed_over_at, now()), handed_over_by = ${by}, handover_note = coalesce(${note}, c.handover_note), updated_at = now()
      from (select id, handed_over_at is null as fresh from conversations.conversations where id = ${id} for update) o
     where c.id = o.id
    returning c.lead_id, coalesce(c.state ->> 'flowId', c.flow_id::text) as flow_id, c.handed_over_at, o.fresh`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------
// Lead merges: the catalog's 'adoptConversations' rule (domains/marketing/leads/lead-references.ts), called by
// mergeLeadInto after the survivor has absorbed the merged lead (so the survivor's wa_id is final).

/**
 * The survivor takes the merged lead's bot conversations, one business number at a time:
 * - only the merged lead has one on the number: it moves to the survivor as it is (same id, same run at the same
 *   node, same event queue and timer) and talks to the survivor's WhatsApp number from now on;
 * - both have one: the survivor's continues. The survivor keeps its own WhatsApp number in a merge, so its
 *   conversation is the one talking to the number the person reaches the survivor from; continuing the other would
 *   answer a number that no longer identifies this lead. The merged lead's conversation is ended where it stands:
 *   run ended, timer cancelled, pending events set aside (never applied on a merged lead), handover cleared. It stays
 *   on the merged lead with its history.
 * Returns how many conversations moved and how many were ended.
 */
export const adoptMergedLeadConversations = (tx: Tx, survivorId: string, mergedId: string) =>
  tx<{ moved: number; ended: number }[]>`
    with clash as (
      select m.id from conversations.conversations m
       where m.lead_id = ${mergedId}
         and exists (select 1 from conversations.conversations s where s.lead_id = ${survivorId} and s.phone_number_id = m.phone_number_id)
    ), moved as (
      update conversations.conversations c
         set lead_id = ${survivorId},
             wa_id = coalesce((select l.wa_id from marketing.leads l where l.id = ${survivorId}), c.wa_id),
             updated_at = now()
       where c.lead_id = ${mergedId} and c.id not in (select id from clash)
      returning c.id
    ), ended as (
      update conversations.conversations c
         set state = case when c.state is null then null
                          else (c.state - 'timerDueAt' - 'timerKind') || '{"status": "ended", "currentNodeId": null, "attempts": 0}'::jsonb end,
             handed_over_at = null, handed_over_by = null, handover_note = null, updated_at = now()
        from clash
       where c.id = clash.id
      returning c.id
    ), set_aside as (
      update conversations.events e
         set status = 'applied', outcome = 'ignored: the conversation was ended by a lead merge', applied_at = clock_timestamp()
        from ended
       where e.conversation_id = ended.id and e.status = 'pending'
    ), timers as (
      select graphile_worker.remove_job(${timerKey('')} || ended.id::text) from ended
    )
    select (select count(*)::int from moved) as moved, (select count(*)::int from ended) as ended,
           (select count(*)::int from timers) as timers_checked`.then((r) => r[0]!)
