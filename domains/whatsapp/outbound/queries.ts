import { pseudonym } from '../../../lib/crypto.js'
import { whatsappMessageSentFrom } from '../../analytics/platform-events.js'
import { attachPendingExposureWamidFrom } from '../../experiments/service.js'
import type { Queryable, Tx } from '../../../lib/db.js'
import { deleteEmptyQueues } from '../../../lib/job-queue.js'
import type { SendMessageBody as GraphBody } from '../graph/bodies.js'
import type { OutboundMessageView, TemplateView } from './schemas.js'

// ---------------------------------------------------------------------------------------------------------
// Queueing.

export interface LeadTarget {
  id: string
  waId: string | null
  phoneE164: string | null
  optedOutAt: Date | null
}

export const findLeadTarget = (tx: Tx, leadId: string) =>
  tx<LeadTarget[]>`
    select id, wa_id, phone_e164, opted_out_at from marketing.leads where id = ${leadId} and merged_into is null`.then((r) => r[0] ?? null)

export interface SenderNumber {
  id: string
  phoneNumberId: string
  businessAccountId: string
  status: string
  tokenInvalidAt: Date | null
}

/** The number given, or else the one this recipient last wrote to, or else the tenant's only active number. */
export async function pickSenderNumber(tx: Tx, waId: string, phoneNumberId: string | undefined): Promise<SenderNumber | 'ambiguous' | null> {
  if (phoneNumberId) {
    return tx<SenderNumber[]>`
      select id, phone_number_id, business_account_id, status, token_invalid_at from whatsapp.phone_numbers where id = ${phoneNumberId}`.then((r) => r[0] ?? null)
  }
  const [last] = await tx<SenderNumber[]>`
    select p.id, p.phone_number_id, p.business_account_id, p.status, p.token_invalid_at
      from whatsapp.service_windows w join whatsapp.phone_numbers p on p.id = w.phone_number_id
     where w.wa_id = ${waId}
     order by w.last_inbound_at desc limit 1`
  if (last) return last
  const numbers = await tx<SenderNumber[]>`
    select id, phone_number_id, business_account_id, status, token_invalid_at from whatsapp.phone_numbers where status = 'active' limit 2`
  if (numbers.length > 1) return 'ambiguous'
  return numbers[0] ?? null
}

export const findServiceWindow = (tx: Queryable, phoneId: string, waId: string) =>
  tx<{ lastInboundAt: Date }[]>`
    select last_inbound_at from whatsapp.service_windows where phone_number_id = ${phoneId} and wa_id = ${waId}`.then((r) => r[0]?.lastInboundAt ?? null)

/** The current tenant's number by Meta's phone number id (a platform number configured by that id). */
export const findNumberByMetaId = (tx: Tx, metaPhoneNumberId: string) =>
  tx<SenderNumber[]>`
    select id, phone_number_id, business_account_id, status, token_invalid_at from whatsapp.phone_numbers
     where phone_number_id = ${metaPhoneNumberId}`.then((r) => r[0] ?? null)

/** A lead of the current tenant with this wa_id who opted out (e.g. an onboarding business that answered STOP). */
export const findOptedOutWaId = (tx: Tx, waId: string) =>
  tx<{ optedOutAt: Date }[]>`
    select opted_out_at from marketing.leads where wa_id = ${waId} and merged_into is null and opted_out_at is not null limit 1`.then((r) => r[0]?.optedOutAt ?? null)

/** When this template last went (or is going) to this recipient from this number; failed and cancelled sends do not count. */
export const lastTemplateSendTo = (tx: Tx, phoneId: string, waId: string, templateId: string) =>
  tx<{ at: Date | null }[]>`
    select max(created_at) as at from whatsapp.outbound_sends
     where phone_number_id = ${phoneId} and wa_id = ${waId} and template_id = ${templateId} and state not in ('failed', 'cancelled')`.then((r) => r[0]?.at ?? null)

export interface StoredTemplate {
  id: string
  name: string
  language: string
  category: string | null
  status: string
  components: unknown
}

export const findTemplate = (tx: Tx, businessAccountId: string, name: string, language: string) =>
  tx<StoredTemplate[]>`
    select id, name, language, category, status, components from whatsapp.templates
     where business_account_id = ${businessAccountId} and name = ${name} and language = ${language}`.then((r) => r[0] ?? null)

export const findMessageWamid = (tx: Tx, messageId: string) =>
  tx<{ wamid: string | null }[]>`select wamid from whatsapp.messages where id = ${messageId}`.then((r) => r[0] ?? null)

