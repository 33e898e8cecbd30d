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
 * Flushes in flight at once. A flush is four round trips (begin; lookup and lock; writes; commit) and little work in
 * PostgreSQL (under load about 8 ms of its CPU in a 60 ms flush of 25 answers: the rest is waiting, for the commit's
 * WAL flush and for the scheduler), so one at a time leaves the database waiting most of the time. Measured at 50
 * connections (ops/bench/assessments/answers.ts, load 8–14, 4 runs each, alternating with the code before): 3 in flight
 * gave 556 answers/s (median) against 406 with 1 (that code also had one round trip more per flush). 5 and 8 were
 * not better (single noisy runs): batches shrink and each answer then costs more CPU in Node and PostgreSQL
 * (ops/bench/assessments/profile-load.ts). On a quiet machine (load 3) the route is bound by Node's CPU instead and 1
 * and 3 measured alike (2,038 and 1,804 answers/s, single runs).
 */
export const ANSWER_FLUSHES_IN_FLIGHT = 3

/**
 * Answers a flush beside another in flight needs before it starts (GroupCommit's minConcurrentBatch). A flush costs
 * the webhooks process about 1.7–2 ms of CPU whatever it holds (its six statements and four round trips through
 * postgres.js and the kernel; about 0.5 ms for the bare `begin; select; commit` shape alone), and each answer in it
 * about 0.1 ms more, so three flushes in flight that each start with whatever is waiting were mostly small and cost
 * the process its CPU: at 50 connections (ops/bench/assessments/answer-cpu.ts, the main thread's CPU per answer, the
 * variants alternating in one process, load 9–15) mean batches of 10 cost 390–410 µs per answer, 16 waiting ones
 * 280–290 µs (mean batch 15–16), one flush in flight 250–260 µs (mean batch 24–25) but no overlap of round trips
 * when the database is the slow side. With 16 a long queue still gets three flushes in flight.
 */
export const ANSWER_MIN_CONCURRENT_BATCH = 16

/**
 * Web answers with group commit (lib/group-commit.ts): answers arriving while flushes are in flight are written
 * together by the next one, in one transaction (service.ts answerBatch: one commit and a few statements for the
 * batch instead of a transaction per answer). Each participant is answered only after the commit that holds their
 * answer; a refused answer (404, 409, 400) is refused alone and its neighbours are written. A batch that fails
 * otherwise is retried member by member, so only an offender fails.
 *
 * Several flushes run at once, so one session's answers are kept in order here: an answer joins a batch only once the
 * session's answer before it (same token) has been answered, committed or refused. Two batches in flight therefore
 * never hold the same session (they lock disjoint rows and never wait for each other), and a participant who sends
 * the next answer before the last one is acknowledged has them applied in the order sent.
 */
export class AnswerInbox {
  private readonly commit: GroupCommit<PendingAnswer, SessionStateView>
  /** Per token with an answer waiting or in flight: the last one's settlement (the next answer of it waits for it). */
  private readonly tails = new Map<string, Promise<unknown>>()

  constructor(private readonly sql: Sql, private readonly options: AnswerInboxOptions = {}) {
    // Members retried alone go one at a time, as before: they are few, and use connections the next batch waits for.
    this.commit = new GroupCommit((batch, signal) => this.flush(batch, signal), {
      maxBatch: 200, maxConcurrentFlushes: ANSWER_FLUSHES_IN_FLIGHT, minConcurrentBatch: ANSWER_MIN_CONCURRENT_BATCH, ...options, retryConcurrency: 1, noun: 'answer',
    })
  }

  /** The session's state after this answer, once committed; rejects with the answer's own error, or 503. */
  answer(token: string, body: AnswerBody): Promise<SessionStateView> {
    if (!TOKEN_PATTERN.test(token)) return Promise.reject(new AppError('NOT_FOUND', 'session not found'))
    const item = { tokenHash: sha256(token), body }
    const before = this.tails.get(token)
    const result = before ? before.then(() => this.commit.add(item)) : this.commit.add(item)
    const settled = result.then(() => undefined, () => undefined)
    this.tails.set(token, settled)
    void settled.then(() => {
      if (this.tails.get(token) === settled) this.tails.delete(token)
    })
    return result
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
