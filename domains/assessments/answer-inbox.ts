import { sha256 } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import { AppError, isAppError } from '../../lib/errors.js'
import { GroupCommit, type GroupCommitOptions, isUnavailableError } from '../../lib/group-commit.js'
import type { AnswerBody, SessionStateView } from './schemas.js'
import { answerBatch, type PendingAnswer } from './service.js'

const TOKEN_PATTERN = /^ast_[A-Za-z0-9_-]{43}$/

/** PostgreSQL's data exceptions and program limits (classes 22, 54): a value that cannot be stored. */
const isUnstorableValue = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)) || err instanceof RangeError
}

export type AnswerInboxOptions = Omit<GroupCommitOptions, 'noun'> & {
  /** Told about flush failures that are not ours to explain to the participant (they get a plain 503). */
  onError?: (err: unknown) => void
}

/**
 * Web answers with group commit (lib/group-commit.ts): answers arriving while a flush is in flight are written
 * together by the next one, in one transaction (service.ts answerBatch: one commit and a few statements for the
 * batch instead of a transaction per answer). Each participant is answered only after the commit that holds their
 * answer; a refused answer (404, 409, 400) is refused alone and its neighbours are written. A batch that fails
 * otherwise is retried member by member, so only an offender fails.
 */
export class AnswerInbox {
  private readonly commit: GroupCommit<PendingAnswer, SessionStateView>

  constructor(private readonly sql: Sql, private readonly options: AnswerInboxOptions = {}) {
    // One flush in flight (the default of the WhatsApp inbox): a flush's commit enqueues analysis jobs and NOTIFYs
    // the live event stream, which serialize at commit anyway; meanwhile the next batch fills up.
    // Members retried alone go one at a time: two answers of one session must not overtake each other.
    this.commit = new GroupCommit((batch, signal) => this.flush(batch, signal), { maxBatch: 200, ...options, retryConcurrency: 1, noun: 'answer' })
  }

  /** The session's state after this answer, once committed; rejects with the answer's own error, or 503. */
  answer(token: string, body: AnswerBody): Promise<SessionStateView> {
    if (!TOKEN_PATTERN.test(token)) return Promise.reject(new AppError('NOT_FOUND', 'session not found'))
    return this.commit.add({ tokenHash: sha256(token), body })
  }

  private async flush(batch: PendingAnswer[], signal: AbortSignal): Promise<(SessionStateView | Error)[]> {
    try {
      return await answerBatch(this.sql, batch, signal)
    } catch (err) {
      if (isAppError(err)) throw err
      this.options.onError?.(err)
      // Alone, a value PostgreSQL refuses is this answer's fault; in a batch the group commit retries each alone.
      if (batch.length === 1 && isUnstorableValue(err)) throw new AppError('BAD_REQUEST', 'the answer holds a value that cannot be stored', { cause: err })
      if (isUnavailableError(err) || batch.length > 1) throw new AppError('UNAVAILABLE', 'the answer could not be stored; retry later', { headers: { 'retry-after': '2' }, cause: err })
      throw err
    }
  }
}
