import { createHash } from 'node:crypto'
import type { Sql } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { GroupCommit } from '../../lib/group-commit.js'
import type { DeliverySigner } from './app-secrets.js'
import { PROCESS_DELIVERIES_TASK } from './schemas.js'

export interface StoredDelivery {
  /** The delivery's row id; for a duplicate, the id stored the first time. For an unparseable one, its raw row's id. */
  deliveryId: string
  duplicate: boolean
  /** Set when the bytes could never be stored as jsonb: kept raw in whatsapp.unparseable_deliveries instead. */
  unparseable?: true
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

/** A verified delivery, as the route hands it over. */
export interface IncomingDelivery {
  raw: Buffer
  /** The body decoded as UTF-8 (the route parsed it already). */
  text: string
  signedBy: DeliverySigner
  /** Why the body can never be stored as jsonb (see unstorableReason), or null. */
  unstorable: string | null
}

interface Incoming {
  /** sha256 of the bytes and the signer: the deduplication key (see migration 0008). */
  key: string
  sha: string
  signedBy: DeliverySigner
  payload: string
  raw: Buffer
  unstorable: string | null
}

interface WrittenRow {
  sha: string
  signedBy: string
  id: string
  duplicate: boolean
}

/**
 * PostgreSQL cannot store `\u0000` in jsonb, nor a lone UTF-16 surrogate (invalid Unicode). In a parsed body both can
 * only come from JSON escapes: raw control characters are not valid JSON, and the UTF-8 decoder turns invalid byte
 * sequences (encoded surrogates included) into U+FFFD. So a body whose text has no `\u0000` or `\uD800`-`\uDFFF`
 * escape is clean, and this one regex test is the whole cost for nearly every delivery; only a suspect body (a
 * paired surrogate such as an escaped emoji also matches) is walked to find a real offender.
 */
const SUSPECT_ESCAPE = /\\u(?:0000|d[89a-f])/i
const UNSTORABLE_CHAR = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Why a parsed delivery can never be stored as jsonb (naming where), or null when it can. */
export function unstorableReason(text: string, parsed: unknown): string | null {
  if (!SUSPECT_ESCAPE.test(text)) return null
  // Iterative: a signed body may nest deeper than the call stack.
  const stack: { value: unknown; path: string }[] = [{ value: parsed, path: '$' }]
  while (stack.length > 0) {
    const { value, path } = stack.pop()!
    if (typeof value === 'string') {
      const what = describeUnstorable(value)
      if (what) return `${what} in the value at ${path}`
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` })
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        const what = describeUnstorable(k)
        if (what) return `${what} in a key at ${path}`
        stack.push({ value: v, path: `${path}.${k}` })
      }
    }
  }
  return null
}

function describeUnstorable(s: string): string | null {
  const m = UNSTORABLE_CHAR.exec(s)
  if (!m) return null
  return m[0] === '\u0000' ? 'a NUL character (\\u0000)' : `a lone surrogate (\\u${m[0].charCodeAt(0).toString(16)})`
}

/**
 * Errors that say this data can never be stored, so retrying it is pointless: data exceptions (class 22: untranslatable
 * character, invalid text, numeric overflow) and program limits (class 54: stack depth, sizes). Anything else
 * (connection lost, timeout, shutdown) may pass on a retry, and is answered 503.
 */
const isUnstorableError = (err: unknown): boolean => {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'))
}

/**
 * Durable intake for webhook deliveries, with group commit (lib/group-commit.ts): requests that arrive while a
 * flush is in flight are written together by the next one, in one statement with one job enqueued for the batch.
 * A caller's promise resolves only after its delivery (and the job that will process it) is committed; a failed or
 * slow flush rejects it, and the route answers 503 so Meta retries.
 *
 * A correctly signed delivery that can never be stored as jsonb must not make Meta retry forever, nor fail the others
 * of its batch: the route flags the ones it can see cheaply (unstorableReason), and those are written as raw bytes to
 * whatsapp.unparseable_deliveries and acknowledged; one the check missed makes the grouped statement fail with a data
 * error; the group commit then writes each member alone, and the offender, alone, is kept raw the same way.
 */
export class DeliveryInbox {
  private readonly commit: GroupCommit<Incoming, StoredDelivery>

  constructor(private readonly sql: Sql, options: InboxOptions = {}) {
    this.commit = new GroupCommit((batch, signal) => this.flush(batch, signal), {
      noun: 'delivery',
      maxBatch: options.maxBatch ?? 500,
      maxConcurrentFlushes: options.maxConcurrentFlushes ?? 1,
      maxQueued: options.maxQueued ?? 10_000,
      timeoutMs: options.statementTimeoutMs ?? 5_000,
    })
  }

  store(delivery: IncomingDelivery): Promise<StoredDelivery> {
    const sha = createHash('sha256').update(delivery.raw).digest('hex')
    return this.commit.add({
      key: `${sha}|${delivery.signedBy}`, sha, signedBy: delivery.signedBy, payload: delivery.text, raw: delivery.raw, unstorable: delivery.unstorable,
    })
  }

  private async flush(batch: Incoming[], signal?: AbortSignal): Promise<(StoredDelivery | Error)[]> {
    // The same delivery may be in one batch several times (Meta retrying while we were slow): write it once.
    // Past the deadline the callers get a 503 (Meta will retry); if the write still lands, the retry is a duplicate.
    const unique = new Map<string, Incoming>()
    for (const p of batch) if (!unique.has(p.key)) unique.set(p.key, p)
    const good = [...unique.values()].filter((p) => p.unstorable === null)
    const found = new Map<string, WrittenRow>()
    const raw: Incoming[] = [...unique.values()].filter((p) => p.unstorable !== null)
    for (const row of await this.writeOrKeepRaw(good, raw, signal)) found.set(`${row.sha}|${row.signedBy}`, row)
    const rawFound = new Map<string, WrittenRow>()
    let rawError: Error | null = null
    if (raw.length > 0) {
      try {
        for (const row of await this.writeUnparseable(raw)) rawFound.set(`${row.sha}|${row.signedBy}`, row)
      } catch (err) {
        rawError = err instanceof Error ? err : new Error(String(err))
      }
    }

    const seen = new Set<string>()
    return batch.map((p) => {
      const isRaw = unique.get(p.key)!.unstorable !== null
      if (isRaw && rawError) return rawError
      const row = (isRaw ? rawFound : found).get(p.key)
      // Written by a concurrent flush that committed after this statement's snapshot: the retry will see it.
      if (!row) return new AppError('UNAVAILABLE', 'delivery is being stored by another request; retry later', { headers: { 'retry-after': '1' } })
      const stored: StoredDelivery = { deliveryId: row.id, duplicate: row.duplicate || seen.has(p.key), ...(isRaw ? { unparseable: true as const } : {}) }
      seen.add(p.key)
      return stored
    })
  }

  /**
   * Writes `items` in one statement. When that fails because a payload can never be stored, a lone delivery is moved
   * to `raw` with the database's reason; a group is failed as a whole, and the group commit (lib/group-commit.ts)
   * writes each member again alone, so the offender ends up here by itself and its neighbours are stored. Any other
   * failure is thrown too: the flush is answered 503 and retried.
   */
  private async writeOrKeepRaw(items: Incoming[], raw: Incoming[], signal?: AbortSignal): Promise<WrittenRow[]> {
    if (items.length === 0) return []
    if (signal?.aborted) throw new AppError('UNAVAILABLE', 'storing the delivery took too long; retry later', { headers: { 'retry-after': '2' } })
    try {
      return await this.write(items)
    } catch (err) {
      if (items.length > 1 || !isUnstorableError(err)) throw err
      items[0]!.unstorable = `PostgreSQL refused the body: ${(err as Error).message}`.slice(0, 500)
      raw.push(items[0]!)
      return []
    }
  }

  /**
   * One statement, so one round trip and atomic without an explicit transaction: new deliveries are inserted, one
   * job is enqueued for them (the outbox: both commit or neither does), and rows stored earlier are reported as
   * duplicates. The job CTE is read through a scalar subquery, which makes PostgreSQL run it.
   */
  private write(items: Incoming[]) {
    return this.sql<WrittenRow[]>`
      with input as (
        select decode(u.sha, 'hex') as body_sha256, u.signed_by, u.payload::jsonb as payload, u.ord
          from unnest(${items.map((i) => i.sha)}::text[], ${items.map((i) => i.signedBy)}::text[], ${items.map((i) => i.payload)}::text[])
               with ordinality as u(sha, signed_by, payload, ord)
      ), inserted as (
        insert into whatsapp.webhook_deliveries (body_sha256, signed_by, payload)
        select body_sha256, signed_by, payload from input order by ord
        on conflict (body_sha256, signed_by) do nothing
        returning id, body_sha256, signed_by
      ), job as (
        select graphile_worker.add_job(${PROCESS_DELIVERIES_TASK}, json_build_object('deliveryIds', array_agg(id order by id))) as added
          from inserted having count(*) > 0
      )
      select encode(i.body_sha256, 'hex') as sha, i.signed_by, i.id::text as id, false as duplicate, (select count(*)::int from job) as jobs
        from inserted i
      union all
      select encode(d.body_sha256, 'hex'), d.signed_by, d.id::text, true, 0
        from whatsapp.webhook_deliveries d
       where (d.body_sha256, d.signed_by) in (select body_sha256, signed_by from input)`
  }

  /** The raw bytes of deliveries that cannot be stored as jsonb, once per (bytes, signer); bytea takes anything. */
  private writeUnparseable(items: Incoming[]) {
    return this.sql<WrittenRow[]>`
      with input as (
        select decode(u.sha, 'hex') as body_sha256, u.signed_by, decode(u.raw, 'base64') as raw_body, u.reason, u.ord
          from unnest(${items.map((i) => i.sha)}::text[], ${items.map((i) => i.signedBy)}::text[],
                      ${items.map((i) => i.raw.toString('base64'))}::text[], ${items.map((i) => i.unstorable ?? 'unparseable')}::text[])
               with ordinality as u(sha, signed_by, raw, reason, ord)
      ), inserted as (
        insert into whatsapp.unparseable_deliveries (body_sha256, signed_by, raw_body, reason)
        select body_sha256, signed_by, raw_body, reason from input order by ord
        on conflict (body_sha256, signed_by) do nothing
        returning id, body_sha256, signed_by
      )
      select encode(i.body_sha256, 'hex') as sha, i.signed_by, i.id::text as id, false as duplicate from inserted i
      union all
      select encode(d.body_sha256, 'hex'), d.signed_by, d.id::text, true
        from whatsapp.unparseable_deliveries d
       where (d.body_sha256, d.signed_by) in (select body_sha256, signed_by from input)`
  }
}
