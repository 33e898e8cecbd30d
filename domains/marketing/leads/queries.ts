import type postgres from 'postgres'
import type { Queryable, Tx } from '../../../lib/db.js'
import { LEAD_REFERENCES, type LeadReference, type TableName } from './lead-references.js'
import type { ConsentView, LeadSighting, LeadStatus, LeadView, MergeView, TimelineEntry } from './schemas.js'

export const leadColumns = (tx: Queryable) => tx`
  l.id, l.phone_e164, l.wa_id, l.email, l.name, l.profile_name, l.company, l.source, l.source_details, l.status, l.owner,
  l.tags, l.fields, l.opted_out_at, l.merged_into, l.first_seen_at, l.last_seen_at, l.created_at, l.updated_at`

/** A position in a list ordered newest first: the row's time as PostgreSQL text (microseconds survive) and its id. */
export type Keyset = { at: string; id: string }

// ---------------------------------------------------------------------------------------------------------
// Identity resolution (see service.ts for how these fit together).

/**
 * Inserts the person as a new lead unless one of their identity keys is taken. `on conflict do nothing` without a
 * target covers both partial unique indexes (email, phone_key): the constraint decides, never a prior read.
 * A concurrent insert of the same key makes this wait for that transaction, then do nothing.
 */
export const insertLeadUnlessKnown = (tx: Tx, tenantId: string, s: LeadSighting) =>
  tx<{ id: string }[]>`
    insert into marketing.leads (tenant_id, email, phone_e164, phone_key, name, company, source, source_details, fields, first_seen_at, last_seen_at)
    values (${tenantId}, ${s.email}, ${s.phoneE164}, ${s.phoneKey}, ${s.name}, ${s.company}, ${s.source},
            ${tx.json(s.sourceDetails as never)}, ${tx.json(s.fields as never)}, ${s.at}, ${s.at})
    on conflict do nothing
    returning id`.then((r) => r[0]?.id ?? null)

/**
 * Serializes resolutions of the same person (same email or phone key) for the rest of the transaction. The
 * constraints alone keep one lead per key; this keeps two resolutions of one person from interleaving their row
 * locks across retries (which deadlocks). Keys are taken in one order (sorted) so these locks cannot deadlock.
 */
export const lockIdentityKeys = (tx: Tx, tenantId: string, keys: string[]) => {
  const sorted = [...keys].sort().map((k) => `${tenantId}:${k}`)
  return tx`select ${sorted.map((k, i) => tx`${i > 0 ? tx`,` : tx``} pg_advisory_xact_lock(hashtextextended(${k}, 0))`)}`
}

export type IdentityMatch = { id: string; email: string | null; phoneKey: string | null; waId: string | null }

/** The live leads holding either key, locked, oldest first (the lock order is the same for every caller). */
export const lockLeadsByIdentity = (tx: Tx, email: string | null, phoneKey: string | null) =>
  tx<IdentityMatch[]>`
    select l.id, l.email, l.phone_key, l.wa_id from marketing.leads l
     where l.merged_into is null and (l.email = ${email} or l.phone_key = ${phoneKey})
     order by l.created_at, l.id
       for update`

/** A known person seen again: fill what the lead lacks, never overwrite what the business or an earlier sighting set. */
export const applySighting = (tx: Tx, leadId: string, s: LeadSighting) =>
  tx`
    update marketing.leads l set
      email = coalesce(l.email, ${s.email}),
      phone_e164 = coalesce(l.phone_e164, ${s.phoneE164}),
      phone_key = coalesce(l.phone_key, ${s.phoneKey}),
      name = coalesce(l.name, ${s.name}),
      company = coalesce(l.company, ${s.company}),
      fields = l.fields || ${tx.json(s.fields as never)},
      first_seen_at = least(l.first_seen_at, ${s.at}),
      last_seen_at = greatest(l.last_seen_at, ${s.at}),
      updated_at = now()
    where l.id = ${leadId}`

/**
 * Step 1 of a merge: the merged lead leaves the live set (the partial unique indexes stop counting its keys).
 * Returns the merged lead as it was. Leads merged into it earlier follow in step 3 (the catalog's
 * marketing.leads.merged_into entry).
 */