export interface NewOutbound {
  tenantId: string
  phoneId: string
  leadId: string | null
  waId: string
  kind: 'text' | 'template' | 'interactive'
  /** The message part of the body (`text`, `template` or `interactive` object), stored as the message content. */
  content: unknown
  context: { message_id: string } | null
  body: GraphBody
  templateId: string | null
  source: 'api' | 'bot' | 'broadcast'
  requestedBy: string
}

/**
 * The message row (status pending, no wamid yet) and its outbox row, in one statement. The idempotency key is the
 * message id: one key per outbound message, whatever happens to the jobs.
 */
export const insertOutbound = (tx: Tx, m: NewOutbound) =>
  tx<{ id: string; seq: string }[]>`
    with msg as (
      insert into whatsapp.messages (tenant_id, phone_number_id, lead_id, direction, wa_id, type, content, context, status, occurred_at)
      values (${m.tenantId}, ${m.phoneId}, ${m.leadId}, 'outbound', ${m.waId}, ${m.kind}, ${tx.json(m.content as never)},
              ${m.context ? tx.json(m.context) : null}, 'pending', clock_timestamp())
      returning id
    )
    insert into whatsapp.outbound_sends (message_id, tenant_id, phone_number_id, wa_id, kind, body, template_id, source, requested_by, idempotency_key)
    select msg.id, ${m.tenantId}, ${m.phoneId}, ${m.waId}, ${m.kind}, ${tx.json(m.body as never)}, ${m.templateId}, ${m.source}, ${m.requestedBy},
           'wa-out:' || msg.id::text
      from msg
    returning message_id as id, seq::text`.then((r) => r[0]!)

/**
 * The outbox: the send job commits with the message. Sends to one recipient share a graphile-worker queue, so they
 * run one at a time, in order.
 */
