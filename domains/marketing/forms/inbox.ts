import type { Sql } from '../../../lib/db.js'
import { AppError, isAppError } from '../../../lib/errors.js'
import { GroupCommit, type GroupCommitOptions } from '../../../lib/group-commit.js'
import { type NewInboxRow, storeInboxBatches } from './queries.js'

/**
 * PostgreSQL's data exceptions (class 22: NUL in text or jsonb, invalid JSON such as a lone surrogate) and program
 * limits (class 54: a value nested too deep), or a JS stack overflow serializing one.
 */
const isUnstorableValue = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)) || err instanceof RangeError
}

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
      // What the boundary should have refused (lib/http/safe-json.ts). Alone, it is this submission's fault and
      // retrying cannot help; in a batch, the group commit retries each member alone to find out whose it is.
      if (isUnstorableValue(err)) throw new AppError('BAD_REQUEST', 'the submission holds a value that cannot be stored', { cause: err })
      throw new AppError('UNAVAILABLE', 'the submission could not be stored; retry later', { headers: { 'retry-after': '2' }, cause: err })
    }
    return batch.map(() => true as const)
  }
}
