import type { Queryable, Tx } from '../../../lib/db.js'
import type { Keyset } from '../leads/queries.js'
import type { z } from 'zod'
import { type FormDefinition, type InboxSubmission, PROCESS_SUBMISSION_TASK } from './schemas.js'

/** A form definition as stored: everything but the name, which is a column of its own. */
export type StoredDefinition = Omit<FormDefinition, 'name'>

export interface FormRow {
  id: string
  publicKey: string
  name: string
  definition: StoredDefinition
  status: 'active' | 'archived'
  archivedAt: Date | null
  createdBy: string
  createdAt: Date
  updatedAt: Date
}

const formColumns = (tx: Queryable) => tx`id, public_key, name, definition, status, archived_at, created_by, created_at, updated_at`

export const insertForm = (tx: Tx, row: { tenantId: string; publicKey: string; name: string; definition: StoredDefinition; createdBy: string }) =>
  tx<FormRow[]>`
    insert into marketing.forms (tenant_id, public_key, name, definition, created_by)
    values (${row.tenantId}, ${row.publicKey}, ${row.name}, ${tx.json(row.definition as never)}, ${row.createdBy})
    returning ${formColumns(tx)}`.then((r) => r[0]!)

export const listForms = (tx: Tx, limit: number, after: Keyset | null, includeArchived: boolean) =>
  tx<(FormRow & { sortAt: string })[]>`
    select ${formColumns(tx)}, created_at::text as sort_at from marketing.forms
     where true
       ${includeArchived ? tx`` : tx`and status = 'active'`}
       ${after ? tx`and (created_at, id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx``}
     order by created_at desc, id desc
     limit ${limit}`

export const findForm = (tx: Tx, formId: string, options: { lock?: boolean } = {}) =>
  tx<FormRow[]>`select ${formColumns(tx)} from marketing.forms where id = ${formId} ${options.lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const updateForm = (tx: Tx, formId: string, change: { name: string; definition: StoredDefinition }) =>
  tx<FormRow[]>`
    update marketing.forms set name = ${change.name}, definition = ${tx.json(change.definition as never)}, updated_at = now()
     where id = ${formId}
    returning ${formColumns(tx)}`.then((r) => r[0] ?? null)

/** Archiving twice keeps the first time. */
export const archiveForm = (tx: Tx, formId: string) =>
  tx<FormRow[]>`
    update marketing.forms set status = 'archived', archived_at = coalesce(archived_at, now()), updated_at = now()
     where id = ${formId}
    returning ${formColumns(tx)}`.then((r) => r[0] ?? null)

export interface PublicFormRow {
  id: string
  tenantId: string
  status: 'active' | 'archived'
  definition: StoredDefinition
  tenantStatus: 'active' | 'suspended'
  tenantDefaultCountry: string
}

/** Before any tenant is known: the narrow security definer door, by public key. */
export const findPublicForm = (sql: Queryable, publicKey: string) =>
  sql<PublicFormRow[]>`
    select id, tenant_id, status, definition, tenant_status, tenant_default_country from marketing.find_public_form(${publicKey})`.then((r) => r[0] ?? null)

export const listSubmissions = (tx: Tx, formId: string, limit: number, before: Keyset | null) =>
  tx<{ id: string; leadId: string; answers: unknown; utm: unknown; pageUrl: string | null; referrer: string | null; submittedAt: Date; sortAt: string }[]>`
    select id, lead_id, answers, utm, page_url, referrer, submitted_at, submitted_at::text as sort_at
      from marketing.form_submissions
     where form_id = ${formId}
       ${before ? tx`and (submitted_at, id) < (${before.at}::timestamptz, ${before.id}::uuid)` : tx``}
     order by submitted_at desc, id desc
     limit ${limit}`

// ---------------------------------------------------------------------------------------------------------
// The submission inbox: validated submissions stored before the answer, applied by the worker.

export interface NewInboxRow {
  id: string
  formId: string
  submission: z.input<typeof InboxSubmission>
  ip: string | null
  userAgent: string | null
  referer: string | null
  requestId: string | null
  receivedAt: Date
}

export interface InboxRow extends Omit<NewInboxRow, 'submission'> {
  tenantId: string
  /** Parsed with InboxSubmission by the worker: rows stored by an older release may have an older shape. */
  submission: unknown
  status: 'received' | 'failed' | 'parked'
  attempts: number
}

/**
 * One group commit, in one statement: per tenant, its rows and one job to apply them (the outbox: everything
 * commits or nothing does). The function sets each tenant for row-level security before inserting its rows.
 */
export const storeInboxBatches = (sql: Queryable, batches: { tenantId: string; rows: NewInboxRow[] }[]) => {
  const data = batches.map((b) => ({
    tenantId: b.tenantId,
    rows: b.rows.map((r) => ({
      id: r.id, form_id: r.formId, submission: r.submission, ip: r.ip, user_agent: r.userAgent, referer: r.referer, request_id: r.requestId,
      received_at: r.receivedAt.toISOString(),
    })),
  }))
  return sql<{ stored: number; jobs: number }[]>`select stored, jobs from marketing.store_form_submissions(${sql.json(data as never)}::jsonb)`.then((r) => r[0]!)
}

/**
 * The inbox rows of `ids` still waiting in one of `statuses`, locked, oldest first (so a person's first submission
 * creates the lead and later ones update it). skip locked: a row another job is applying right now is that job's.
 */
export const lockInboxRows = (tx: Tx, ids: string[], statuses: InboxRow['status'][]) =>
  tx<InboxRow[]>`
    select id, tenant_id, form_id, submission, host(ip) as ip, user_agent, referer, request_id, received_at, status, attempts
      from marketing.form_submission_inbox
     where id = any(${ids}::uuid[]) and status = any(${statuses}::text[])
     order by received_at, id
     for update skip locked`

/** Applied submissions leave the inbox in the transaction that applied them: a replayed job finds nothing to do. */
export const deleteInboxRows = (tx: Tx, ids: string[]) => tx`delete from marketing.form_submission_inbox where id = any(${ids}::uuid[])`

/** A submission that failed in its batch goes to a retrying job of its own, recorded and enqueued together. */
export const handOffFailedSubmission = (tx: Tx, tenantId: string, submissionId: string, error: string, maxAttempts: number) =>
  tx`
    with failed as (
      update marketing.form_submission_inbox set status = 'failed', attempts = attempts + 1, last_error = ${error}
       where id = ${submissionId} and status = 'received'
      returning id
    )
    select graphile_worker.add_job(${PROCESS_SUBMISSION_TASK}, json_build_object('tenantId', ${tenantId}::text, 'submissionId', id::text),
                                   max_attempts := ${maxAttempts}, job_key := 'marketing:submission:' || id::text)
      from failed`

/** Records a failed attempt of the slow path; the last one parks the submission for an operator. */
export const recordSubmissionFailure = (tx: Tx, submissionId: string, error: string, parked: boolean) =>
  tx`
    update marketing.form_submission_inbox
       set attempts = attempts + 1, last_error = ${error}, status = ${parked ? 'parked' : 'failed'}
     where id = ${submissionId} and status <> 'parked'`

/** Submissions still in the inbox (received, failed or parked), newest first, with their last error. */
export const listInboxRows = (tx: Tx, filter: { status?: InboxRow['status']; limit: number; beforeReceivedAt?: Date | null }) =>
  tx<{ id: string; formId: string; status: string; attempts: number; lastError: string | null; receivedAt: Date }[]>`
    select id, form_id, status, attempts, last_error, received_at
      from marketing.form_submission_inbox
     where true
       ${filter.status ? tx`and status = ${filter.status}` : tx``}
       ${filter.beforeReceivedAt ? tx`and received_at < ${filter.beforeReceivedAt}` : tx``}
     order by received_at desc, id desc
     limit ${filter.limit}`

/**
 * Puts a parked submission back in line: it becomes 'failed' (what the retrying job picks up) and its job is added
 * again, in one statement. Reusing the job key revives the job graphile-worker kept after its last attempt.
 */
export const replayInboxRow = (tx: Tx, tenantId: string, submissionId: string, maxAttempts: number) =>
  tx<{ id: string }[]>`
    with revived as (
      update marketing.form_submission_inbox set status = 'failed'
       where id = ${submissionId} and status in ('parked', 'failed')
      returning id
    )
    select id, graphile_worker.add_job(${PROCESS_SUBMISSION_TASK}, json_build_object('tenantId', ${tenantId}::text, 'submissionId', id::text),
                                       max_attempts := ${maxAttempts}, job_key := 'marketing:submission:' || id::text) as job
      from revived`.then((r) => r.length > 0)

export interface FormSubmissionRow {
  id: string
  form_id: string
  lead_id: string
  answers: Record<string, unknown>
  utm: Record<string, string>
  page_url: string | null
  referrer: string | null
  ip: string | null
  user_agent: string | null
  fill_seconds: number | null
  request_id: string | null
  submitted_at: string
}

/** The submissions of a batch, in one statement (their ids are the inbox's: a second insert of one is refused). */
export const insertFormSubmissions = (tx: Tx, tenantId: string, rows: FormSubmissionRow[]) =>
  rows.length === 0
    ? Promise.resolve()
    : tx`
        insert into marketing.form_submissions (id, tenant_id, form_id, lead_id, answers, utm, page_url, referrer, ip, user_agent, fill_seconds, request_id, submitted_at)
        select x.id, ${tenantId}, x.form_id, x.lead_id, x.answers, x.utm, x.page_url, x.referrer, x.ip, x.user_agent, x.fill_seconds, x.request_id, x.submitted_at
          from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
               as x(id uuid, form_id uuid, lead_id uuid, answers jsonb, utm jsonb, page_url text, referrer text, ip inet, user_agent text,
                    fill_seconds numeric, request_id text, submitted_at timestamptz)`.then(() => undefined)
