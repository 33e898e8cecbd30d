import { createHash } from 'node:crypto'
import type { Sql } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { GroupCommit } from '../../lib/group-commit.js'
import { PROCESS_DELIVERIES_TASK } from './schemas.js'

export interface StoredDelivery {
  /** The delivery's row id; for a duplicate, the id stored the first time. */
  deliveryId: string
  duplicate: boolean
}

export interface InboxOptions {
  /** Deliveries written by one statement at most. */
  maxBatch?: number
  /** Flushes in flight at once (see GroupCommitOptions: one is fastest). */
  maxConcurrentFlushes?: number
  /** Beyond this many waiting deliveries the inbox refuses new ones (503) instead of queueing without end. */
  maxQueued?: number
  /** A flush slower than this fails its requests with 503, so Meta retries (JS-side, so it covers pool waits too). */
  statementTimeoutMs?: number
}

interface Incoming {
  sha: string
  payload: string
}

/**
 * Durable intake for webhook deliveries, with group commit (lib/group-commit.ts): requests that arrive while a
 * flush is in flight are written together by the next one, in one statement with one job enqueued for the batch.
 * A caller's promise resolves only after its delivery (and the job that will process it) is committed; a failed or
 * slow flush rejects it, and the route answers 503 so Meta retries.
 */
export class DeliveryInbox {
  private readonly commit: GroupCommit<Incoming, StoredDelivery>

  constructor(private readonly sql: Sql, options: InboxOptions = {}) {
    this.commit = new GroupCommit((batch) => this.flush(batch), {
      noun: 'delivery',
      maxBatch: options.maxBatch ?? 500,
      maxConcurrentFlushes: options.maxConcurrentFlushes ?? 1,
      maxQueued: options.maxQueued ?? 10_000,
      timeoutMs: options.statementTimeoutMs ?? 5_000,
    })
  }

  store(rawBody: Buffer, payloadText: string): Promise<StoredDelivery> {
    const sha = createHash('sha256').update(rawBody).digest('hex')
    return this.commit.add({ sha, payload: payloadText })
  }

  private async flush(batch: Incoming[]): Promise<(StoredDelivery | Error)[]> {
    // The same delivery may be in one batch several times (Meta retrying while we were slow): write it once.
    // Past the deadline the callers get a 503 (Meta will retry); if the write still lands, the retry is a duplicate.
    const unique = new Map<string, string>()
    for (const p of batch) if (!unique.has(p.sha)) unique.set(p.sha, p.payload)
    const rows = await this.write([...unique.keys()], [...unique.values()])
    const found = new Map(rows.map((r) => [r.sha, r]))
    const seen = new Set<string>()
    return batch.map((p) => {
      const row = found.get(p.sha)
      // Written by a concurrent flush that committed after this statement's snapshot: the retry will see it.
      if (!row) return new AppError('UNAVAILABLE', 'delivery is being stored by another request; retry later', { headers: { 'retry-after': '1' } })
      const stored = { deliveryId: row.id, duplicate: row.duplicate || seen.has(p.sha) }
      seen.add(p.sha)
      return stored
    })
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
