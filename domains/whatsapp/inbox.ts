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
  /** Flushes in flight at once; more arrive meanwhile and go in the next batch. */
  maxConcurrentFlushes?: number
  /** Beyond this many waiting deliveries the inbox refuses new ones (503) instead of queueing without end. */
  maxQueued?: number
  /** A flush slower than this fails its requests with 503, so Meta retries. */
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
    this.maxBatch = options.maxBatch ?? 256
    this.maxConcurrentFlushes = options.maxConcurrentFlushes ?? 2
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
    try {
      const ids = await this.sql.begin(async (tx) => {
        await tx`select set_config('statement_timeout', ${String(this.statementTimeoutMs)}, true)`
        const inserted = await tx<{ id: string; sha: string }[]>`
          insert into whatsapp.webhook_deliveries (body_sha256, payload)
          select decode(u.sha, 'hex'), u.payload::jsonb
            from unnest(${[...unique.keys()]}::text[], ${[...unique.values()]}::text[]) with ordinality as u(sha, payload, ord)
           order by u.ord
          on conflict (body_sha256) do nothing
          returning id::text, encode(body_sha256, 'hex') as sha`
        if (inserted.length > 0) {
          // The outbox: the job that processes these rows commits with them, or neither does.
          await tx`select graphile_worker.add_job(${PROCESS_DELIVERIES_TASK}, json_build_object('deliveryIds', ${inserted.map((r) => r.id)}::bigint[]))`
        }
        const found = new Map(inserted.map((r) => [r.sha, { deliveryId: r.id, duplicate: false }]))
        const missing = [...unique.keys()].filter((sha) => !found.has(sha))
        if (missing.length > 0) {
          const existing = await tx<{ id: string; sha: string }[]>`
            select id::text, encode(body_sha256, 'hex') as sha from whatsapp.webhook_deliveries
             where body_sha256 = any(array(select decode(h, 'hex') from unnest(${missing}::text[]) as h))`
          for (const r of existing) found.set(r.sha, { deliveryId: r.id, duplicate: true })
        }
        return found
      })
      const seen = new Set<string>()
      for (const p of batch) {
        const result = ids.get(p.sha)
        if (!result) {
          p.reject(new AppError('UNAVAILABLE', 'delivery could not be stored; retry later', { headers: { 'retry-after': '2' } }))
          continue
        }
        p.resolve(seen.has(p.sha) ? { ...result, duplicate: true } : result)
        seen.add(p.sha)
      }
    } catch (err) {
      for (const p of batch) p.reject(err)
    }
  }
}