export const enqueueSend = (tx: Tx, tenantId: string, messageId: string, phoneId: string, waId: string, task: string, runAt: Date | null = null) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::uuid, 'messageId', ${messageId}::uuid),
                                    queue_name := ${sendQueueName(phoneId, waId)}, run_at := ${runAt}::timestamptz, max_attempts := 25,
                                    job_key := ${sendJobKey(phoneId, waId)},
                                    job_key_mode := ${runAt ? 'replace' : 'preserve_run_at'})`

/**
 * One job (key) per (number, recipient): the job sends that recipient's outbox in order; a job waiting for a retry
 * keeps its time when a new message arrives (preserve_run_at), since nothing newer may overtake the message it waits
 * for. graphile-worker logs and shows job keys and queue names, so the recipient is a keyed pseudonym (lib/crypto.ts),
 * never the number: the same recipient still gives the same key in every process.
 */
export const sendJobKey = (phoneId: string, waId: string) => `wa-send:${phoneId}:${pseudonym('wa-send', waId)}`

/**
 * The queue keeps a recipient's job from running beside another of the same recipient. Queues are one of
 * SEND_QUEUES, picked by the (number, recipient) pair, not one per recipient: graphile-worker keeps a queue's row
 * after its last job (until a cleanup) and every job fetch locks all idle queues' rows, so one queue per person ever
 * messaged made each fetch slower (a 10,000-recipient broadcast fell from 78/s to 56/s). A shared queue only makes a
 * few other recipients wait while one job of theirs runs (each run holds it for about a second at most).
 */
export const SEND_QUEUES = 256
export const sendQueueName = (phoneId: string, waId: string) =>
  `wa-send:${Buffer.from(pseudonym('wa-send-queue', `${phoneId}:${waId}`), 'base64url').readUInt16BE(0) % SEND_QUEUES}`

/**
 * Queue rows of the one-queue-per-recipient sender (`wa-send:<number>:<recipient pseudonym>`, before the 256 shared
 * queues), deleted in batches once empty (deleteEmptyQueues: why only these names, and why not graphile's cleanup).
 */
export const LEGACY_SEND_QUEUE_PATTERN = '^wa-send:[^:]+:[^:]+$'
export const deleteLegacySendQueues = (sql: Queryable, limit: number) => deleteEmptyQueues(sql, LEGACY_SEND_QUEUE_PATTERN, limit)

/**
 * The sweep of legacy queues (send, bot, broadcast) once after a worker starts, `delaySeconds` later: by then a rolling
 * deploy has replaced the processes that may still enqueue under the old names. One job for every worker that starts meanwhile
 * (the key, and preserve_run_at so a later start does not push it back).
 */
export const scheduleLegacySendQueueSweep = (sql: Queryable, task: string, delaySeconds: number) =>
  sql`select graphile_worker.add_job(${task}, '{}'::json, run_at := now() + make_interval(secs => ${delaySeconds}),
                                     job_key := 'whatsapp-gc-send-queues-after-start', job_key_mode := 'preserve_run_at', max_attempts := 5)`

// ---------------------------------------------------------------------------------------------------------
// Sending.

export interface OpenSend {
  messageId: string
  phoneId: string
  waId: string
  kind: string
  body: GraphBody
  idempotencyKey: string
  state: 'queued' | 'sending' | 'in_doubt'
  attempts: number
  nextAttemptAt: Date | null
  callStartedAt: Date | null
  /** Committed just before the current attempt's Graph call; null while the claim has not called (or never will). */
  callBeganAt: Date | null
}

const openSendColumns = (tx: Queryable) => tx`
  message_id, phone_number_id as phone_id, wa_id, kind, body, idempotency_key, state, attempts, next_attempt_at, call_started_at, call_began_at`

export const findSendPair = (tx: Tx, messageId: string) =>
  tx<{ phoneId: string; waId: string; state: string }[]>`
    select phone_number_id as phone_id, wa_id, state from whatsapp.outbound_sends where message_id = ${messageId}`.then((r) => r[0] ?? null)

/** The oldest unfinished send to this recipient, locked: nothing newer may go out before it. */
export const lockHeadSend = (tx: Tx, phoneId: string, waId: string) =>
  tx<OpenSend[]>`
    select ${openSendColumns(tx)} from whatsapp.outbound_sends
     where phone_number_id = ${phoneId} and wa_id = ${waId} and state not in ('accepted', 'failed', 'cancelled')
     order by seq limit 1
     for update`.then((r) => r[0] ?? null)

export interface SenderCredentials {
  phoneNumberId: string
  status: string
  accessTokenSealed: string
  tokenInvalidAt: Date | null
}

export const findSenderCredentials = (tx: Tx, phoneId: string) =>
  tx<SenderCredentials[]>`
    select phone_number_id, status, access_token_sealed, token_invalid_at from whatsapp.phone_numbers where id = ${phoneId}`.then((r) => r[0] ?? null)

/** Committed before the call: from here until an answer is stored, the send may have reached Meta. */
export const markCallStarted = (tx: Tx, messageId: string) =>
  tx`
    update whatsapp.outbound_sends
       set state = 'sending', attempts = attempts + 1, call_started_at = clock_timestamp(), call_began_at = null, next_attempt_at = null, updated_at = now()
     where message_id = ${messageId}`

/**
 * The claim's call begins now: committed before the Graph call, and only while the claim (`attempt`, the attempts
 * count it set) is still the sender's own. False: another runner claimed the send again (this one's runner was taken
 * for dead) or it was settled meanwhile, and this runner must not call.
 */
export const markCallBegun = (tx: Tx, messageId: string, attempt: number) =>
  tx`
    update whatsapp.outbound_sends set call_began_at = clock_timestamp(), updated_at = now()
     where ${stillClaimed(tx, messageId, attempt)}
    returning 1`.then((r) => r.length === 1)

/** The send is still the claim that counted `attempt` (markCallStarted): the fence of everything its runner writes after the claim. */
const stillClaimed = (tx: Queryable, messageId: string, attempt: number) =>
  tx`message_id = ${messageId} and state = 'sending' and attempts = ${attempt}`

/**
 * Meta took the message: the send is accepted, the message gets its wamid and its whatsapp.message_sent event
 * (analytics, once per wamid), and a pending experiment exposure of the message is keyed by the wamid, in one statement. Only a message that had no wamid yet counts as sent now.
 */
export const markAccepted = (tx: Tx, messageId: string, wamid: string) =>
  tx`
    with s as (
      update whatsapp.outbound_sends set state = 'accepted', accepted_at = clock_timestamp(), last_error = null, updated_at = now()
       where message_id = ${messageId}
      returning message_id, accepted_at, template_id, source
    ), m as (
      update whatsapp.messages m set wamid = ${wamid}
        from s where m.id = s.message_id and m.wamid is null
      returning m.id, m.lead_id, s.accepted_at, s.template_id, s.source
    ), ${whatsappMessageSentFrom(tx, tx`
        select m.id as message_id, ${wamid}::text as wamid, m.lead_id, m.accepted_at as occurred_at, t.name as template_name, m.source
          from m left join whatsapp.templates t on t.id = m.template_id`)},
    ${attachPendingExposureWamidFrom(tx, tx`select m.id as message_id, ${wamid}::text as wamid from m`)}
    select count(*) from m`

export const markFailed = (tx: Tx, messageId: string, failure: { reason: string; code: number | null; title: string; error: unknown }) =>
  tx`
    with s as (
      update whatsapp.outbound_sends
         set state = 'failed', failed_at = clock_timestamp(), failure_reason = ${failure.reason}, last_error = ${tx.json(failure.error as never)},
             updated_at = now()
       where message_id = ${messageId}
      returning message_id
    ), exposure as (
      -- A template send naming an experiment that Meta refused (or we gave up on) will never be delivered: its
      -- pending exposure is over, not an exposure (a later delivered status would still count, as for Meta's failed).
      update experiments.pending_exposures p set state = 'failed', resolved_at = clock_timestamp()
        from s where p.message_id = s.message_id and p.state = 'pending'
    )
    update whatsapp.messages m
       set status = 'failed', status_rank = whatsapp.status_rank('failed'), status_at = clock_timestamp(), failed_at = clock_timestamp(),
           error_code = ${failure.code}, error_title = ${failure.title},
           errors = ${tx.json([{ code: failure.code, title: failure.title, message: failure.reason }] as never)}
      from s where m.id = s.message_id and m.status_rank <= whatsapp.status_rank('failed')`

/** A transient failure with an answer: the call is over, so the next attempt may call again after the pause. */
export const markRetry = (tx: Tx, messageId: string, retryAt: Date, error: unknown) =>
  tx`
    update whatsapp.outbound_sends
       set state = 'queued', next_attempt_at = ${retryAt}, last_error = ${tx.json(error as never)}, updated_at = now()
     where message_id = ${messageId}`

/** A call that ended without an answer (timeout, connection lost): Meta may or may not have the message. */
export const markInDoubt = (tx: Tx, messageId: string, retryAt: Date, error: unknown) =>
  tx`
    update whatsapp.outbound_sends
       set state = 'in_doubt', next_attempt_at = ${retryAt}, last_error = ${tx.json(error as never)}, updated_at = now()
     where message_id = ${messageId}`

/**
 * Takes these messages out of the outbox if no sender has claimed them yet (`queued`, also one waiting for a retry
 * after an answered error: Meta refused that attempt, so it never had the message). The send becomes `cancelled`,
 * the message `cancelled` (no wamid, never sent); returns the ids cancelled. A send claimed (`sending`) or in doubt
 * is left to finish. Race-safe against the sender: it claims under the head row's lock (lockHeadSend ... for
 * update, then markCallStarted in the same transaction), and this update locks the same rows, so whichever commits
 * first wins and the other re-reads the row: a claimed send no longer matches `state = 'queued'` here, and a
 * cancelled head no longer matches lockHeadSend's open states, which then locks the next one.
 */
export const cancelQueuedSends = (tx: Tx, messageIds: string[], reason: string) =>
  messageIds.length === 0
    ? Promise.resolve([] as string[])
    : tx<{ messageId: string }[]>`
        with c as (
          update whatsapp.outbound_sends
             set state = 'cancelled', failure_reason = ${reason}, next_attempt_at = null, updated_at = now()
           where message_id = any(${messageIds}::uuid[]) and state = 'queued'
          returning message_id
        ), m as (
          update whatsapp.messages m set status = 'cancelled', status_at = clock_timestamp()
            from c where m.id = c.message_id and m.wamid is null
        )
        select message_id from c`.then((r) => r.map((x) => x.messageId))

export const deferSend = (tx: Tx, messageId: string, until: Date) =>
  tx`update whatsapp.outbound_sends set next_attempt_at = ${until}, updated_at = now() where message_id = ${messageId}`

export const flagTokenInvalid = (tx: Tx, phoneId: string) =>
  tx`update whatsapp.phone_numbers set token_invalid_at = coalesce(token_invalid_at, now()), updated_at = now() where id = ${phoneId}`

/**
 * Did Meta accept a send whose answer we never stored? Meta echoes `biz_opaque_callback_data` in the status webhooks
 * of the message, so a status carrying our key is proof, with the wamid. Applied statuses keep the key (indexed);
 * statuses still waiting in the inbox are searched too, but only among deliveries not yet processed (a partial
 * index keeps that set small), never the whole retained inbox.
 */
export const findSendEvidence = (sql: Queryable, idempotencyKey: string, since: Date) =>
  sql<{ wamid: string }[]>`
    (select s.wamid from whatsapp.message_statuses s where s.biz_opaque_callback_data = ${idempotencyKey} limit 1)
    union all
    (select j ->> 'id'
       from whatsapp.webhook_deliveries d,
            jsonb_path_query(d.payload, '$.entry[*].changes[*].value.statuses[*] ? (@.biz_opaque_callback_data == $key)',
                             jsonb_build_object('key', ${idempotencyKey}::text)) as j
      where d.status <> 'processed' and d.received_at >= ${since} and j ->> 'id' is not null
      limit 1)
    limit 1`.then((r) => r[0]?.wamid ?? null)

// ---------------------------------------------------------------------------------------------------------
// Shared rate limits (GCRA, as reservations): each call takes the next slot for `key` and says how long to wait for
// it. `intervalMs` is 1/rate; `burst` sends may go back to back. A slot further away than `maxWaitMs` is not taken
// (null): the caller should come back later rather than hold a worker.

export const reserveSendSlot = (sql: Queryable, tenantId: string, key: string, intervalMs: number, burst: number, maxWaitMs: number, options: { lazyCommit?: boolean } = {}) =>
  sql<{ waitMs: number }[]>`
    ${options.lazyCommit ? sql`with quick as materialized (select set_config('synchronous_commit', 'off', true) as v)` : sql``}
    insert into whatsapp.send_rate_limits as r (tenant_id, key, tat)
    select ${tenantId}, ${key}, clock_timestamp() + ${intervalMs} * interval '1 millisecond' ${options.lazyCommit ? sql`from quick` : sql``}
    on conflict (tenant_id, key) do update
       set tat = greatest(r.tat, clock_timestamp()) + ${intervalMs} * interval '1 millisecond'
     where greatest(r.tat, clock_timestamp()) - ${(burst - 1) * intervalMs} * interval '1 millisecond'
           <= clock_timestamp() + ${maxWaitMs} * interval '1 millisecond'
    returning greatest(0, extract(epoch from (r.tat - ${burst * intervalMs} * interval '1 millisecond' - clock_timestamp())) * 1000)::float8 as wait_ms`
    .then((r) => (r[0] ? r[0].waitMs : null))

/**
 * reserveSendSlot as the whole of its transaction, committed without waiting for the disk (synchronous_commit off,
 * set by the statement itself): for the number's slot, one row every send of the number updates. Its row lock is held
 * until commit, so inside the send's claim it was held across two more round trips and a disk flush, and the sends
 * queued up behind it (16-22/s against a limit of 78/s on a loaded machine). A reservation lost to a database crash
 * only lets the first sends after the restart go a few milliseconds early.
 */
export const reserveSendSlotQuickly = (sql: Queryable, tenantId: string, key: string, intervalMs: number, burst: number, maxWaitMs: number) =>
  reserveSendSlot(sql, tenantId, key, intervalMs, burst, maxWaitMs, { lazyCommit: true })

/**
 * A claim given back (the number had no slot soon enough): the send is as it was before markCallStarted, waiting
 * until `until`. Only while it is still this claim (`sending`, with the attempt it counted).
 */
export const releaseClaim = (tx: Tx, head: OpenSend, until: Date) =>
  tx`
    update whatsapp.outbound_sends
       set state = ${head.state}, attempts = ${head.attempts}, call_started_at = ${head.callStartedAt}, call_began_at = ${head.callBeganAt},
           next_attempt_at = ${until}, updated_at = now()
     where ${stillClaimed(tx, head.messageId, head.attempts + 1)}`

/** Pair limits leave a row per recipient; those idle for an hour carry no information any more. */
export const pruneSendSlots = (sql: Queryable) =>
  sql`delete from whatsapp.send_rate_limits where tat < now() - interval '1 hour' and key like 'pair:%'`

// ---------------------------------------------------------------------------------------------------------
// Reading, for the API.

const outboundColumns = (tx: Queryable) => tx`
  m.id, m.lead_id, m.phone_number_id, m.wa_id, m.wamid, m.type, m.content, s.source, s.state as send_state, s.attempts,
  s.failure_reason, m.status, m.status_at, m.error_code, m.error_title, s.created_at`

export const listOutbound = (tx: Tx, filter: { leadId?: string; status?: string }, limit: number, before: { createdAt: string; id: string } | null) =>
  tx<OutboundMessageView[]>`
    select ${outboundColumns(tx)}
      from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id
     where true
       ${filter.leadId ? tx`and m.lead_id = ${filter.leadId}` : tx``}
       ${filter.status ? tx`and m.status = ${filter.status}` : tx``}
       ${before ? tx`and (s.created_at, m.id) < (${before.createdAt}::timestamptz, ${before.id}::uuid)` : tx``}
     order by s.created_at desc, m.id desc
     limit ${limit}`

export const getOutbound = (tx: Tx, messageId: string) =>
  tx<OutboundMessageView[]>`
    select ${outboundColumns(tx)},
           coalesce((select json_agg(json_build_object('status', h.status, 'occurredAt', h.occurred_at, 'errors', h.errors,
                                                       'pricing', h.pricing, 'conversation', h.conversation)
                                     order by whatsapp.status_rank(h.status), h.occurred_at)
                       from whatsapp.message_statuses h where h.wamid = m.wamid), '[]') as status_history
      from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id
     where m.id = ${messageId}`.then((r) => (r[0] ? { ...r[0], statusHistory: (r[0].statusHistory ?? []).map((h) => ({ ...h, occurredAt: new Date(h.occurredAt) })) } : null))

// ---------------------------------------------------------------------------------------------------------
// Templates.

const templateColumns = (tx: Queryable) => tx`
  t.id, b.waba_id, t.meta_template_id, t.name, t.language, t.category, t.previous_category, t.status, t.components,
  t.rejection_reason, t.quality_score, t.updated_at`

export const listTemplates = (tx: Tx) =>
  tx<TemplateView[]>`
    select ${templateColumns(tx)} from whatsapp.templates t join whatsapp.business_accounts b on b.id = t.business_account_id
     order by t.name, t.language, t.id`

export const getTemplate = (tx: Tx, id: string) =>
  tx<TemplateView[]>`
    select ${templateColumns(tx)} from whatsapp.templates t join whatsapp.business_accounts b on b.id = t.business_account_id
     where t.id = ${id}`.then((r) => r[0] ?? null)

export const businessAccountsOf = (tx: Tx, phoneId: string | undefined) =>
  tx<{ id: string }[]>`
    select distinct business_account_id as id from whatsapp.phone_numbers where ${phoneId ? tx`id = ${phoneId}` : tx`true`}`

export const insertDraftTemplate = (tx: Tx, t: { tenantId: string; businessAccountId: string; name: string; language: string; category: string; components: unknown }) =>
  tx<{ id: string }[]>`
    insert into whatsapp.templates (tenant_id, business_account_id, name, language, category, status, components)
    values (${t.tenantId}, ${t.businessAccountId}, ${t.name}, ${t.language}, ${t.category}, 'DRAFT', ${tx.json(t.components as never)})
    returning id`.then((r) => r[0]!)

export const findTemplateForSubmission = (tx: Tx, id: string) =>
  tx<{ id: string; wabaId: string; name: string; language: string; category: string; components: unknown; status: string; metaTemplateId: string | null; phoneId: string | null }[]>`
    select t.id, b.waba_id, t.name, t.language, t.category, t.components, t.status, t.meta_template_id,
           (select p.id from whatsapp.phone_numbers p where p.business_account_id = b.id and p.token_invalid_at is null
             order by p.status = 'active' desc, p.created_at limit 1) as phone_id
      from whatsapp.templates t join whatsapp.business_accounts b on b.id = t.business_account_id
     where t.id = ${id}`.then((r) => r[0] ?? null)

/** Meta's answer to a submission; a status webhook that already moved the template on is not overwritten. */
export const recordTemplateSubmitted = (tx: Tx, id: string, result: { metaTemplateId: string; status: string; category: string | null }) =>
  tx`
    update whatsapp.templates
       set meta_template_id = ${result.metaTemplateId}, category = coalesce(${result.category}, category),
           status = case when status = 'DRAFT' then ${result.status} else status end, updated_at = now()
     where id = ${id}`

export const recordTemplateRejected = (tx: Tx, id: string, reason: string) =>
  tx`update whatsapp.templates set status = 'REJECTED', rejection_reason = ${reason}, updated_at = now() where id = ${id} and status = 'DRAFT'`

export const enqueueTemplateSubmission = (tx: Tx, tenantId: string, templateId: string, task: string) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::uuid, 'templateId', ${templateId}::uuid),
                                    max_attempts := 10, job_key := ${`wa-template:${templateId}`})`

