import type { Queryable, Tx } from '../../../lib/db.js'
import { deleteEmptyQueues, hashedQueueName, UUID_PATTERN } from '../../../lib/job-queue.js'
import type { BroadcastStats, BroadcastStatus, LeadFilter, RecipientStatus, RecipientView } from './schemas.js'

// ---------------------------------------------------------------------------------------------------------
// Broadcasts.

export interface BroadcastRow {
  id: string
  tenantId: string
  name: string
  campaignId: string | null
  status: BroadcastStatus
  statusReason: string | null
  statusDetail: string | null
  phoneNumberId: string | null
  templateId: string | null
  templateName: string
  templateLanguage: string
  experimentId: string | null
  experimentKey: string | null
  audience: unknown
  parameters: unknown
  scheduledAt: Date | null
  scheduleTimezone: string | null
  failureThreshold: number
  failureMinSample: number
  recipientCount: number
  skippedCount: number
  dispatchedCount: number
  acceptedCount: number
  failedCount: number
  transitions: number
  version: number
  createdBy: string
  materialisedAt: Date | null
  startedAt: Date | null
  finishedAt: Date | null
  createdAt: Date
  updatedAt: Date
}

const columns = (tx: Queryable) => tx`
  id, tenant_id, name, campaign_id, status, status_reason, status_detail, phone_number_id, template_id, template_name, template_language,
  experiment_id, (select x.key from experiments.experiments x where x.id = experiment_id) as experiment_key,
  audience, parameters, scheduled_at, schedule_timezone, failure_threshold::float8 as failure_threshold, failure_min_sample,
  recipient_count, skipped_count, dispatched_count, accepted_count, failed_count, transitions, version, created_by,
  materialised_at, started_at, finished_at, created_at, updated_at`

export interface NewBroadcast {
  tenantId: string
  name: string
  campaignId: string | null
  phoneNumberId: string
  templateId: string
  templateName: string
  templateLanguage: string
  experimentId: string | null
  audience: unknown
  parameters: unknown
  failureThreshold: number
  failureMinSample: number
  createdBy: string
}

export const insertBroadcast = (tx: Tx, b: NewBroadcast) =>
  tx<BroadcastRow[]>`
    insert into campaigns.broadcasts (tenant_id, name, campaign_id, phone_number_id, template_id, template_name, template_language, experiment_id, audience, parameters,
                                      failure_threshold, failure_min_sample, created_by)
    values (${b.tenantId}, ${b.name}, ${b.campaignId}, ${b.phoneNumberId}, ${b.templateId}, ${b.templateName}, ${b.templateLanguage}, ${b.experimentId},
            ${tx.json(b.audience as never)}, ${tx.json(b.parameters as never)}, ${b.failureThreshold}, ${b.failureMinSample}, ${b.createdBy})
    returning ${columns(tx)}`.then((r) => r[0]!)

/** A draft's new content (every field given; the caller merged the change). Bumps the version. */
export const updateDraft = (tx: Tx, id: string, b: Omit<NewBroadcast, 'tenantId' | 'createdBy'>) =>
  tx<BroadcastRow[]>`
    update campaigns.broadcasts
       set name = ${b.name}, campaign_id = ${b.campaignId}, phone_number_id = ${b.phoneNumberId}, template_id = ${b.templateId},
           template_name = ${b.templateName}, template_language = ${b.templateLanguage}, experiment_id = ${b.experimentId}, audience = ${tx.json(b.audience as never)},
           parameters = ${tx.json(b.parameters as never)}, failure_threshold = ${b.failureThreshold}, failure_min_sample = ${b.failureMinSample},
           version = version + 1, updated_at = now()
     where id = ${id}
    returning ${columns(tx)}`.then((r) => r[0]!)

export const getBroadcast = (tx: Queryable, id: string) =>
  tx<BroadcastRow[]>`select ${columns(tx)} from campaigns.broadcasts where id = ${id}`.then((r) => r[0] ?? null)

/** The row, locked: every transition and every dispatch step holds it, so two of them never interleave. */
export const lockBroadcast = (tx: Tx, id: string) =>
  tx<BroadcastRow[]>`select ${columns(tx)} from campaigns.broadcasts where id = ${id} for update`.then((r) => r[0] ?? null)

