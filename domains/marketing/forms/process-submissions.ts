import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { phoneMatchKey } from '../identity/phone.js'
import { resolveLead } from '../leads/service.js'
import { markReturningLeads, screenSubmissions } from '../../privacy/suppression.js'
import * as q from './queries.js'
import { InboxSubmission } from './schemas.js'

export interface ProcessResult {
  processed: string[]
  failed: { submissionId: string; error: string }[]
}

type Status = q.InboxRow['status']

/**
 * Applies stored submissions of one tenant: identity resolution (creating, updating or merging leads), then the
 * submission row, its interaction, consent and event, with the submission's own id. The batch goes in one
 * transaction, each submission in a savepoint, so one that fails (typically a deadlock with another batch
 * resolving the same person) does not hold the others back; those get one more go in a transaction of their own,
 * and the ones that still fail are returned for the caller to retry with backoff. Exactly once: a submission is
 * applied and leaves the inbox in one transaction, and its row is locked while it is applied.
 */
export async function processSubmissions(sql: Sql, tenantId: string, submissionIds: string[]): Promise<ProcessResult> {
  const statuses: Status[] = ['received']
  const result: ProcessResult = { processed: [], failed: [] }
  let retry: string[]
  try {
    const batch = await withTenant(sql, tenantId, (tx) => applyBatch(tx, tenantId, submissionIds, statuses))
    result.processed.push(...batch.processed)
    retry = batch.failed
  } catch {
    retry = submissionIds
  }
  for (const id of retry) {
    try {
      result.processed.push(...(await retryOnConflict(() => withTenant(sql, tenantId, (tx) => applyAlone(tx, tenantId, id, statuses)))))
    } catch (err) {
      result.failed.push({ submissionId: id, error: describe(err) })
    }
  }
  return result
}

/**
 * The slow path for one submission that failed in its batch (status 'failed'): its own transaction, retried at
 * once on a deadlock. Returns the error, or null when it was applied (or is no longer waiting).
 */
export async function processSubmissionAlone(sql: Sql, tenantId: string, submissionId: string): Promise<string | null> {
  try {
    await retryOnConflict(() => withTenant(sql, tenantId, (tx) => applyAlone(tx, tenantId, submissionId, ['received', 'failed'])))
    return null
  } catch (err) {
    return describe(err)
  }
}

const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 2000)

async function applyBatch(tx: Tx, tenantId: string, ids: string[], statuses: Status[]): Promise<{ processed: string[]; failed: string[] }> {
  const rows = await q.lockInboxRows(tx, ids, statuses)
  const processed: string[] = []
  const failed: string[] = []
  const suppressed = await screenSuppressed(tx, rows)
  for (const row of rows) {
    if (suppressed.drop.has(row.id)) {
      processed.push(row.id)
      continue
    }
    // A failed savepoint releases what it locked, so the other writer it collided with can go on.
    const ok = await tx.savepoint((sp) => applySubmission(sp as unknown as Tx, tenantId, row, suppressed.returning.has(row.id))).then(() => true, () => false)
    ;(ok ? processed : failed).push(row.id)
  }
  if (processed.length > 0) await q.deleteInboxRows(tx, processed)
  return { processed, failed }
}

async function applyAlone(tx: Tx, tenantId: string, id: string, statuses: Status[]): Promise<string[]> {
  const [row] = await q.lockInboxRows(tx, [id], statuses)
  if (!row) return []
  const suppressed = await screenSuppressed(tx, [row])
  if (!suppressed.drop.has(id)) await applySubmission(tx, tenantId, row, suppressed.returning.has(id))
  await q.deleteInboxRows(tx, [id])
  return [id]
}

// privacy: a person erased before (privacy.suppressions) is stored again only with fresh consent, as a lead marked
// returning_after_erasure_at; without it the submission is dropped and counted, nothing of it kept.
const screenSuppressed = (tx: Tx, rows: q.InboxRow[]) =>
  screenSubmissions(tx, rows.flatMap((row) => {
    const s = InboxSubmission.safeParse(row.submission)
    return s.success ? [{ id: row.id, email: s.data.lead.email, phoneE164: s.data.lead.phoneE164, consentGranted: s.data.consent?.granted === true }] : []
  }))

async function applySubmission(tx: Tx, tenantId: string, row: q.InboxRow, returning = false): Promise<void> {
  const s = InboxSubmission.parse(row.submission)
  const resolution = await resolveLead(tx, {
    email: s.lead.email,
    phoneE164: s.lead.phoneE164,
    phoneKey: s.lead.phoneE164 ? phoneMatchKey(s.lead.phoneE164) : null,
    name: s.lead.name,
    company: s.lead.company,
    fields: s.customFields,
    source: 'web_form',
    sourceDetails: { formId: row.formId, utm: s.utm, pageUrl: s.pageUrl, referrer: s.referrer },
    at: row.receivedAt,
  }, { tenantId, actor: `form:${row.formId}`, reason: 'form_submission', requestId: row.requestId })
  await q.insertSubmission(tx, {
    id: row.id, tenantId, formId: row.formId, leadId: resolution.leadId, answers: s.answers, utm: s.utm, pageUrl: s.pageUrl, referrer: s.referrer,
    ip: row.ip, userAgent: row.userAgent, fillSeconds: s.fillSeconds, requestId: row.requestId, at: row.receivedAt,
    leadCreated: resolution.created, mergedIds: resolution.mergedIds, consent: s.consent,
  })
  if (returning) await markReturningLeads(tx, [resolution.leadId])
}

/**
 * A deadlock (40P01) with another writer rolls the whole transaction back, so running it again is safe; the
 * submission should not wait for a backoff because two batches held the same person at once.
 */
async function retryOnConflict<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      const code = (err as { code?: string }).code
      if (attempt >= attempts || (code !== '40P01' && code !== '40001')) throw err
    }
  }
}

/** Hands each failure of a batch to its own retrying job, recorded and enqueued in one transaction. */
export async function handOffFailures(sql: Sql, tenantId: string, failed: ProcessResult['failed'], maxAttempts: number): Promise<void> {
  for (const f of failed) await withTenant(sql, tenantId, (tx) => q.handOffFailedSubmission(tx, tenantId, f.submissionId, f.error, maxAttempts))
}

/** Records a failed attempt of the slow path (in its own transaction: the work itself rolled back). */
export function recordSubmissionFailure(sql: Sql, tenantId: string, submissionId: string, error: string, parked: boolean) {
  return withTenant(sql, tenantId, (tx) => q.recordSubmissionFailure(tx, submissionId, error, parked))
}
