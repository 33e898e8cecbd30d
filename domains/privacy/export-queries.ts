import type { PendingQuery, Row } from 'postgres'
import type { Tx } from '../../lib/db.js'
import { LEAD_REFERENCES, type LeadReference, type TableName } from '../marketing/leads/lead-references.js'
import type { ExportView } from './export-schemas.js'

// ---------------------------------------------------------------------------------------------------------
// Requests.

type ExportRow = Omit<ExportView, 'status'> & { status: 'pending' | 'running' | 'ready' | 'failed'; leadId: string | null; tenantId: string }

const exportColumns = (tx: Tx) => tx`
  id, tenant_id, lead_id, status, subject_kind, subject_hash, created_at, ready_at, expires_at, row_counts, bytes::float8 as bytes, error`

export const insertExportRequest = (
  tx: Tx,
  r: { tenantId: string; leadId: string | null; subjectKind: 'lead' | 'email' | 'phone'; subjectHash: string; requestedBy: string; requestId: string | null },
) =>
  tx<{ id: string; status: 'pending' }[]>`
    insert into privacy.export_requests (tenant_id, lead_id, subject_kind, subject_hash, requested_by, request_id)
    values (${r.tenantId}, ${r.leadId}, ${r.subjectKind}, ${r.subjectHash}, ${r.requestedBy}, ${r.requestId})
    returning id, status`.then((rows) => rows[0]!)

/** The outbox: the job commits with the request. Ids only in the payload. */
export const enqueueExportJob = (tx: Tx, task: string, tenantId: string, exportId: string) =>
  tx`select graphile_worker.add_job(${task}, json_build_object('tenantId', ${tenantId}::uuid, 'exportId', ${exportId}::uuid), max_attempts := 5)`

export const findExportRequest = (tx: Tx, exportId: string) =>
  tx<ExportRow[]>`select ${exportColumns(tx)} from privacy.export_requests where id = ${exportId}`.then((r) => r[0] ?? null)

/** Locks the request for its job: a second copy of the job waits, then finds it ready. */
export const lockExportRequest = (tx: Tx, exportId: string) =>
  tx<ExportRow[]>`select ${exportColumns(tx)} from privacy.export_requests where id = ${exportId} for update`.then((r) => r[0] ?? null)

export const markExportRunning = (tx: Tx, exportId: string) =>
  tx`update privacy.export_requests set status = 'running', started_at = now(), error = null where id = ${exportId} and status in ('pending', 'running', 'failed')`

export const markExportReady = (tx: Tx, exportId: string, rowCounts: Record<string, number>, bytes: number, ttlDays: number) =>
  tx`
    update privacy.export_requests
       set status = 'ready', ready_at = now(), expires_at = now() + make_interval(days => ${ttlDays}),
           row_counts = ${tx.json(rowCounts)}, bytes = ${bytes}, error = null
     where id = ${exportId}`

export const markExportFailed = (tx: Tx, exportId: string, code: string) =>
  tx`update privacy.export_requests set status = 'failed', error = ${code} where id = ${exportId} and status <> 'ready'`

export const deleteExportChunks = (tx: Tx, exportId: string) => tx`delete from privacy.export_chunks where export_id = ${exportId}`

export const insertExportChunk = (tx: Tx, c: { tenantId: string; exportId: string; seq: number; body: string }) =>
  tx`insert into privacy.export_chunks (tenant_id, export_id, seq, body) values (${c.tenantId}, ${c.exportId}, ${c.seq}, ${c.body})`

/** The next few pieces of the document after `afterSeq`, in order. */
export const exportChunksAfter = (tx: Tx, exportId: string, afterSeq: number, limit: number) =>
  tx<{ seq: number; body: string }[]>`
    select seq, body from privacy.export_chunks where export_id = ${exportId} and seq > ${afterSeq} order by seq limit ${limit}`

// ---------------------------------------------------------------------------------------------------------
// The subject.

export const leadExists = (tx: Tx, leadId: string) =>
  tx<{ id: string }[]>`select id from marketing.leads where id = ${leadId}`.then((r) => r.length > 0)

/** Every lead, merged away or not, that holds this email or phone key: merged leads keep their values. */
export const leadIdsByKey = (tx: Tx, tenantId: string, key: { email: string } | { phoneKey: string }) =>
  ('email' in key
    ? tx<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenantId} and email = ${key.email} order by merged_into nulls first, created_at`
    : tx<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenantId} and phone_key = ${key.phoneKey} order by merged_into nulls first, created_at`
  ).then((r) => r.map((x) => x.id))

