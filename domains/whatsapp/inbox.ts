import { createHash } from 'node:crypto'
import type { Sql } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { PROCESS_DELIVERIES_TASK } from './schemas.js'

interface Pending {
  sha: string
  payload: string
  resolve: (result: StoredDelivery) => void
  reject: (err: unknown) => void
}

export interface StoredDelivery {
  /** The delivery's row id; for a duplicate, the id stored the first time. */
  deliveryId: string
  duplicate: boolean
}

export interface InboxOptions {
  /** Deliveries written by one statement at most. */
  maxBatch?: number
  /**
   * Flushes in flight at once; more arrive meanwhile and go in the next batch. One is fastest (measured: 10.5k
   * deliveries/s with 1, 5.2k with 4): bigger batches, and commits that enqueue jobs (graphile-worker NOTIFYs)
   * serialize at commit in PostgreSQL anyway.
   */
  maxConcurrentFlushes?: number
  /** Beyond this many waiting deliveries the inbox refuses new ones (503) instead of queueing without end. */
  maxQueued?: number
  /** A flush slower than this fails its requests with 503, so Meta retries (JS-side, so it covers pool waits too). */
  statementTimeoutMs?: number
}

/**
 * Durable intake for webhook deliveries, with group commit: requests that arrive while a flush is in flight are
 * written together by the next one, in one transaction with one job enqueued for the batch, so acknowledging
 * does not cost a disk flush per request and a quiet system adds no waiting. A caller's promise resolves only
 * after its delivery (and the job that will process it) is committed; a failed or slow flush rejects it, and the
 * route answers 503 so Meta retries.
 */
export class DeliveryInbox {
  private queue: Pending[] = []
  private inFlight = 0
  private readonly maxBatch: number
  private readonly maxConcurrentFlushes: number
  private readonly maxQueued: number
  private readonly statementTimeoutMs: number

  constructor(private readonly sql: Sql, options: InboxOptions = {}) {
    this.maxBatch = options.maxBatch ?? 500
    this.maxConcurrentFlushes = options.maxConcurrentFlushes ?? 1
    this.maxQueued = options.maxQueued ?? 10_000
    this.statementTimeoutMs = options.statementTimeoutMs ?? 5_000
  }

  store(rawBody: Buffer, payloadText: string): Promise<StoredDelivery> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new AppError('UNAVAILABLE', 'ingestion is overloaded; retry later', { headers: { 'retry-after': '2' } }))
    }
    const sha = createHash('sha256').update(rawBody).digest('hex')
    return new Promise<StoredDelivery>((resolve, reject) => {
      this.queue.push({ sha, payload: payloadText, resolve, reject })
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

  private async flush(batch: Pending[]): Promise<void> {
    // The same delivery may be in one batch several times (Meta retrying while we were slow): write it once.
    const unique = new Map<string, string>()
    for (const p of batch) if (!unique.has(p.sha)) unique.set(p.sha, p.payload)
    // Past the deadline the callers get a 503 (Meta will retry); if the write still lands, the retry is a duplicate.
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AppError('UNAVAILABLE', 'storing the delivery took too long; retry later', { headers: { 'retry-after': '2' } })), this.statementTimeoutMs)
    })
    try {
      const rows = await Promise.race([this.write([...unique.keys()], [...unique.values()]), deadline])
      const found = new Map(rows.map((r) => [r.sha, r]))
      const seen = new Set<string>()
      for (const p of batch) {
        const row = found.get(p.sha)
        if (!row) {
          // Written by a concurrent flush that committed after this statement's snapshot: the retry will see it.
          p.reject(new AppError('UNAVAILABLE', 'delivery is being stored by another request; retry later', { headers: { 'retry-after': '1' } }))
          continue
        }
        p.resolve({ deliveryId: row.id, duplicate: row.duplicate || seen.has(p.sha) })
        seen.add(p.sha)
      }
    } catch (err) {
      for (const p of batch) p.reject(err)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * One statement, so one round trip and atomic without an explicit transaction: new deliveries are inserted, one
   * job is enqueued for them (the outbox: both commit or neither does), and rows stored earlier are reported as
   * duplicates. The job CTE is read through a scalar subquery, which makes PostgreSQL run it.
   */
  private write(shas: string[], payloads: string[]) {
    return this.sql<{ sha: string; id: string; duplicate: boolean; jobs: number }[]>`
      with input as (
        select decode(u.sha, 'hex') as body_sha256, u.payload::jsonb as payload, u.ord
          from unnest(${shas}::text[], ${payloads}::text[]) with ordinality as u(sha, payload, ord)
      ), inserted as (
        insert into whatsapp.webhook_deliveries (body_sha256, payload)
        select body_sha256, payload from input order by ord
        on conflict (body_sha256) do nothing
        returning id, body_sha256
      ), job as (
        select graphile_worker.add_job(${PROCESS_DELIVERIES_TASK}, json_build_object('deliveryIds', array_agg(id order by id))) as added
          from inserted having count(*) > 0
      )
      select encode(i.body_sha256, 'hex') as sha, i.id::text as id, false as duplicate, (select count(*)::int from job) as jobs
        from inserted i
      union all
      select encode(d.body_sha256, 'hex'), d.id::text, true, 0
        from whatsapp.webhook_deliveries d
       where d.body_sha256 in (select body_sha256 from input)`
  }
}
