import type { Tx } from '../../lib/db.js'
import type { TableName } from '../marketing/leads/lead-references.js'
import { ERASE_MAX_ATTEMPTS, ERASE_SUBJECT_TASK, type SuppressionView } from './schemas.js'
import { markLeadsReturningAfterErasure } from '../marketing/leads/queries.js'

// Table and column names below come from the lead-references catalog (constants, never input) and reach SQL only as
// postgres.js identifiers.

export interface ErasureRow {
  id: string
  tenantId: string
  subjectKind: 'lead' | 'email' | 'phone'
  subjectHash: string
  status: 'pending' | 'running' | 'completed' | 'failed'
  requestedBy: string
  requestId: string | null
  subjectSealed: string | null
  erasedLeadIds: string[]
  stepsDone: string[]
  tables: Record<string, { deleted: number; anonymised: number }>
  suppressedKeys: number
  attempts: number
  error: string | null
  createdAt: Date
  startedAt: Date | null
  completedAt: Date | null
  verifiedAt: Date | null
}

const requestColumns = (tx: Tx) => tx`
  r.id, r.tenant_id, r.subject_kind, r.subject_hash, r.status, r.requested_by, r.request_id, r.subject_sealed, r.erased_lead_ids::text[],
  r.steps_done, r.tables, r.attempts, r.error, r.created_at, r.started_at, r.completed_at, r.verified_at,
  (select count(*)::int from privacy.suppressions s where s.erasure_request_id = r.id) as suppressed_keys`

/** A new request, unless one for the same subject is open: then nothing (the caller reads the open one). */
export const insertErasureRequest = (tx: Tx, r: { tenantId: string; subjectKind: string; subjectHash: string; requestedBy: string; requestId: string | null; subjectSealed: string }) =>
  tx<{ id: string }[]>`
    insert into privacy.erasure_requests (tenant_id, subject_kind, subject_hash, requested_by, request_id, subject_sealed)
    values (${r.tenantId}, ${r.subjectKind}, ${r.subjectHash}, ${r.requestedBy}, ${r.requestId}, ${r.subjectSealed})
    on conflict (tenant_id, subject_hash) where status in ('pending', 'running') do nothing
    returning id`.then((rows) => rows[0] ?? null)

/** The newest request for a subject that is open or completed (failed ones may be asked again). */
export const findLatestErasure = (tx: Tx, subjectHash: string) =>
  tx<ErasureRow[]>`
    select ${requestColumns(tx)} from privacy.erasure_requests r
     where r.subject_hash = ${subjectHash} and r.status <> 'failed'
     order by (r.status in ('pending', 'running')) desc, r.created_at desc limit 1`.then((rows) => rows[0] ?? null)

export const getErasure = (tx: Tx, id: string, options: { lock?: boolean } = {}) =>
  tx<ErasureRow[]>`
    select ${requestColumns(tx)} from privacy.erasure_requests r where r.id = ${id}
    ${options.lock ? tx`for update of r` : tx``}`.then((rows) => rows[0] ?? null)

export const listErasures = (tx: Tx, limit: number, status: string | undefined) =>
  tx<ErasureRow[]>`
    select ${requestColumns(tx)} from privacy.erasure_requests r
     where ${status ? tx`r.status = ${status}` : tx`true`}
     order by r.created_at desc, r.id desc limit ${limit}`

export const enqueueErasure = (tx: Tx, tenantId: string, requestId: string) =>
  tx`select graphile_worker.add_job(${ERASE_SUBJECT_TASK}, json_build_object('tenantId', ${tenantId}::uuid, 'requestId', ${requestId}::uuid),
       job_key := ${`privacy:erase:${requestId}`}, max_attempts := ${ERASE_MAX_ATTEMPTS})`

export const markRunning = (tx: Tx, id: string) =>
  tx`update privacy.erasure_requests set status = 'running', started_at = coalesce(started_at, now()), attempts = attempts + 1, updated_at = now()
      where id = ${id} and status in ('pending', 'running')`

/** One step applied: its name and receipt lines, in the transaction of the step's work. */
export const recordStep = (tx: Tx, id: string, step: string, tables: ErasureRow['tables'], extra: { subjectSealed?: string; erasedLeadIds?: string[] } = {}) =>
  tx`
    update privacy.erasure_requests
       set steps_done = array_append(steps_done, ${step}), tables = ${tx.json(tables as never)}, updated_at = now(),
           subject_sealed = coalesce(${extra.subjectSealed ?? null}, subject_sealed),
           erased_lead_ids = coalesce(${extra.erasedLeadIds ?? null}::uuid[], erased_lead_ids)
     where id = ${id}`

export const completeErasure = (tx: Tx, id: string) =>
  tx`update privacy.erasure_requests
        set status = 'completed', completed_at = now(), verified_at = now(), subject_sealed = null, erased_lead_ids = '{}', error = null, updated_at = now()
      where id = ${id}`

