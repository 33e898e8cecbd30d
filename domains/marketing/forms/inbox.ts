import type { Sql } from '../../../lib/db.js'
import { AppError, isAppError } from '../../../lib/errors.js'
import { GroupCommit, type GroupCommitOptions } from '../../../lib/group-commit.js'
import { type NewInboxRow, storeInboxBatches } from './queries.js'

/** A validated submission, ready to be stored: its id is the submissionId the submitter is answered with. */
export interface PendingSubmission extends NewInboxRow {
  tenantId: string
}

export interface SubmissionStore {
  /** Resolves once the submission and the job that will apply it are committed; rejects with a 503 otherwise. */
  store(submission: PendingSubmission): Promise<void>
}

export type SubmissionInboxOptions = Omit<GroupCommitOptions, 'noun'> & {
  /** Told about flush failures that are not ours to explain to the submitter (they get a plain 503). */
  onError?: (err: unknown) => void
}

/**
 * Durable intake for public form submissions, with group commit (lib/group-commit.ts): submissions arriving while
 * a flush is in flight are written together by the next one, in one statement (one round trip, one commit) that
 * inserts each tenant's rows under that tenant's row-level security and enqueues one job per tenant for them.
 */
export class SubmissionInbox implements SubmissionStore {
  private readonly commit: GroupCommit<PendingSubmission, true>

  constructor(private readonly sql: Sql, private readonly options: SubmissionInboxOptions = {}) {
    this.commit = new GroupCommit((batch, signal) => this.flush(batch, signal), { ...options, noun: 'submission' })
  }

  async store(submission: PendingSubmission): Promise<void> {
    await this.commit.add(submission)
  }

  private async flush(batch: PendingSubmission[], signal: AbortSignal): Promise<true[]> {
    const byTenant = new Map<string, PendingSubmission[]>()
    for (const s of batch) {
      const rows = byTenant.get(s.tenantId)
      if (rows) rows.push(s)
      else byTenant.set(s.tenantId, [s])
    }
    try {
      const conn = await this.sql.reserve()
      try {
        // Waited too long for a connection: the submitters were already told 503, so nothing may be stored now.
        if (signal.aborted) throw new AppError('UNAVAILABLE', 'storing the submission took too long; retry later', { headers: { 'retry-after': '2' } })
        await storeInboxBatches(conn, [...byTenant].map(([tenantId, rows]) => ({ tenantId, rows })))
      } finally {
        conn.release()
      }
    } catch (err) {
      if (isAppError(err)) throw err
      this.options.onError?.(err)
      throw new AppError('UNAVAILABLE', 'the submission could not be stored; retry later', { headers: { 'retry-after': '2' }, cause: err })
    }
    return batch.map(() => true as const)
  }
}