export const listBroadcasts = (tx: Tx, filter: { status?: string; campaignId?: string }, limit: number, before: { at: string; id: string } | null) =>
  tx<BroadcastRow[]>`
    select ${columns(tx)} from campaigns.broadcasts
     where true
       ${filter.status ? tx`and status = ${filter.status}` : tx``}
       ${filter.campaignId ? tx`and campaign_id = ${filter.campaignId}` : tx``}
       ${before ? tx`and (created_at, id) < (${before.at}::timestamptz, ${before.id}::uuid)` : tx``}
     order by created_at desc, id desc
     limit ${limit}`

export interface StatusChange {
  status: BroadcastStatus
  reason?: string | null
  detail?: string | null
  scheduledAt?: Date | null
  scheduleTimezone?: string | null
  started?: boolean
  finished?: boolean
}

export const setStatus = (tx: Tx, id: string, c: StatusChange) =>
  tx<BroadcastRow[]>`
    update campaigns.broadcasts
       set status = ${c.status}, status_reason = ${c.reason ?? null}, status_detail = ${c.detail ?? null},
           scheduled_at = ${c.scheduledAt === undefined ? tx`scheduled_at` : tx`${c.scheduledAt}::timestamptz`},
           schedule_timezone = ${c.scheduleTimezone === undefined ? tx`schedule_timezone` : tx`${c.scheduleTimezone}::text`},
           started_at = ${c.started ? tx`coalesce(started_at, now())` : tx`started_at`},
           finished_at = ${c.finished ? tx`now()` : tx`finished_at`},
           transitions = transitions + 1, version = version + 1, updated_at = now()
     where id = ${id}
    returning ${columns(tx)}`.then((r) => r[0]!)

/** A note on a sending broadcast that does not change its state (waiting for the messaging limit, …). */
export const setStatusDetail = (tx: Tx, id: string, detail: string | null) =>
  tx`update campaigns.broadcasts set status_detail = ${detail}, updated_at = now() where id = ${id} and status_detail is distinct from ${detail}`

/** Unscheduling drops the snapshot: it is taken again, fresh, when the broadcast is scheduled or started. */
export const dropSnapshot = async (tx: Tx, id: string) => {
  await tx`delete from campaigns.broadcast_recipients where broadcast_id = ${id} and state in ('pending', 'skipped')`
  await tx`update campaigns.broadcasts set materialised_at = null, recipient_count = 0, skipped_count = 0 where id = ${id}`
}

export const deleteDraft = (tx: Tx, id: string) =>
  tx`delete from campaigns.broadcasts where id = ${id} and status = 'draft' returning id`.then((r) => r.length > 0)

/**
 * The dispatch job: one waiting per broadcast (the job key), and its queue so two runs never overlap. The key alone
 * does not do that: add_job with the key of a running (locked) job clears that job's key and inserts a new one
 * (graphile-worker's add_jobs), which, in no queue, would start beside it (a start or resume during a run, or the
 * run's own hand-over to the next).
 */
