import { isDatabaseUnavailable, type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { phoneMatchKey } from '../leads/identity/phone.js'
import { type BatchSighting, KeyClaimed, resolveLeadsBatch } from '../leads/resolve-batch.js'
import { type Consent, type Interaction, recordConsents, recordInteractions, type Resolution } from '../leads/service.js'
import { type EventRow, recordEvents } from '../../analytics/service.js'
import { type AnonymousLink, linkAnonymousIds } from '../../analytics/platform-events.js'
import { markReturningLeads, screenSubmissions } from '../../privacy/suppression.js'
import * as q from './queries.js'
import { InboxSubmission } from './schemas.js'

export interface ProcessResult {
  processed: string[]
  failed: { submissionId: string; error: string }[]
}

type Status = q.InboxRow['status']

/**
 * Applies stored submissions of one tenant, set-based: the people of the whole batch are resolved at once
 * (domains/marketing/leads/resolve-batch.ts: creating, filling or merging leads), then the submissions, their
 * consents, interactions and events are stored in one statement each, with the submissions' own ids. Exactly once: a
 * submission is applied and leaves the inbox in one transaction, and its row is locked while it is applied. One bad
 * submission never fails its neighbours: a batch that fails (after an immediate retry on a deadlock) is split in
 * halves that are applied on their own, down to the offender alone, which is returned for the caller to retry with
 * backoff. A stored payload this release cannot read fails alone at once.
 */
export async function processSubmissions(sql: Sql, tenantId: string, submissionIds: string[]): Promise<ProcessResult> {
  const result: ProcessResult = { processed: [], failed: [] }
  await applyOrSplit(sql, tenantId, submissionIds, ['received'], result)
  return result
}

async function applyOrSplit(sql: Sql, tenantId: string, ids: string[], statuses: Status[], result: ProcessResult): Promise<void> {
  if (ids.length === 0) return
  try {
    const batch = await retryOnConflict(() => withTenant(sql, tenantId, (tx) => applyBatch(tx, tenantId, ids, statuses)))
    result.processed.push(...batch.processed)
    result.failed.push(...batch.unreadable)
  } catch (err) {
    // A database that is not answering (down, restarting, out of connections) is nobody's fault in the batch:
    // splitting would only add load. The job is retried and the submissions wait in the inbox. Conflicts and
    // timeouts may be one member's doing, so those batches are split.
    if (isDatabaseUnavailable(err) && !MAYBE_A_MEMBER.includes((err as { code?: string }).code ?? '')) throw err
    if (ids.length === 1) {
      result.failed.push({ submissionId: ids[0]!, error: describe(err) })
      return
    }
    const half = Math.ceil(ids.length / 2)
    await applyOrSplit(sql, tenantId, ids.slice(0, half), statuses, result)
    await applyOrSplit(sql, tenantId, ids.slice(half), statuses, result)
  }
}

/**
 * The slow path for one submission that failed in its batch (status 'failed'): its own transaction, retried at
 * once on a deadlock. Returns the error, or null when it was applied (or is no longer waiting).
 */
export async function processSubmissionAlone(sql: Sql, tenantId: string, submissionId: string): Promise<string | null> {
  try {
    const batch = await retryOnConflict(() => withTenant(sql, tenantId, (tx) => applyBatch(tx, tenantId, [submissionId], ['received', 'failed'])))
    return batch.unreadable[0]?.error ?? null
  } catch (err) {
    return describe(err)
  }
}

const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 2000)

interface Applicable {
  row: q.InboxRow
  s: InboxSubmission
}