export const failErasure = (tx: Tx, id: string, error: string) =>
  tx`update privacy.erasure_requests
        set status = 'failed', completed_at = now(), subject_sealed = null, error = ${error.slice(0, 2000)}, updated_at = now()
      where id = ${id} and status <> 'completed'`

// ---------------------------------------------------------------------------------------------------------
// Resolving the subject.

export const tenantDefaultCountry = (tx: Tx) =>
  tx<{ defaultCountry: string }[]>`select default_country from core.tenants where id = core.current_tenant_id()`.then((r) => r[0]?.defaultCountry ?? null)

export const leadOfAnotherTenant = (tx: Tx, leadId: string) =>
  tx<{ other: boolean }[]>`select privacy.lead_of_another_tenant(${leadId}) as other`.then((r) => r[0]!.other)

/**
 * The leads a subject names, and every lead joined to them by merges (either way): one person. Each seed and each
 * step of the walk is an index lookup (merged leads keep their keys, indexed apart by migration 0017).
 */
export const subjectLeads = (tx: Tx, seed: { leadId?: string; email?: string; phoneKey?: string; phoneDigits?: string }) => {
  const seeds = [
    seed.leadId ? tx`select id from marketing.leads where id = ${seed.leadId}` : null,
    seed.email ? tx`select id from marketing.leads where email = ${seed.email} and merged_into is null` : null,
    seed.email ? tx`select id from marketing.leads where email = ${seed.email} and merged_into is not null` : null,
    seed.phoneKey ? tx`select id from marketing.leads where phone_key = ${seed.phoneKey} and merged_into is null` : null,
    seed.phoneKey ? tx`select id from marketing.leads where phone_key = ${seed.phoneKey} and merged_into is not null` : null,
    seed.phoneDigits ? tx`select id from marketing.leads where wa_id = ${seed.phoneDigits}` : null,
  ].filter((x) => x !== null)
  if (seeds.length === 0) return Promise.resolve([])
  const union = seeds.reduce((acc, s) => tx`${acc} union ${s}`)
  return tx<{ id: string; email: string | null; phoneE164: string | null; phoneKey: string | null; waId: string | null }[]>`
    with recursive person (id) as (
      ${union}
      union
      select x.id from person p
        cross join lateral (
          select c.id from marketing.leads c where c.merged_into = p.id
          union all
          select m.merged_into from marketing.leads m where m.id = p.id and m.merged_into is not null
        ) x
    )
    select l.id, l.email, l.phone_e164, l.phone_key, l.wa_id from marketing.leads l where l.id in (select id from person)`
}

export const leadsExist = (tx: Tx, seed: Parameters<typeof subjectLeads>[1]) => subjectLeads(tx, seed).then((r) => r.length > 0)

/** Ids that jobs name for these leads: their messages, conversations and form submissions. */
export const relatedIds = (tx: Tx, leadIds: string[]) =>
  tx<{ id: string }[]>`
    select m.id::text from whatsapp.messages m where m.lead_id = any(${leadIds}::uuid[])
    union all select c.id::text from conversations.conversations c where c.lead_id = any(${leadIds}::uuid[])
    union all select s.id::text from marketing.form_submissions s where s.lead_id = any(${leadIds}::uuid[])`.then((r) => r.map((x) => x.id))

export const countPendingDeliveries = (tx: Tx, needles: string[]) =>
  tx<{ n: number }[]>`select privacy.count_pending_deliveries(${needles}::text[]) as n`.then((r) => r[0]!.n)

export const cancelJobsNaming = (tx: Tx, ids: string[]) =>
  tx<{ n: number }[]>`select privacy.cancel_jobs_naming(${ids}::text[]) as n`.then((r) => r[0]!.n)

// ---------------------------------------------------------------------------------------------------------
// Applying the catalog's policies.

export const deleteByLead = (tx: Tx, table: TableName, column: string, leadIds: string[]) =>
  tx`delete from ${tx(table)} where ${tx(column)} = any(${leadIds}::uuid[])`.then((r) => r.count)

export const deleteByParent = (tx: Tx, table: TableName, column: string, parent: TableName, parentColumn: string, parentLeadColumn: string, leadIds: string[]) =>
  tx`delete from ${tx(table)} where ${tx(column)} in (select p.${tx(parentColumn)} from ${tx(parent)} p where p.${tx(parentLeadColumn)} = any(${leadIds}::uuid[]))`.then((r) => r.count)

export const columnTypes = (tx: Tx, table: TableName) =>
  tx<{ name: string; type: string }[]>`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type from pg_attribute a
     where a.attrelid = ${table}::regclass and a.attnum > 0 and not a.attisdropped`

/** Keeps the rows without identity: `nulls` set to null, `redact` replaced by a marker of their type. */
export const anonymiseByLead = (tx: Tx, table: TableName, column: string, leadIds: string[], nulls: string[], redact: { name: string; type: string }[]) => {
  const sets = [
    ...nulls.map((c) => tx`${tx(c)} = null`),
    ...redact.map((c) => (c.type === 'jsonb' || c.type === 'json' ? tx`${tx(c.name)} = '{"redacted": true}'` : tx`${tx(c.name)} = '[redacted]'`)),
  ]
  const list = sets.reduce((acc, s, i) => (i === 0 ? s : tx`${acc}, ${s}`))
  return tx`update ${tx(table)} set ${list} where ${tx(column)} = any(${leadIds}::uuid[])`.then((r) => r.count)
}

