import { isDatabaseUnavailable } from './db.js'
import { AppError } from './errors.js'
import { groupCommitBatchSize } from './metrics.js'

export interface GroupCommitOptions {
  /** What is being stored, for the 503 messages ("delivery", "submission"). */
  noun: string
  /** Items written by one flush at most. */
  maxBatch?: number
  /**
   * Flushes in flight at once; items arriving meanwhile go in the next batch. One is fastest (measured on the
   * WhatsApp inbox: 10.5k deliveries/s with 1, 5.2k with 4): bigger batches, and commits that enqueue jobs
   * (graphile-worker NOTIFYs) serialize at commit in PostgreSQL anyway.
   */
  maxConcurrentFlushes?: number
  /**
   * Items waiting that a flush needs before it starts beside one already in flight (default 1: any). The first flush
   * always starts at once, so a quiet system adds no waiting; a further one starts only when it has this many to
   * write, since a flush costs about the same CPU (statements, round trips, the commit) whether it writes one item or
   * twenty. Fewer, fuller flushes when the process is busy; as many in flight as allowed when the queue is long.
   */
  minConcurrentBatch?: number
  /** Beyond this many waiting items new ones are refused (503) instead of queueing without end. */
  maxQueued?: number
  /** A flush slower than this fails its callers with 503 (JS-side, so it covers waiting for a connection too). */
  timeoutMs?: number
  /**
   * Single writes in flight at once while the members of a failed batch are retried alone. Small on purpose: the
   * retries use pool connections that the next batch is waiting for.
   */
  retryConcurrency?: number
  /**
   * Whether a failed write means "the database is unavailable" (down, timed out, overloaded) rather than "something
   * in this batch cannot be stored". Such a failure fails the whole batch (503) and is not retried alone: that would
   * only multiply the load on a database that is already not answering. Default: isUnavailableError.
   */
  isUnavailable?: (err: unknown) => boolean
}

/**
 * Writes one batch: one result per item, in order, or an Error for an item that must be refused alone. `signal`
 * aborts when the callers have been answered 503 for a timeout: a flush that has not started writing yet should
 * give up rather than store what nobody was told was stored.
 */
export type BatchWriter<T, R> = (items: T[], signal: AbortSignal) => Promise<(R | Error)[]>

interface Pending<T, R> {
  item: T
  resolve: (result: R) => void
  reject: (err: unknown) => void
}

/**
 * The default classification of a failed write: unavailable when any error in its cause chain is a connection or
 * availability error (lib/db.ts isDatabaseUnavailable), or when the innermost one is our own 503 (a writer that gave
 * up after the deadline, or that saw a concurrent flush). Anything else (a value PostgreSQL cannot store, a
 * constraint, a bug) may be one member's fault, so the members are retried alone.
 */
export function isUnavailableError(err: unknown): boolean {
  let e: unknown = err
  for (let depth = 0; depth < 8; depth++) {
    if (isDatabaseUnavailable(e)) return true
    const cause = (e as { cause?: unknown } | null)?.cause
    if (cause === undefined || cause === null) break
    e = cause
  }
  return e instanceof AppError && e.code === 'UNAVAILABLE'
}

const unavailable = (message: string, retryAfter: string) => new AppError('UNAVAILABLE', message, { headers: { 'retry-after': retryAfter } })

/**
 * Group commit for durable intake: callers that arrive while a flush is in flight are written together by the next
 * one, so acknowledging does not cost a commit (and a disk flush) per request, and a quiet system adds no waiting.
 * A caller's promise settles only when its batch has been written (resolved) or has failed or timed out (rejected),
 * so a route answers success only for what is committed.
 *
 * When a batch write fails for a reason other than the database being unavailable, one member may be the cause (a
 * value PostgreSQL refuses fails the whole statement): each member is then written again alone, a few at a time,
 * so only the offender fails and the others are answered once their own write has committed. An availability
 * failure of the batch, or of any single retry, fails every member still waiting with it.
 */
