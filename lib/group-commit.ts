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
  /** Beyond this many waiting items new ones are refused (503) instead of queueing without end. */
  maxQueued?: number
  /** A flush slower than this fails its callers with 503 (JS-side, so it covers waiting for a connection too). */
  timeoutMs?: number
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

const unavailable = (message: string, retryAfter: string) => new AppError('UNAVAILABLE', message, { headers: { 'retry-after': retryAfter } })

/**
 * Group commit for durable intake: callers that arrive while a flush is in flight are written together by the next
 * one, so acknowledging does not cost a commit (and a disk flush) per request, and a quiet system adds no waiting.
 * A caller's promise settles only when its batch has been written (resolved) or has failed or timed out (rejected),
 * so a route answers success only for what is committed.
 */
export class GroupCommit<T, R> {
  private queue: Pending<T, R>[] = []
  private inFlight = 0
  private readonly noun: string
  private readonly maxBatch: number
  private readonly maxConcurrentFlushes: number
  private readonly maxQueued: number
  private readonly timeoutMs: number

  constructor(private readonly write: BatchWriter<T, R>, options: GroupCommitOptions) {
    this.noun = options.noun
    this.maxBatch = options.maxBatch ?? 500
    this.maxConcurrentFlushes = options.maxConcurrentFlushes ?? 1
    this.maxQueued = options.maxQueued ?? 10_000
    this.timeoutMs = options.timeoutMs ?? 5_000
  }

  add(item: T): Promise<R> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(unavailable('ingestion is overloaded; retry later', '2'))
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      this.pump()
    })
  }

  private pump(): void {
    while (this.inFlight < this.maxConcurrentFlushes && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch)
      this.inFlight++
      void this.flush(batch).finally(() => {
        this.inFlight--
        this.pump()
      })
    }
  }

  private async flush(batch: Pending<T, R>[]): Promise<void> {
    const abort = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort()
        reject(unavailable(`storing the ${this.noun} took too long; retry later`, '2'))
      }, this.timeoutMs)
    })
    groupCommitBatchSize.observe({ inbox: this.noun }, batch.length)
    try {
      const results = await Promise.race([this.write(batch.map((p) => p.item), abort.signal), deadline])
      batch.forEach((p, i) => {
        const result = results[i]
        if (result instanceof Error) p.reject(result)
        else p.resolve(result as R)
      })
    } catch (err) {
      for (const p of batch) p.reject(err)
    } finally {
      clearTimeout(timer)
    }
  }
}