async function applyBatch(tx: Tx, tenantId: string, ids: string[], statuses: Status[]): Promise<{ processed: string[]; unreadable: ProcessResult['failed'] }> {
  const rows = await q.lockInboxRows(tx, ids, statuses)
  const batch: Applicable[] = []
  const unreadable: ProcessResult['failed'] = []
  for (const row of rows) {
    const parsed = InboxSubmission.safeParse(row.submission)
    if (parsed.success) batch.push({ row, s: parsed.data })
    else unreadable.push({ submissionId: row.id, error: describe(parsed.error) })
  }
  if (batch.length === 0) return { processed: [], unreadable }

  // privacy: a person erased before (privacy.suppressions) is stored again only with fresh consent, as a lead marked
  // returning_after_erasure_at; without it the submission is dropped (it leaves the inbox, counted, nothing kept).
  const suppressed = await screenSubmissions(tx, batch.map(({ row, s }) => ({ id: row.id, email: s.lead.email, phoneE164: s.lead.phoneE164, consentGranted: s.consent?.granted === true })))
  const kept = suppressed.drop.size === 0 ? batch : batch.filter((b) => !suppressed.drop.has(b.row.id))
  const processed = batch.map((b) => b.row.id)
  if (kept.length === 0) {
    await q.deleteInboxRows(tx, processed)
    return { processed, unreadable }
  }
  // Sent together with the batch's lead writes when they allow it, so pipelined, in this order. The first failure
  // (a bad submission) fails the batch.
  await resolveLeadsBatch(tx, tenantId, kept.map(toSighting), (resolutions) => {
    const applied = kept.map((b, i) => ({ ...b, resolution: resolutions[i]! }))
    return [
      q.insertFormSubmissions(tx, tenantId, applied.map(submissionRow)),
      recordConsents(tx, applied.flatMap(consentRows)),
      recordInteractions(tx, applied.map(interactionRow)),
      recordEvents(tx, applied.map(eventRow)),
      linkAnonymousIds(tx, applied.flatMap(anonymousLinks)),
      markReturningLeads(tx, applied.filter((a) => suppressed.returning.has(a.row.id)).map((a) => a.resolution.leadId)),
      q.deleteInboxRows(tx, processed),
    ]
  })
  return { processed, unreadable }
}

type Applied = Applicable & { resolution: Resolution }

const submissionRow = ({ row, s, resolution }: Applied): q.FormSubmissionRow => ({
  id: row.id, form_id: row.formId, lead_id: resolution.leadId, answers: s.answers, utm: s.utm, page_url: s.pageUrl, referrer: s.referrer,
  ip: row.ip, user_agent: row.userAgent, fill_seconds: s.fillSeconds, request_id: row.requestId, submitted_at: row.receivedAt.toISOString(),
})

const consentRows = ({ row, s, resolution }: Applied): Consent[] =>
  s.consent
    ? [{
        leadId: resolution.leadId, channel: 'web_form', formId: row.formId, submissionId: row.id, granted: s.consent.granted, purpose: s.consent.purpose,
        policyVersion: s.consent.policyVersion, policyUrl: s.consent.policyUrl, ip: row.ip, userAgent: row.userAgent, occurredAt: row.receivedAt,
      }]
    : []

const interactionRow = ({ row, s, resolution }: Applied): Interaction => ({
  leadId: resolution.leadId, type: 'form_submitted', channel: 'web', actor: 'lead', occurredAt: row.receivedAt,
  details: { formId: row.formId, submissionId: row.id, utm: s.utm, pageUrl: s.pageUrl, referrer: s.referrer, leadCreated: resolution.created, mergedLeadIds: resolution.mergedIds },
  dedupeKey: `form:sub:${row.id}`,
})

/** The page's visitor id and the partner-link visitor cookie, each linked to the lead (the cookie's clicks and attribution join it). */
const anonymousLinks = ({ s, resolution }: Applied): AnonymousLink[] =>
  [s.anonymousId, s.linkVisitorId].flatMap((id) => (id ? [{ anonymousId: id, leadId: resolution.leadId, via: 'form' as const }] : []))

const eventRow = ({ row, s, resolution }: Applied): EventRow => ({
  name: 'form.submitted', leadId: resolution.leadId, occurredAt: row.receivedAt,
  properties: { formId: row.formId, utm: s.utm, leadCreated: resolution.created }, dedupeKey: `form:sub:${row.id}`, source: 'web_form',
  anonymousId: s.anonymousId,
})

const toSighting = ({ row, s }: Applicable): BatchSighting => ({
  sighting: {
    email: s.lead.email,
    phoneE164: s.lead.phoneE164,
    phoneKey: s.lead.phoneE164 ? phoneMatchKey(s.lead.phoneE164) : null,
    name: s.lead.name,
    company: s.lead.company,
    fields: s.customFields,
    source: 'web_form',
    sourceDetails: { formId: row.formId, utm: s.utm, pageUrl: s.pageUrl, referrer: s.referrer },
    at: row.receivedAt,
  },
  actor: `form:${row.formId}`,
  reason: 'form_submission',
  requestId: row.requestId,
})

const MAYBE_A_MEMBER = ['40P01', '40001', '57014', '55P03']
const isConflict = (err: unknown) => err instanceof KeyClaimed || ['40P01', '40001'].includes((err as { code?: string } | null)?.code ?? '')

/**
 * A deadlock (40P01) with another writer, or a person's key claimed by one (KeyClaimed), rolls the whole
 * transaction back, so running it again is safe; the submission should not wait for a backoff because two writers
 * held the same person at once.
 */

async function retryOnConflict<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      if (attempt >= attempts || !isConflict(err)) throw err
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