export const releaseMergedLead = (tx: Tx, mergedId: string, survivorId: string) =>
  tx<{ snapshot: Record<string, unknown> }[]>`
    with before as (
      select to_jsonb(l) as snapshot from marketing.leads l where l.id = ${mergedId} and l.merged_into is null
    ), released as (
      update marketing.leads set merged_into = ${survivorId}, updated_at = now()
       where id = ${mergedId} and merged_into is null
      returning id
    )
    select before.snapshot from before, released`.then((r) => r[0]?.snapshot ?? null)

/**
 * Step 2: the survivor takes what it lacks from the merged lead. The phone stays with the WhatsApp-reachable lead:
 * a lead with a wa_id keeps its number, otherwise the survivor's wins. Tags are united; custom fields combined with
 * the survivor's values winning; an opt-out on either side is kept.
 */
export const absorbMergedLead = (tx: Tx, survivorId: string, mergedId: string) =>
  tx`
    update marketing.leads s set
      email = coalesce(s.email, m.email),
      phone_e164 = case when s.wa_id is null and m.wa_id is not null then m.phone_e164 else coalesce(s.phone_e164, m.phone_e164) end,
      phone_key = case when s.wa_id is null and m.wa_id is not null then m.phone_key else coalesce(s.phone_key, m.phone_key) end,
      wa_id = coalesce(s.wa_id, m.wa_id),
      name = coalesce(s.name, m.name),
      profile_name = coalesce(s.profile_name, m.profile_name),
      company = coalesce(s.company, m.company),
      status = case when s.status = 'new' then m.status else s.status end,
      owner = coalesce(s.owner, m.owner),
      tags = array(select distinct t from unnest(s.tags || m.tags) t order by t),
      fields = m.fields || s.fields,
      opted_out_at = case when s.opted_out_at is null then m.opted_out_at
                          when m.opted_out_at is null then s.opted_out_at
                          else least(s.opted_out_at, m.opted_out_at) end,
      first_seen_at = least(s.first_seen_at, m.first_seen_at),
      last_seen_at = greatest(s.last_seen_at, m.last_seen_at),
      updated_at = now()
    from marketing.leads m
    where s.id = ${survivorId} and m.id = ${mergedId}`

/**
 * Step 3: every row the lead-references catalog marks `move` (reach by a lead column) is pointed at the survivor,
 * and the merge is recorded, in one statement: one CTE per catalogued table, built from the catalog's names as
 * identifiers (constants of lead-references.ts, never input). A table added to the catalog is moved without a change
 * here. Returns the rows moved per table (tables with none included).
 */
export const moveHistoryAndRecordMerge = (
  tx: Tx,
  m: { tenantId: string; survivorId: string; mergedId: string; reason: string; matchedOn: unknown; snapshot: unknown; actor: string; requestId: string | null },
  moves: { table: TableName; columns: string[] }[] = leadColumnsToMove(),
) => {
  const cte = (i: number) => tx(`moved_${i}`)
  return tx<{ table: string; moved: number }[]>`
    with ${moves.map(({ table, columns }, i) => tx`
      ${cte(i)} as (
        update ${tx(table)} set ${columns.map((c, j) => tx`${j > 0 ? tx`, ` : tx``}${tx(c)} = case when ${tx(c)} = ${m.mergedId}::uuid then ${m.survivorId}::uuid else ${tx(c)} end`)}
         where ${columns.map((c, j) => tx`${j > 0 ? tx` or ` : tx``}${tx(c)} = ${m.mergedId}::uuid`)}
        returning 1
      ),`)}
    merge as (
      insert into marketing.lead_merges (tenant_id, survivor_id, merged_id, reason, matched_on, merged_snapshot, actor, request_id)
      values (${m.tenantId}, ${m.survivorId}, ${m.mergedId}, ${m.reason}, ${tx.json(m.matchedOn as never)}, ${tx.json(m.snapshot as never)},
              ${m.actor}, ${m.requestId})
      returning id
    ), recorded as (
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, details)
      select ${m.tenantId}, ${m.survivorId}, 'lead_merged', 'system', ${m.actor}, now(),
             jsonb_build_object('mergedLeadId', ${m.mergedId}::uuid, 'mergeId', merge.id, 'reason', ${m.reason}::text)
        from merge
    )
    ${moves.map(({ table }, i) => tx`${i > 0 ? tx`union all` : tx``} select ${table}::text as table, (select count(*)::int from ${cte(i)}) as moved`)}`
}