/** Rows of a tenant table without a lead id (an inbox) that mention the subject. */
export const deleteMentioning = (tx: Tx, table: TableName, columns: string[], needles: string[]) => {
  const tests = columns.map((c) => tx`privacy.mentions(${tx(c)}::text, ${needles}::text[])`)
  const any = tests.reduce((acc, t, i) => (i === 0 ? t : tx`${acc} or ${t}`))
  return tx`delete from ${tx(table)} where ${any}`.then((r) => r.count)
}

/** The platform tables' doors (migration 0017), scoped to the tenant's numbers. */
const PLATFORM_ERASERS: Record<string, (tx: Tx, needles: string[]) => Promise<number>> = {
  'whatsapp.webhook_deliveries': (tx, needles) => tx<{ n: number }[]>`select privacy.erase_webhook_deliveries(${needles}::text[]) as n`.then((r) => r[0]!.n),
  'whatsapp.unparseable_deliveries': (tx, needles) => tx<{ n: number }[]>`select privacy.erase_unparseable_deliveries(${needles}::text[]) as n`.then((r) => r[0]!.n),
  'whatsapp.quarantined_items': (tx, needles) => tx<{ n: number }[]>`select privacy.erase_quarantined_items(${needles}::text[]) as n`.then((r) => r[0]!.n),
}
export const platformEraserFor = (table: TableName) => PLATFORM_ERASERS[table] ?? null

/** Foreign keys between the given tables (child → parent), to delete children first. */
export const foreignKeysAmong = (tx: Tx, tables: TableName[]) =>
  tx<{ child: string; parent: string }[]>`
    select distinct c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent from pg_constraint c
     where c.contype = 'f' and c.conrelid <> c.confrelid
       and c.conrelid::regclass::text = any(${tables}::text[]) and c.confrelid::regclass::text = any(${tables}::text[])`

export const tableExists = (tx: Tx, table: TableName) =>
  tx<{ present: boolean }[]>`select to_regclass(${table}) is not null as present`.then((r) => r[0]!.present)

// ---------------------------------------------------------------------------------------------------------
// Verification.

export const findMentions = (tx: Tx, needles: string[]) =>
  tx<{ tableName: string; columnName: string }[]>`select table_name, column_name from privacy.find_mentions(${needles}::text[])`

// ---------------------------------------------------------------------------------------------------------
// Suppressions.

/** Adds the suppressions not there yet; returns those added. */
export const insertSuppressions = (tx: Tx, tenantId: string, erasureRequestId: string | null, rows: { kind: string; hash: string }[]) =>
  rows.length === 0
    ? Promise.resolve([] as { id: string; keyKind: string; keyHash: string }[])
    : tx<{ id: string; keyKind: string; keyHash: string }[]>`
        insert into privacy.suppressions (tenant_id, key_kind, key_hash, erasure_request_id)
        select ${tenantId}, x.kind, x.hash, ${erasureRequestId}
          from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as x(kind text, hash text)
        on conflict (tenant_id, key_hash) do nothing
        returning id, key_kind, key_hash`

export const suppressedHashes = (tx: Tx, hashes: string[]) =>
  hashes.length === 0
    ? Promise.resolve(new Set<string>())
    : tx<{ keyHash: string }[]>`select key_hash from privacy.suppressions where key_hash = any(${hashes}::text[])`.then((r) => new Set(r.map((x) => x.keyHash)))

export const countBlockedSubmissions = (tx: Tx, hashCounts: { hash: string; n: number }[]) =>
  tx`update privacy.suppressions s set blocked_submissions = s.blocked_submissions + x.n, last_blocked_at = now()
       from jsonb_to_recordset(${tx.json(hashCounts as never)}::jsonb) as x(hash text, n int) where s.key_hash = x.hash`

const suppressionColumns = (tx: Tx) => tx`id, key_kind, key_hash, erasure_request_id, blocked_submissions, last_blocked_at, created_at`

export const listSuppressions = (tx: Tx, limit: number) =>
  tx<SuppressionView[]>`select ${suppressionColumns(tx)} from privacy.suppressions order by created_at desc, id desc limit ${limit}`

export const deleteSuppression = (tx: Tx, id: string) =>
  tx<SuppressionView[]>`delete from privacy.suppressions where id = ${id} returning ${suppressionColumns(tx)}`.then((r) => r[0] ?? null)

/**
 * The mark of a person back after erasure. The column belongs to the privacy migration (0017); this is its only
 * writer, called by the lead writers' one hook each (WhatsApp ingestion, form processing).
 */
// The lead is marketing/leads' row: it sets the mark (domains/one-writer.test.ts).
export const markReturning = (tx: Tx, leadIds: string[]) => markLeadsReturningAfterErasure(tx, leadIds)