export class GroupCommit<T, R> {
  private queue: Pending<T, R>[] = []
  private inFlight = 0
  private readonly noun: string
  private readonly maxBatch: number
  private readonly maxConcurrentFlushes: number
  private readonly minConcurrentBatch: number
  private readonly maxQueued: number
  private readonly timeoutMs: number
  private readonly retryConcurrency: number
  private readonly isUnavailable: (err: unknown) => boolean

  constructor(private readonly write: BatchWriter<T, R>, options: GroupCommitOptions) {
    this.noun = options.noun
    this.maxBatch = options.maxBatch ?? 500
    this.maxConcurrentFlushes = options.maxConcurrentFlushes ?? 1
    this.minConcurrentBatch = Math.max(1, options.minConcurrentBatch ?? 1)
    this.maxQueued = options.maxQueued ?? 10_000
    this.timeoutMs = options.timeoutMs ?? 5_000
    this.retryConcurrency = Math.max(1, options.retryConcurrency ?? 4)
    this.isUnavailable = options.isUnavailable ?? isUnavailableError
  }

  add(item: T): Promise<R> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(unavailable('ingestion is overloaded; retry later', '2'))
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.maxConcurrentFlushes && this.queue.length >= (this.inFlight === 0 ? 1 : this.minConcurrentBatch)) {
      const batch = this.queue.splice(0, this.maxBatch)
      this.inFlight++
      void this.flush(batch).finally(() => {
        this.inFlight--
        this.pump()
      })
    }
  }

  private async flush(batch: Pending<T, R>[]): Promise<void> {
    // Members not answered yet. Each is answered once: by its write, by a failure, or by the deadline.
    const open = new Set(batch)
    const resolve = (p: Pending<T, R>, result: R) => open.delete(p) && p.resolve(result)
    const reject = (p: Pending<T, R>, err: unknown) => open.delete(p) && p.reject(err)
    const answer = (members: Pending<T, R>[], results: (R | Error)[]) =>
      members.forEach((p, i) => {
        const result = results[i]
        if (result instanceof Error) reject(p, result)
        else resolve(p, result as R)
      })

    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((done) => {
      timer = setTimeout(() => {
        abort.abort()
        const err = unavailable(`storing the ${this.noun} took too long; retry later`, '2')
        for (const p of [...open]) reject(p, err)
        done()
      }, this.timeoutMs)
    })
    groupCommitBatchSize.observe({ inbox: this.noun }, batch.length)
    const work = async () => {
      try {
        answer(batch, await this.write(batch.map((p) => p.item), abort.signal))
      } catch (err) {
        if (batch.length === 1 || abort.signal.aborted || this.isUnavailable(err)) {
          for (const p of batch) reject(p, err)
          return
        }
        await this.retryAlone(batch, abort.signal, answer, reject)
      }
    }
    try {
      // At the deadline the flush ends (the next batch may start) even if a write is still waiting.
      await Promise.race([work(), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Writes each member alone, retryConcurrency at a time; stops at the first availability failure or the deadline. */
  private async retryAlone(
    batch: Pending<T, R>[],
    signal: AbortSignal,
    answer: (members: Pending<T, R>[], results: (R | Error)[]) => void,
    reject: (p: Pending<T, R>, err: unknown) => void,
  ): Promise<void> {
    let next = 0
    let stopped: unknown = null
    const lane = async () => {
      while (stopped === null && !signal.aborted && next < batch.length) {
        const p = batch[next++]!
        try {
          answer([p], await this.write([p.item], signal))
        } catch (err) {
          reject(p, err)
          if (signal.aborted || this.isUnavailable(err)) stopped = err
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.retryConcurrency, batch.length) }, lane))
    // Not tried (the database went away meanwhile): failed with the availability error, as the whole batch would be.
    if (stopped !== null) for (const p of batch) reject(p, stopped)
  }
}