/**
 * The leads that are one person with `leadId`: up the merged_into chain to the survivor, then every lead merged
 * into it (at any depth). A merge said they are one person, so the export covers them all.
 */
export const leadFamily = (tx: Tx, tenantId: string, leadId: string) =>
  tx<{ id: string }[]>`
    with recursive up as (
      select id, merged_into, 0 as depth from marketing.leads where tenant_id = ${tenantId} and id = ${leadId}
      union all
      select l.id, l.merged_into, up.depth + 1 from marketing.leads l join up on l.id = up.merged_into
       where l.tenant_id = ${tenantId} and up.depth < 100
    ), top as (
      select id from up where merged_into is null
      union select ${leadId}::uuid where not exists (select 1 from up where merged_into is null)
    ), down as (
      select id, 0 as depth from top
      union
      select l.id, down.depth + 1 from marketing.leads l join down on l.merged_into = down.id
       where l.tenant_id = ${tenantId} and down.depth < 100
    )
    select distinct id from down`.then((r) => r.map((x) => x.id))

/** The identity keys of those leads, to find rows that hold no lead id (the form inbox). */
export const identityKeysOf = (tx: Tx, tenantId: string, leadIds: string[]) =>
  tx<{ value: string }[]>`
    select distinct v as value from marketing.leads l,
           unnest(array[l.email, l.phone_e164, l.wa_id]) as v
     where l.tenant_id = ${tenantId} and l.id = any(${leadIds}::uuid[]) and v is not null and length(v) >= 5`
    .then((r) => r.map((x) => x.value))

// ---------------------------------------------------------------------------------------------------------
// Rows of every catalogued table that belong to the subject, as JSON text (the database renders it: nothing is
// parsed or re-serialised here, and a row is one string in memory).

type Fragment = PendingQuery<Row[]>

/** Rows of `table` that reach the subject through any of its catalog entries. */
function subjectWhere(tx: Tx, table: TableName, alias: string | null, leadIds: string[], keys: string[], depth = 0): Fragment {
  if (depth > 5) throw new Error(`catalog parent chain too deep at ${table}`)
  const col = (c: string) => (alias ? tx(`${alias}.${c}`) : tx(c))
  const entries = LEAD_REFERENCES.filter((e) => e.table === table)
  const parts = entries.map((e: LeadReference): Fragment => {
    const reach = e.reach
    if (reach.by === 'lead') return tx`${col(reach.column)} = any(${leadIds}::uuid[])`
    if (reach.by === 'parent') {
      return tx`${col(reach.column)} in (select ${tx(reach.parentColumn)} from ${tx(reach.parent)} where ${subjectWhere(tx, reach.parent, null, leadIds, keys, depth + 1)})`
    }
    // Content: the subject's email, phone or wa_id appears in the stored document. Names are not searched: they
    // are not unique, and an export must hold nothing of anyone else.
    if (keys.length === 0) return tx`false`
    return reach.columns
      .map((c) => tx`exists (select 1 from unnest(${keys}::text[]) k where position(k in ${col(c)}::text) > 0)`)
      .reduce((a, b) => tx`${a} or ${b}`)
  })
  if (parts.length === 0) return tx`false`
  return tx`(${parts.reduce((a, b) => tx`${a} or ${b}`)})`
}

/**
 * What a table's rows carry besides their own columns: a consent names its form, whose definition holds the consent
 * settings the text came from; a submission names its form.
 */
function rowDocument(tx: Tx, table: TableName): { doc: Fragment; join: Fragment } {
  if (table === 'marketing.consents' || table === 'marketing.form_submissions') {
    return {
      doc: tx`(to_jsonb(t) || jsonb_build_object('form', case when f.id is null then null else jsonb_build_object(
                 'id', f.id, 'name', f.name, 'consent', f.definition -> 'consent') end))::text`,
      join: tx`left join marketing.forms f on f.id = t.form_id`,
    }
  }
  return { doc: tx`to_jsonb(t)::text`, join: tx`` }
}

/** The subject's rows of one catalogued table, `batch` at a time from a server-side cursor. */
export const subjectRowsCursor = (tx: Tx, tenantId: string, table: TableName, leadIds: string[], keys: string[], batch: number) => {
  const { doc, join } = rowDocument(tx, table)
  return tx<{ doc: string }[]>`
    select ${doc} as doc from ${tx(table)} t ${join}
     where t.tenant_id = ${tenantId} and ${subjectWhere(tx, table, 't', leadIds, keys)}`.cursor(batch)
}