/** The catalog's `move` entries reached by a lead column, grouped by table (one UPDATE per table in a statement). */
export function leadColumnsToMove(references: readonly LeadReference[] = LEAD_REFERENCES): { table: TableName; columns: string[] }[] {
  const byTable = new Map<TableName, string[]>()
  for (const ref of references) {
    if (ref.merge.kind !== 'move' || ref.reach.by !== 'lead') continue
    byTable.set(ref.table, [...(byTable.get(ref.table) ?? []), ref.reach.column])
  }
  return [...byTable].map(([table, columns]) => ({ table, columns }))
}

// ---------------------------------------------------------------------------------------------------------
// Reading leads.

/** The filters of a list or export, already resolved (a search is exactly one of email, phone key or name prefix). */
export interface LeadQuery {
  status?: LeadStatus
  source?: string
  tag?: string
  owner?: string
  createdFrom?: Date
  createdTo?: Date
  email?: string
  phoneKey?: string
  namePrefix?: string
}

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`)

const leadWhere = (tx: Queryable, f: LeadQuery) => tx`
  l.merged_into is null
  ${f.status ? tx`and l.status = ${f.status}` : tx``}
  ${f.source ? tx`and l.source = ${f.source}` : tx``}
  ${f.tag ? tx`and l.tags @> array[${f.tag}]::text[]` : tx``}
  ${f.owner ? tx`and l.owner = ${f.owner}` : tx``}
  ${f.createdFrom ? tx`and l.created_at >= ${f.createdFrom}` : tx``}
  ${f.createdTo ? tx`and l.created_at < ${f.createdTo}` : tx``}
  ${f.email ? tx`and l.email = ${f.email}` : tx``}
  ${f.phoneKey ? tx`and l.phone_key = ${f.phoneKey}` : tx``}
  ${f.namePrefix ? tx`and lower(coalesce(l.name, l.profile_name)) like ${`${escapeLike(f.namePrefix.toLowerCase())}%`}` : tx``}`

export const listLeads = (tx: Tx, f: LeadQuery, limit: number, after: Keyset | null) =>
  tx<(LeadView & { sortAt: string })[]>`
    select ${leadColumns(tx)}, l.created_at::text as sort_at
      from marketing.leads l
     where ${leadWhere(tx, f)}
       ${after ? tx`and (l.created_at, l.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx``}
     order by l.created_at desc, l.id desc
     limit ${limit}`

/** Every matching lead, newest first, fetched `batch` rows at a time through a server-side cursor. */
export const leadsForExport = (tx: Tx, f: LeadQuery, batch: number) =>
  tx<LeadView[]>`
    select ${leadColumns(tx)} from marketing.leads l
     where ${leadWhere(tx, f)}
     order by l.created_at desc, l.id desc`.cursor(batch)

export const findLead = (tx: Tx, leadId: string) =>
  tx<LeadView[]>`select ${leadColumns(tx)} from marketing.leads l where l.id = ${leadId}`.then((r) => r[0] ?? null)

/** The live lead a person's email or phone key belongs to: what the benchmark measures at a million leads. */
export const findLeadIdByEmail = (tx: Queryable, email: string) =>
  tx<{ id: string }[]>`select id from marketing.leads where email = ${email} and merged_into is null`.then((r) => r[0]?.id ?? null)

export const findLeadIdByPhoneKey = (tx: Queryable, phoneKey: string) =>
  tx<{ id: string }[]>`select id from marketing.leads where phone_key = ${phoneKey} and merged_into is null`.then((r) => r[0]?.id ?? null)

/** The phone numbers (E.164) of these leads that have one, in one query: what event enrichment reads for country. */
export const findLeadPhones = (tx: Tx, leadIds: readonly string[]) =>
  tx<{ id: string; phoneE164: string }[]>`
    select id, phone_e164 from marketing.leads where id = any(${leadIds as string[]}::uuid[]) and phone_e164 is not null`

export const listTimeline = (tx: Tx, leadId: string, limit: number, before: Keyset | null) =>
  tx<(TimelineEntry & { sortAt: string })[]>`
    select i.id::text, i.type, i.channel, i.actor, i.occurred_at, i.details, i.occurred_at::text as sort_at,
           case when m.id is null then null
                else json_build_object('id', m.id, 'direction', m.direction, 'type', m.type, 'content', m.content, 'status', m.status) end as message
      from marketing.lead_interactions i
      left join whatsapp.messages m on m.id = i.message_id
     where i.lead_id = ${leadId}
       ${before ? tx`and (i.occurred_at, i.id) < (${before.at}::timestamptz, ${before.id}::bigint)` : tx``}
     order by i.occurred_at desc, i.id desc
     limit ${limit}`

export const listConsents = (tx: Tx, leadId: string) =>
  tx<ConsentView[]>`
    select id::text, channel, form_id, submission_id, granted, purpose, policy_version, policy_url, host(ip) as ip, user_agent, occurred_at
      from marketing.consents where lead_id = ${leadId}
     order by occurred_at desc, id desc`

const mergeColumns = (tx: Queryable) => tx`id::text, survivor_id, merged_id, reason, matched_on, actor, request_id, merged_at`

export const listMergesOf = (tx: Tx, leadId: string) =>
  tx<MergeView[]>`
    select ${mergeColumns(tx)} from marketing.lead_merges
     where survivor_id = ${leadId} or merged_id = ${leadId}
     order by merged_at desc, id desc`

export const listMerges = (tx: Tx, limit: number, before: Keyset | null) =>
  tx<(MergeView & { sortAt: string })[]>`
    select ${mergeColumns(tx)}, merged_at::text as sort_at from marketing.lead_merges
     ${before ? tx`where (merged_at, id) < (${before.at}::timestamptz, ${before.id}::bigint)` : tx``}
     order by merged_at desc, id desc
     limit ${limit}`

// ---------------------------------------------------------------------------------------------------------
// Changing leads through the API. Every change is an interaction naming who made it.

export const lockLead = (tx: Tx, leadId: string) =>
  tx<LeadView[]>`select ${leadColumns(tx)} from marketing.leads l where l.id = ${leadId} for update`.then((r) => r[0] ?? null)

export const updateLeadColumns = (tx: Tx, leadId: string, change: { status?: LeadStatus; owner?: string | null; tags?: string[]; name?: string | null; company?: string | null }) =>
  tx<LeadView[]>`
    update marketing.leads l set
      status = ${change.status !== undefined ? tx`${change.status}` : tx`l.status`},
      owner = ${change.owner !== undefined ? tx`${change.owner}` : tx`l.owner`},
      tags = ${change.tags !== undefined ? tx`${change.tags}::text[]` : tx`l.tags`},
      name = ${change.name !== undefined ? tx`${change.name}` : tx`l.name`},
      company = ${change.company !== undefined ? tx`${change.company}` : tx`l.company`},
      updated_at = now()
    where l.id = ${leadId}
    returning ${leadColumns(tx)}`.then((r) => r[0]!)

export const insertInteraction = (
  tx: Tx,
  i: { tenantId: string; leadId: string; type: string; channel: string; actor: string; details: unknown; dedupeKey?: string | null },
) =>
  tx`
    insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, details, dedupe_key)
    values (${i.tenantId}, ${i.leadId}, ${i.type}, ${i.channel}, ${i.actor}, now(), ${tx.json(i.details as never)}, ${i.dedupeKey ?? null})`

/**
 * Bulk status/tag change in one statement: only leads that actually change are written, and each gets an
 * interaction with its before and after. Tags stay sorted and unique.
 */
export const bulkUpdateLeads = (
  tx: Tx,
  b: { tenantId: string; leadIds: string[]; status: LeadStatus | null; addTags: string[]; removeTags: string[]; actor: string; requestId: string | null },
) =>
  tx<{ id: string; changed: boolean; fromStatus: string | null; toStatus: string | null; at: Date }[]>`
    with old as (
      select l.id, l.status, l.tags from marketing.leads l
       where l.id = any(${b.leadIds}::uuid[]) and l.merged_into is null
       order by l.id
         for update
    ), next as (
      select old.id, old.status as old_status, old.tags as old_tags,
             coalesce(${b.status}::text, old.status) as status,
             array(select distinct t from unnest(old.tags || ${b.addTags}::text[]) t where t <> all(${b.removeTags}::text[]) order by t) as tags
        from old
    ), changed as (
      update marketing.leads l set status = next.status, tags = next.tags, updated_at = now()
        from next
       where l.id = next.id and (next.status <> next.old_status or next.tags <> next.old_tags)
      returning l.id, next.old_status, next.status, next.old_tags, next.tags
    ), logged as (
      insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, details)
      select ${b.tenantId}, c.id, 'lead_updated', 'api', ${b.actor}, now(),
             jsonb_build_object('bulk', true, 'requestId', ${b.requestId}::text, 'changes',
               jsonb_strip_nulls(jsonb_build_object(
                 'status', case when c.old_status <> c.status then jsonb_build_object('from', c.old_status, 'to', c.status) end,
                 'tags', case when c.old_tags <> c.tags then jsonb_build_object('from', to_jsonb(c.old_tags), 'to', to_jsonb(c.tags)) end)))
        from changed c
    )
    select old.id, c.id is not null as changed, c.old_status as from_status, c.status as to_status, now() as at
      from old left join changed c on c.id = old.id`

// ---------------------------------------------------------------------------------------------------------
// What other domains record about leads (WhatsApp ingestion, forms, the bot), through service.ts. Set-based: one
// statement per batch. Interactions and consents take the transaction's tenant (withTenant), never a parameter.

export interface WhatsAppSenderRecord {
  phone_key: string
  phone_e164: string | null
  wa_id: string
  profile_name: string | null
  source: string
  source_details: unknown
  first_seen_at: string
  last_seen_at: string
}

/**
 * Finds or creates the live lead of each WhatsApp sender by identity key, in one statement, in the given order
 * (sorted by key by the caller, so concurrent batches lock leads in one order). A known lead takes the latest wa_id
 * and profile name, and its seen times only widen (least/greatest), so a replay leaves it as it was. `created`: the
 * row was inserted now (xmax is 0 only for a row this statement inserted, not one it updated on conflict).
 */
export const upsertWhatsAppSenderRows = (tx: Tx, tenantId: string, rows: WhatsAppSenderRecord[]) =>
  tx<{ id: string; phoneKey: string; created: boolean }[]>`
    insert into marketing.leads as l (tenant_id, phone_e164, phone_key, wa_id, profile_name, source, source_details, first_seen_at, last_seen_at)
    select ${tenantId}, x.phone_e164, x.phone_key, x.wa_id, x.profile_name, x.source, x.source_details, x.first_seen_at, x.last_seen_at
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
           as x(phone_e164 text, phone_key text, wa_id text, profile_name text, source text, source_details jsonb,
                first_seen_at timestamptz, last_seen_at timestamptz)
     order by x.phone_key
    on conflict (tenant_id, phone_key) where merged_into is null do update
      set wa_id = excluded.wa_id,
          profile_name = coalesce(excluded.profile_name, l.profile_name),
          first_seen_at = least(l.first_seen_at, excluded.first_seen_at),
          last_seen_at = greatest(l.last_seen_at, excluded.last_seen_at)
    returning id, phone_key, (xmax = 0) as created`

export interface InteractionRecord {
  lead_id: string
  type: string
  channel: string
  actor: string
  occurred_at: string
  message_id: string | null
  details: unknown
  dedupe_key: string | null
}

/**
 * Interactions from a relation the caller selects: columns lead_id, type, channel, actor, occurred_at, message_id,
 * details, dedupe_key, in the order to add them. A statement of its own, or a part of the caller's (a data-modifying
 * CTE: postgres.js nests queries), so a hot path that derives the rows from rows it just wrote stays one round trip.
 * A dedupe key already stored (or repeated) adds nothing.
 */
export const insertInteractionsFrom = (tx: Tx, relation: postgres.Fragment) =>
  tx`
    insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, message_id, details, dedupe_key)
    select (select core.current_tenant_id()), r.lead_id, r.type, r.channel, r.actor, r.occurred_at, r.message_id, coalesce(r.details, '{}'), r.dedupe_key
      from (${relation}) r
    on conflict (tenant_id, dedupe_key) do nothing`

/** Interactions of a batch, in the order given. Returns how many were new. */
export const insertInteractions = (tx: Tx, rows: InteractionRecord[]) =>
  insertInteractionsFrom(tx, tx`
    select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      as x(lead_id uuid, type text, channel text, actor text, occurred_at timestamptz, message_id uuid, details jsonb, dedupe_key text)`).then((r) => r.count)

export interface ConsentRecord {
  lead_id: string
  channel: string
  form_id: string | null
  submission_id: string | null
  granted: boolean
  purpose: string
  policy_version: string
  policy_url: string | null
  ip: string | null
  user_agent: string | null
  occurred_at: string
}

/**
 * Consents from a relation the caller selects (columns as in ConsentRecord), as a statement or a part of the caller's.
 * Consents are a record of what the person said, when, and under which policy: append-only, one row each.
 */
export const insertConsentsFrom = (tx: Tx, relation: postgres.Fragment) =>
  tx`
    insert into marketing.consents (tenant_id, lead_id, channel, form_id, submission_id, granted, purpose, policy_version, policy_url, ip, user_agent, occurred_at)
    select (select core.current_tenant_id()), r.lead_id, r.channel, r.form_id, r.submission_id, r.granted, r.purpose, r.policy_version,
           r.policy_url, r.ip, r.user_agent, r.occurred_at
      from (${relation}) r`

export const insertConsents = (tx: Tx, rows: ConsentRecord[]) =>
  insertConsentsFrom(tx, tx`
    select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      as x(lead_id uuid, channel text, form_id uuid, submission_id uuid, granted boolean, purpose text, policy_version text,
           policy_url text, ip inet, user_agent text, occurred_at timestamptz)`).then((r) => r.count)

/** The leads of `leadIds`, locked in id order (the order every multi-lead change here uses), as a fragment. */
const lockedLeads = (tx: Tx, leadIds: string[]) => tx`
  select id from marketing.leads where id = any(${leadIds}::uuid[]) order by id for update`

const STANDARD_COLUMNS = new Set(['name', 'company'])

/**
 * Sets one lead field (from a bot flow). `email` is an identity key (unique per tenant): when another live lead
 * already has it, the value is kept in `fields.email` instead of failing. A typed phone is not the lead's WhatsApp
 * identity, so `phone` and custom fields live in `fields`.
 */
export function setLeadField(tx: Tx, leadId: string, field: string, value: string) {
  if (STANDARD_COLUMNS.has(field)) {
    return tx`update marketing.leads set ${tx(field === 'name' ? 'name' : 'company')} = ${value}, updated_at = now() where id = ${leadId}`
  }
  if (field === 'email') {
    return tx`
      update marketing.leads l
         set email = case when taken.id is null then ${value} else l.email end,
             fields = case when taken.id is null then l.fields else l.fields || jsonb_build_object('email', ${value}::text) end,
             updated_at = now()
        from (select (select id from marketing.leads where email = ${value} and id <> ${leadId} and merged_into is null limit 1) as id) taken
       where l.id = ${leadId}`
  }
  return tx`
    update marketing.leads set fields = fields || jsonb_build_object(${field}::text, ${value}::text), updated_at = now() where id = ${leadId}`
}

/** Tags stay sorted and unique. */
export const addLeadTags = (tx: Tx, leadIds: string[], tags: string[]) =>
  tx`
    update marketing.leads l
       set tags = (select coalesce(array_agg(distinct t order by t), '{}') from unnest(l.tags || ${tags}::text[]) t), updated_at = now()
      from (${lockedLeads(tx, leadIds)}) k
     where l.id = k.id`

export const removeLeadTags = (tx: Tx, leadIds: string[], tags: string[]) =>
  tx`
    update marketing.leads l
       set tags = (select coalesce(array_agg(t order by t), '{}') from unnest(l.tags) t where t <> all(${tags}::text[])), updated_at = now()
      from (${lockedLeads(tx, leadIds)}) k
     where l.id = k.id`

/** Returns the leads whose status changed, with the status before (read under the row lock) and the change's time. */
export const setLeadStatus = (tx: Tx, leadIds: string[], status: LeadStatus) =>
  tx<{ id: string; from: string; to: string; at: Date }[]>`
    update marketing.leads l set status = ${status}, updated_at = now()
      from (select id, status from marketing.leads where id = any(${leadIds}::uuid[]) order by id for update) k
     where l.id = k.id and k.status <> ${status}
    returning l.id, k.status as from, l.status as to, l.updated_at as at`

/** An opt-out: the first one counts; saying it again changes nothing. */
export const optOutLeads = (tx: Tx, leadIds: string[], at: Date) =>
  tx`
    update marketing.leads l set opted_out_at = coalesce(l.opted_out_at, ${at}), updated_at = now()
      from (${lockedLeads(tx, leadIds)}) k
     where l.id = k.id`

// ---------------------------------------------------------------------------------------------------------
// A person's WhatsApp number changed (see service.ts, changeLeadPhone).

/** The live leads that change number and those holding the new numbers' keys, locked in id order. */
export const lockLeadsForPhoneChange = (tx: Tx, leadIds: string[], phoneKeys: string[]) =>
  tx<{ id: string; phoneKey: string | null; createdAt: Date }[]>`
    select l.id, l.phone_key, l.created_at from marketing.leads l
     where l.merged_into is null and (l.id = any(${leadIds}::uuid[]) or l.phone_key = any(${phoneKeys}::text[]))
     order by l.id
       for update`

export interface PhoneMove {
  lead_id: string
  to_wa_id: string
  phone_e164: string | null
  phone_key: string
  /** Every number this lead had in the batch's changes; their service windows move to the new one. */
  from_wa_ids: string[]
}
export interface PhoneChangeInteraction {
  lead_id: string
  occurred_at: string
  message_id: string | null
  details: unknown
  dedupe_key: string
}

/**
 * One statement for the whole batch: each lead takes its new phone, key and wa_id; its service windows on the old
 * numbers become (or join) windows on the new one; its bot conversations now talk to the new wa_id; and each change
 * is an interaction (once, by dedupe key).
 */
export const applyPhoneMoves = (tx: Tx, tenantId: string, moves: PhoneMove[], interactions: PhoneChangeInteraction[]) =>
  tx`
    with input as (
      select * from jsonb_to_recordset(${tx.json(moves as never)}::jsonb)
        as x(lead_id uuid, to_wa_id text, phone_e164 text, phone_key text, from_wa_ids text[])
    ), leads as (
      update marketing.leads l
         set phone_e164 = i.phone_e164, phone_key = i.phone_key, wa_id = i.to_wa_id, updated_at = now()
        from input i
       where l.id = i.lead_id
    ), old_windows as (
      delete from whatsapp.service_windows w
       using input i
       where w.lead_id = i.lead_id and w.wa_id = any(i.from_wa_ids) and w.wa_id <> i.to_wa_id
      returning w.phone_number_id, w.last_inbound_at, i.lead_id, i.to_wa_id
    ), new_windows as (
      insert into whatsapp.service_windows as w (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
      select ${tenantId}, o.phone_number_id, o.to_wa_id, o.lead_id, max(o.last_inbound_at)
        from old_windows o
       group by o.phone_number_id, o.to_wa_id, o.lead_id
       order by o.phone_number_id, o.to_wa_id
      on conflict (tenant_id, phone_number_id, wa_id) do update
        set last_inbound_at = greatest(w.last_inbound_at, excluded.last_inbound_at), lead_id = excluded.lead_id
    ), conversations as (
      update conversations.conversations c set wa_id = i.to_wa_id, updated_at = now()
        from input i
       where c.lead_id = i.lead_id and c.wa_id <> i.to_wa_id
    )
    insert into marketing.lead_interactions (tenant_id, lead_id, type, channel, actor, occurred_at, message_id, details, dedupe_key)
    select ${tenantId}, x.lead_id, 'whatsapp_number_changed', 'whatsapp', 'lead', x.occurred_at, x.message_id, x.details, x.dedupe_key
      from jsonb_to_recordset(${tx.json(interactions as never)}::jsonb)
           as x(lead_id uuid, occurred_at timestamptz, message_id uuid, details jsonb, dedupe_key text)
    on conflict (tenant_id, dedupe_key) do nothing`

/** Retention: up to `limit` of a tenant's interactions older than `days` days, oldest first; returns how many went. */
export const deleteInteractionsOlderThan = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx`
    delete from marketing.lead_interactions where id in (
      select id from marketing.lead_interactions
       where tenant_id = ${tenantId} and occurred_at < now() - make_interval(days => ${days})
       order by occurred_at limit ${limit})`
    .then((r) => r.count)

/** Before messages are deleted (retention): interactions that pointed at them stay, without the pointer. */
export const unlinkInteractionsFromMessages = (tx: Tx, tenantId: string, messageIds: string[]) =>
  tx`
    update marketing.lead_interactions set message_id = null
     where tenant_id = ${tenantId} and message_id = any(${messageIds}::uuid[])`
    .then((r) => r.count)

/** A person erased before came back by their own act (fresh consent, a new WhatsApp message): their new lead says so. */
export const markLeadsReturningAfterErasure = (tx: Tx, leadIds: string[]) =>
  leadIds.length === 0
    ? Promise.resolve()
    : tx`update marketing.leads set returning_after_erasure_at = now() where id = any(${leadIds}::uuid[]) and returning_after_erasure_at is null`.then(() => {})