export const enqueueDispatch = (tx: Tx, tenantId: string, broadcastId: string, task: string, runAt: Date | null = null) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::uuid, 'broadcastId', ${broadcastId}::uuid),
                                    queue_name := ${broadcastQueueName(broadcastId)}, run_at := ${runAt}::timestamptz, max_attempts := 25,
                                    job_key := ${`broadcast:${broadcastId}`}, job_key_mode := 'replace')`

/**
 * The dispatchers' queues: one of BROADCAST_QUEUES shared ones (`broadcast:N`), picked by the broadcast id
 * (hashedQueueName), not one per broadcast (`broadcast:<id>` before), whose rows stayed after the broadcast and slowed
 * every job fetch. A run holds its queue for up to 10 s, so two sending broadcasts that share a queue take turns (each
 * about half its rate). Each sending broadcast holds a worker slot, so few send at once; with 256 queues a broadcast
 * shares with another of k sending with a chance of about (k − 1)/256 (3% at 8).
 */
export const BROADCAST_QUEUES = 256
export const broadcastQueueName = (broadcastId: string) => hashedQueueName('broadcast', broadcastId, BROADCAST_QUEUES)

/** Empty queue rows of the one-queue-per-broadcast dispatcher (`broadcast:<broadcast id>`), swept by whatsapp__gc_send_queues. */
export const LEGACY_BROADCAST_QUEUE_PATTERN = `^broadcast:${UUID_PATTERN}$`
export const deleteLegacyBroadcastQueues = (sql: Queryable, limit: number) => deleteEmptyQueues(sql, LEGACY_BROADCAST_QUEUE_PATTERN, limit)

export const removeDispatch = (tx: Tx, broadcastId: string) => tx`select graphile_worker.remove_job(${`broadcast:${broadcastId}`})`

/** The tenant's timezone, for schedules given as local times. */
export const tenantTimezone = (tx: Tx, tenantId: string) =>
  tx<{ timezone: string }[]>`select timezone from core.tenants where id = ${tenantId}`.then((r) => r[0]?.timezone ?? 'UTC')

/** A local date-time in a timezone, as an instant (PostgreSQL knows the zone rules, DST included). */
export const localToInstant = (tx: Tx, local: string, timezone: string) =>
  tx<{ at: Date }[]>`select (${local}::timestamp at time zone ${timezone}) as at`.then((r) => r[0]!.at)

export const campaignExists = (tx: Tx, id: string) =>
  tx`select 1 from campaigns.campaigns where id = ${id} and deleted_at is null`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------
// WhatsApp facts the broadcast reads (the whatsapp domain writes them).

export interface SendingNumber {
  id: string
  businessAccountId: string
  status: string
  tokenInvalidAt: Date | null
  messagingLimit: string | null
  throughputLevel: string | null
}

export const findNumber = (tx: Tx, id: string | undefined) =>
  tx<SendingNumber[]>`
    select id, business_account_id, status, token_invalid_at, messaging_limit, throughput_level from whatsapp.phone_numbers
     where ${id ? tx`id = ${id}` : tx`status = 'active'`} order by created_at limit 2`

export interface TemplateState {
  id: string
  name: string
  language: string
  category: string | null
  status: string
  qualityScore: string | null
  components: unknown
}

export const findTemplateById = (tx: Queryable, id: string) =>
  tx<TemplateState[]>`select id, name, language, category, status, quality_score, components from whatsapp.templates where id = ${id}`.then((r) => r[0] ?? null)

export const findTemplateByName = (tx: Tx, businessAccountId: string, name: string, language: string) =>
  tx<TemplateState[]>`
    select id, name, language, category, status, quality_score, components from whatsapp.templates
     where business_account_id = ${businessAccountId} and name = ${name} and language = ${language}`.then((r) => r[0] ?? null)

/**
 * Unique recipients of template messages from this number in the last 24 hours: what Meta's messaging limit counts.
 * Every template counts (a broadcast's or not), as soon as it is queued (a queued one is about to count); one taken
 * out of the outbox before it was sent (cancelled by a pause or stop) does not.
 */
export const templateRecipientsLast24h = (tx: Queryable, phoneId: string) =>
  tx<{ n: number; oldest: Date | null }[]>`
    select count(distinct wa_id)::int as n, min(occurred_at) as oldest from whatsapp.messages
     where phone_number_id = ${phoneId} and direction = 'outbound' and type = 'template' and occurred_at > now() - interval '24 hours'
       and status <> 'cancelled'`.then((r) => r[0]!)

// ---------------------------------------------------------------------------------------------------------
// The audience.

export interface AudienceLead {
  id: string
  waId: string | null
  phoneE164: string | null
  name: string | null
  profileName: string | null
  company: string | null
  email: string | null
  source: string | null
  status: string | null
  fields: Record<string, unknown> | null
  optedOutAt: Date | null
}

const dayOrInstant = (v: string) => (v.length === 10 ? `${v}T00:00:00Z` : v)

function filterWhere(tx: Tx, f: LeadFilter) {
  const tags = f.tags && f.tags.length > 0 ? (f.tagMatch === 'any' ? tx`and tags && ${f.tags}::text[]` : tx`and tags @> ${f.tags}::text[]`) : tx``
  return tx`
    ${tags}
    ${f.status ? tx`and status = any(${f.status}::text[])` : tx``}
    ${f.source ? tx`and source = any(${f.source}::text[])` : tx``}
    ${f.createdFrom ? tx`and created_at >= ${dayOrInstant(f.createdFrom)}::timestamptz` : tx``}
    ${f.createdTo ? tx`and created_at < ${dayOrInstant(f.createdTo)}::timestamptz` : tx``}
    ${f.fields ? tx`and fields @> ${tx.json(f.fields)}::jsonb` : tx``}`
}

/** One page of the audience, in a stable order (by id), after `afterId`. Merged leads are never targeted. */
export const audiencePage = (tx: Tx, audience: { filter: LeadFilter } | { leadIds: string[] }, afterId: string | null, limit: number) =>
  tx<AudienceLead[]>`
    select id, wa_id, phone_e164, name, profile_name, company, email, source, status, fields, opted_out_at
      from marketing.leads
     where merged_into is null
       ${'filter' in audience ? filterWhere(tx, audience.filter) : tx`and id = any(${audience.leadIds}::uuid[])`}
       ${afterId ? tx`and id > ${afterId}::uuid` : tx``}
     order by id
     limit ${limit}`

export const countAudience = (tx: Tx, filter: LeadFilter) =>
  tx<{ n: number }[]>`select count(*)::int as n from marketing.leads where merged_into is null ${filterWhere(tx, filter)}`.then((r) => r[0]!.n)

/** Leads by phone match key (marketing.leads.phone_key), for an uploaded list. */
export const leadsByPhoneKey = (tx: Tx, keys: string[]) =>
  tx<{ id: string; phoneKey: string }[]>`
    select id, phone_key from marketing.leads where phone_key = any(${keys}::text[]) and merged_into is null`

/** Of these ids, the leads that exist here (RLS: another tenant's ids are not found). Merged ones give their survivor. */
export const resolveLeadIds = (tx: Tx, ids: string[]) =>
  tx<{ id: string; resolved: string }[]>`
    select id, coalesce(merged_into, id) as resolved from marketing.leads where id = any(${ids}::uuid[])`

export interface NewRecipient {
  leadId: string
  waId: string | null
  state: 'pending' | 'skipped'
  skipReason: string | null
  skipDetail: string | null
  components: unknown
}

/** A batch of the snapshot, set-based. A person already in it (same wa_id or lead) conflicts and is left out. */
export const insertRecipients = (tx: Tx, tenantId: string, broadcastId: string, rows: NewRecipient[]) =>
  rows.length === 0
    ? Promise.resolve({ pending: 0, skipped: 0 })
    : tx<{ pending: number; skipped: number }[]>`
        with ins as (
          insert into campaigns.broadcast_recipients (tenant_id, broadcast_id, lead_id, wa_id, state, skip_reason, skip_detail, components)
          select ${tenantId}, ${broadcastId}, r.lead_id, r.wa_id, r.state, r.skip_reason, r.skip_detail, r.components
            from jsonb_to_recordset(${tx.json(rows.map((r) => ({ lead_id: r.leadId, wa_id: r.waId, state: r.state, skip_reason: r.skipReason, skip_detail: r.skipDetail, components: r.components })) as never)})
                 as r (lead_id uuid, wa_id text, state text, skip_reason text, skip_detail text, components jsonb)
          on conflict do nothing
          returning state
        )
        select count(*) filter (where state = 'pending')::int as pending, count(*) filter (where state = 'skipped')::int as skipped from ins`.then((r) => r[0]!)

export const recordMaterialised = (tx: Tx, id: string, counts: { recipients: number; skipped: number }) =>
  tx`
    update campaigns.broadcasts set recipient_count = ${counts.recipients}, skipped_count = ${counts.skipped}, materialised_at = now(), updated_at = now()
     where id = ${id}`

// ---------------------------------------------------------------------------------------------------------
// Dispatching.

export interface PendingRecipient {
  id: string
  leadId: string | null
  waId: string
  components: unknown
  /** The lead opted out after the snapshot was taken. */
  optedOutAt: Date | null
}

/** The next recipients to queue, in snapshot order, locked (skip locked: never two dispatchers on one row). */
export const nextPending = (tx: Tx, broadcastId: string, limit: number) =>
  tx<PendingRecipient[]>`
    select r.id::text, r.lead_id, r.wa_id, r.components, l.opted_out_at
      from campaigns.broadcast_recipients r left join marketing.leads l on l.id = r.lead_id
     where r.broadcast_id = ${broadcastId} and r.state = 'pending'
     order by r.id limit ${limit}
     for update of r skip locked`

/** Recipients now in the outbox, with their message: committed together with the message and its send job. */
export const markQueued = (tx: Tx, rows: { id: string; messageId: string; variationKey: string | null; phase: number | null }[]) =>
  rows.length === 0
    ? Promise.resolve()
    : tx`
        update campaigns.broadcast_recipients r
           set state = 'queued', message_id = v.message_id, queued_at = clock_timestamp(), variation_key = v.variation_key, experiment_phase = v.phase
          from jsonb_to_recordset(${tx.json(rows.map((r) => ({ id: Number(r.id), message_id: r.messageId, variation_key: r.variationKey, phase: r.phase })) as never)})
               as v (id bigint, message_id uuid, variation_key text, phase int)
         where r.id = v.id and r.state = 'pending'`.then(() => undefined)

/** A recipient refused at dispatch (suppressed since the snapshot, opted out since, a body Meta would refuse). */
export const markSkipped = (tx: Tx, id: string, reason: string, detail: string | null) =>
  tx`update campaigns.broadcast_recipients set state = 'skipped', skip_reason = ${reason}, skip_detail = ${detail} where id = ${id} and state = 'pending'`

/**
 * Queued recipients whose outbox send has settled (accepted or failed) become sent or failed, with Meta's code; the
 * broadcast's counters move by the same amounts, in the same statement. Running it twice changes nothing.
 */
export const settleQueued = (tx: Tx, broadcastId: string) =>
  tx<{ accepted: number; failed: number; inFlight: number }[]>`
    with settled as (
      update campaigns.broadcast_recipients r
         set state = case when s.state = 'accepted' then 'sent' else 'failed' end,
             error_code = case when s.state = 'failed' then m.error_code end, settled_at = coalesce(s.accepted_at, s.failed_at, clock_timestamp())
        from whatsapp.outbound_sends s, whatsapp.messages m
       where r.broadcast_id = ${broadcastId} and r.state = 'queued' and s.message_id = r.message_id and m.id = r.message_id
         and s.state in ('accepted', 'failed')
      returning r.state
    ), counts as (
      select count(*) filter (where state = 'sent')::int as accepted, count(*) filter (where state = 'failed')::int as failed from settled
    ), bumped as (
      update campaigns.broadcasts b set accepted_count = accepted_count + c.accepted, failed_count = failed_count + c.failed
        from counts c where b.id = ${broadcastId} and (c.accepted > 0 or c.failed > 0)
    )
    select c.accepted, c.failed,
           (select count(*)::int from campaigns.broadcast_recipients q where q.broadcast_id = ${broadcastId} and q.state = 'queued') - c.accepted - c.failed as in_flight
      from counts c`.then((r) => r[0]!)

/** The messages of recipients still `queued` (in the outbox, their send not settled in this table yet). */
export const queuedMessageIds = (tx: Tx, broadcastId: string) =>
  tx<{ messageId: string }[]>`
    select message_id from campaigns.broadcast_recipients
     where broadcast_id = ${broadcastId} and state = 'queued' and message_id is not null`.then((r) => r.map((x) => x.messageId))

/**
 * Recipients whose outbox message was cancelled before it was sent (a pause): back to pending, without the message,
 * so the next dispatch after resume queues them again; dispatched_count gives them back.
 */
export const requeueRecipients = (tx: Tx, broadcastId: string, messageIds: string[]) =>
  messageIds.length === 0
    ? Promise.resolve(0)
    : tx`
        with r as (
          update campaigns.broadcast_recipients set state = 'pending', message_id = null, queued_at = null
           where broadcast_id = ${broadcastId} and state = 'queued' and message_id = any(${messageIds}::uuid[])
          returning id
        ), n as (select count(*)::int as n from r)
        update campaigns.broadcasts b set dispatched_count = greatest(0, dispatched_count - n.n), updated_at = now()
          from n where b.id = ${broadcastId}
        returning n.n`.then((rows) => (rows[0] as { n: number } | undefined)?.n ?? 0)

/**
 * A final broadcast (stopped, failed): every recipient not sent becomes skipped with the reason: the pending ones
 * and those whose outbox message was cancelled before it was sent (`messageIds`). Returns how many.
 */
export const skipUnsent = (tx: Tx, broadcastId: string, messageIds: string[], reason: string, detail: string) =>
  tx<{ n: number }[]>`
    with r as (
      update campaigns.broadcast_recipients set state = 'skipped', skip_reason = ${reason}, skip_detail = ${detail}, settled_at = clock_timestamp()
       where broadcast_id = ${broadcastId}
         and (state = 'pending' or (state = 'queued' and message_id = any(${messageIds}::uuid[])))
      returning id
    )
    select count(*)::int as n from r`.then((r) => r[0]!.n)

/**
 * The broadcast's settled failures by Meta's code; null when the outbox refused the send itself, when Meta never
 * answered, or when the sender gave up retrying (its last code was a transient one, whatever it was).
 */
export const failureCodes = (tx: Tx, broadcastId: string) =>
  tx<{ code: number | null; n: number }[]>`
    select case when s.failure_reason like 'gave up after %' then null else r.error_code end as code, count(*)::int as n
      from campaigns.broadcast_recipients r left join whatsapp.outbound_sends s on s.message_id = r.message_id
     where r.broadcast_id = ${broadcastId} and r.state = 'failed'
     group by 1`

export const bumpDispatched = (tx: Tx, id: string, n: number) =>
  tx`update campaigns.broadcasts set dispatched_count = dispatched_count + ${n}, updated_at = now() where id = ${id}`

export const hasPending = (tx: Tx, broadcastId: string) =>
  tx`select 1 from campaigns.broadcast_recipients where broadcast_id = ${broadcastId} and state = 'pending' limit 1`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------
// Reading: per-recipient status and stats. Delivered and read come from the message (its status only moves forward,
// whatever order Meta's webhooks arrive in); replied is an inbound message from the lead after the broadcast's one.

const statusOf = (tx: Queryable) => tx`
  case
    when r.state in ('pending', 'skipped') then r.state
    when r.state = 'failed' or m.status = 'failed' then 'failed'
    -- The message is gone (erased with its lead): what the recipient row last knew.
    when m.id is null then case when r.state = 'queued' then 'queued' else 'sent' end
    -- Not accepted by Meta yet (the recipient row settles later; the message knows first).
    when m.wamid is null then 'queued'
    when exists (select 1 from whatsapp.messages i
                  where i.tenant_id = r.tenant_id and i.lead_id = r.lead_id and i.direction = 'inbound' and i.occurred_at > r.queued_at) then 'replied'
    when m.status in ('read', 'played') then 'read'
    when m.status = 'delivered' then 'delivered'
    else 'sent'
  end`

type VariationStats = NonNullable<BroadcastStats['variations']>[number]

/** The recipients by status (and skip or failure reason); with `byVariation`, the dispatched ones per variation sent too. */
export const broadcastStats = (tx: Tx, broadcastId: string, byVariation = false) =>
  tx<{ status: RecipientStatus; reason: string | null; variationKey: string | null; dispatched: boolean; n: number }[]>`
    with s as (
      select ${statusOf(tx)} as status,
             case when r.state = 'skipped' then r.skip_reason when r.state = 'failed' or m.status = 'failed' then coalesce(r.error_code, m.error_code)::text end as reason,
             r.variation_key, r.state not in ('pending', 'skipped') as dispatched
        from campaigns.broadcast_recipients r left join whatsapp.messages m on m.id = r.message_id
       where r.broadcast_id = ${broadcastId}
    )
    select status, reason, variation_key, dispatched, count(*)::int as n from s group by status, reason, variation_key, dispatched`.then((rows) => {
    const stats: BroadcastStats = { recipients: 0, pending: 0, queued: 0, sent: 0, delivered: 0, read: 0, replied: 0, failed: 0, skipped: 0, skippedBy: {}, failedBy: {} }
    const variations = new Map<string | null, VariationStats>()
    for (const r of rows) {
      stats.recipients += r.n
      stats[r.status] += r.n
      if (r.status === 'skipped') stats.skippedBy[r.reason ?? 'unknown'] = (stats.skippedBy[r.reason ?? 'unknown'] ?? 0) + r.n
      if (r.status === 'failed') stats.failedBy[r.reason ?? 'unknown'] = (stats.failedBy[r.reason ?? 'unknown'] ?? 0) + r.n
      if (!byVariation || !r.dispatched || r.status === 'pending' || r.status === 'skipped') continue
      const v = variations.get(r.variationKey) ?? { variationKey: r.variationKey, dispatched: 0, queued: 0, sent: 0, delivered: 0, read: 0, replied: 0, failed: 0 }
      v.dispatched += r.n
      v[r.status] += r.n
      variations.set(r.variationKey, v)
    }
    if (byVariation) stats.variations = [...variations.values()].sort((a, b) => (a.variationKey ?? '').localeCompare(b.variationKey ?? ''))
    return stats
  })

export const listRecipients = (tx: Tx, broadcastId: string, q: { limit: number; after?: number; status?: RecipientStatus }) =>
  tx<RecipientView[]>`
    select * from (
      select r.id::int as id, r.lead_id, ${statusOf(tx)} as status, r.variation_key, r.skip_reason, r.skip_detail, r.message_id,
             coalesce(r.error_code, m.error_code) as error_code, r.queued_at, r.settled_at
        from campaigns.broadcast_recipients r left join whatsapp.messages m on m.id = r.message_id
       where r.tenant_id = current_setting('app.tenant_id')::uuid and r.broadcast_id = ${broadcastId} ${q.after ? tx`and r.id > ${q.after}` : tx``}
       order by r.id
    ) x
     where ${q.status ? tx`x.status = ${q.status}` : tx`true`}
     order by x.id limit ${q.limit}`
