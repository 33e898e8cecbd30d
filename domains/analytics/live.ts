import { z } from 'zod'
import { type Sql, setTenant } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { type DimensionReader, type DimensionReaders, type Filter, filterSchema, matchesFilters } from './filters.js'
import * as q from './queries.js'
import type { LiveEventRow } from './queries.js'

/**
 * The live feed: one LISTEN per process, one reader per tenant with subscribers, fanned out in memory.
 *
 * Cursors are PostgreSQL snapshots (`xmin:xmax:xip,…`). Each read asks for the tenant's events not visible in the
 * previous read's snapshot and visible in its own (queries.ts eventsCommittedAfter), so consecutive reads see each
 * commit exactly once, in whatever order transactions took their ids and committed. A subscriber resuming from a
 * cursor reads the same way from that snapshot. Within one read's batch the events before the last carry the
 * subscriber's previous cursor and the last carries the new one: a client cut off half-way through a batch resumes
 * from its start and is sent again what it had (it dedupes by event id); nothing is ever skipped.
 */

/** The dimensions the live feed filters on (the query API's, less time and lead dimensions the event does not carry). */
export const LIVE_DIMENSIONS = [
  'event:name', 'event:producer', 'visit:source', 'visit:channel', 'visit:country', 'visit:device', 'visit:browser', 'visit:os',
  'event:form', 'event:flow', 'event:template', 'event:campaign', 'event:experiment', 'event:variant',
] as const

const propertyOf = (e: LiveEventRow, name: string) => {
  const v = e.properties?.[name]
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : ''
}
const prop = (name: string): DimensionReader<LiveEventRow> => (e) => propertyOf(e, name)
const FIXED_READERS: Record<(typeof LIVE_DIMENSIONS)[number], DimensionReader<LiveEventRow>> = {
  'event:name': (e) => e.name,
  'event:producer': (e) => e.source ?? '',
  'visit:source': (e) => e.acqSource ?? '',
  'visit:channel': (e) => e.acqChannel ?? '',
  'visit:country': (e) => e.country ?? '',
  'visit:device': (e) => e.device ?? '',
  'visit:browser': (e) => e.browser ?? '',
  'visit:os': (e) => e.os ?? '',
  'event:form': prop('formId'),
  'event:flow': prop('flowId'),
  'event:template': prop('templateName'),
  'event:campaign': prop('campaignId'),
  'event:experiment': prop('experimentKey'),
  'event:variant': prop('variationKey'),
}
/** How the feed reads each dimension off an event row; exported for the test that holds it to the query API's SQL. */
export const LIVE_READERS: DimensionReaders<LiveEventRow> = { fixed: FIXED_READERS, property: propertyOf }

export const LiveFilters = filterSchema(LIVE_DIMENSIONS, { properties: true })

/** A cursor as the client sends it back in Last-Event-ID: a snapshot's text form, checked before PostgreSQL sees it. */
const SNAPSHOT_TEXT = /^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$/
export const LiveCursor = z.string().max(4000).refine((c) => {
  if (!SNAPSHOT_TEXT.test(c)) return false
  const s = parseSnapshot(c)
  return s.xmin <= s.xmax && [...s.xip].every((x) => x >= s.xmin && x < s.xmax)
}, 'a cursor this feed sent (xmin:xmax:xip,…)')

/** What the client receives for an event (SSE data). */
export const LiveEventView = z.object({
  id: z.string(),
  name: z.string(),
  occurredAt: z.string(),
  leadId: z.string().optional(),
  /** The producer: whatsapp, web_form, api, site, … */
  source: z.string().nullable(),
  channel: z.string().nullable(),
  country: z.string().nullable(),
  device: z.string().nullable(),
  properties: z.record(z.string(), z.unknown()).optional(),
})
export type LiveEventView = z.infer<typeof LiveEventView>

const toView = (e: LiveEventRow): LiveEventView => ({
  id: e.id,
  name: e.name,
  occurredAt: e.occurredAt.toISOString(),
  ...(e.leadId ? { leadId: e.leadId } : {}),
  source: e.source,
  channel: e.acqChannel,
  country: e.country,
  device: e.device,
  ...(e.properties && Object.keys(e.properties).length > 0 ? { properties: e.properties } : {}),
})

export interface Snapshot { xmin: bigint; xmax: bigint; xip: Set<bigint> }
export function parseSnapshot(text: string): Snapshot {
  const [xmin, xmax, xip] = text.split(':') as [string, string, string]
  return { xmin: BigInt(xmin), xmax: BigInt(xmax), xip: new Set(xip ? xip.split(',').map(BigInt) : []) }
}
/** Whether a committed transaction's effects are visible in the snapshot (PostgreSQL's rule for pg_visible_in_snapshot). */
export const committedVisibleIn = (xid: bigint, s: Snapshot) => xid < s.xmin || (xid < s.xmax && !s.xip.has(xid))
/**
 * Whether snapshot a was taken no earlier than b (so it sees all b sees). Snapshots of one server: xmax (the next xid
 * to assign) never goes back, and at the same xmax a later one has no more transactions in progress.
 */
const notEarlier = (a: Snapshot, b: Snapshot) => a.xmax > b.xmax || (a.xmax === b.xmax && a.xip.size <= b.xip.size)

/** One SSE message: the event's data (serialized once, shared by every subscriber) and the cursor to resume after it. */
export interface LiveMessage { cursor: string; data: string }

/** The subscriber's side: a stream to a client. Calls arrive in order. */
export interface LiveListener {
  events(messages: LiveMessage[]): void
  /**
   * The cursor moved without an event for this subscriber (its filters left nothing, or it just joined). `settles`:
   * it moves past events already sent with an older cursor (from a notification), so it is worth sending now.
   */
  cursor(cursor: string, settles?: boolean): void
  /** More than `limit` events were missed (a resume sends at most that): the client should reload, then follow from here. */
  reset(cursor: string, limit: number): void
  /** The feed is closing (shutdown). */
  close(): void
}

type LiveRow = LiveEventRow & { xid: bigint; data?: string }
/**
 * Rows for the subscribers: from a read (`next` is the read's snapshot, given to them as their new cursor) or from a
 * notification (`next` null: the rows go out at once with each subscriber's current cursor, which the next read
 * moves; a client that reconnects in between is sent them again and dedupes by id).
 */
interface Batch { next: string | null; rows: LiveRow[] }

/**
 * A notification's payload (migration 0039): `{"t": tenant, "e": [rows]}` for a small statement under a tenant, or
 * the tenant id alone (`*` for a writer outside any tenant), when the listener must read the rows itself.
 */
export function parseNotification(payload: string): { tenantId: string; rows: LiveRow[] | null } {
  if (!payload.startsWith('{')) return { tenantId: payload, rows: null }
  const n = JSON.parse(payload) as { t: string; e: Record<string, unknown>[] }
  const text = (v: unknown) => (typeof v === 'string' ? v : null)
  const rows = n.e.map((e): LiveRow => ({
    id: String(e.id),
    xactId: String(e.x),
    xid: BigInt(String(e.x)),
    name: String(e.name),
    occurredAt: new Date(String(e.at)),
    leadId: text(e.lead),
    source: text(e.src),
    acqSource: text(e.acqSrc),
    acqChannel: text(e.ch),
    country: text(e.country),
    device: text(e.device),
    browser: text(e.browser),
    os: text(e.os),
    properties: (e.props && typeof e.props === 'object' ? e.props : {}) as Record<string, unknown>,
  }))
  return { tenantId: n.t, rows }
}

interface Subscriber {
  filters: Filter[]
  listener: LiveListener
  /** The last cursor this subscriber was given. */
  cursor: string
  /** Snapshot whose commits it already has (its resume read's): rows visible in it are not sent again. */
  seen: Snapshot | null
  pending: Batch[] | null
  /** Events were sent with a cursor from before them (from a notification): the next read's cursor settles them. */
  owesCursor: boolean
}

interface Channel {
  tenantId: string
  subscribers: Set<Subscriber>
  /** The snapshot of the last read; null until the first. */
  snapshot: string | null
  /** A read is under way (readLoop); `dirty`: another is wanted after it; `current`: the loop's promise. */
  running: boolean
  dirty: boolean
  current: Promise<void>
  retry: NodeJS.Timeout | null
  /**
   * Events already sent from a notification (id → its transaction), which the read that sees them must not send
   * again. Every entry's transaction committed before its notification arrived, so a later read's snapshot sees it
   * and the entry goes: the map holds at most a cursor delay's worth.
   */
  notified: Map<string, bigint>
  /** The cursor read scheduled after events sent from notifications. */
  cursorRead: NodeJS.Timeout | null
}

export interface LiveFeedOptions {
  /** A resume sends at most this many missed events; beyond, the client is told to reload (reset). */
  resumeMaxEvents: number
  /** Every active tenant is reread this often even without a notification (belt and braces). */
  sweepIntervalMs: number
  /**
   * After events sent straight from a notification, the read that moves the subscribers' cursor past them waits this
   * long (100 ms by default), so a busy tenant costs a read per interval instead of one per commit.
   */
  cursorDelayMs?: number
}

export class LiveFeed {
  private readonly channels = new Map<string, Channel>()
  private listening: Promise<{ unlisten: () => Promise<void> }> | null = null
  private sweep: NodeJS.Timeout | null = null
  private closed = false

  constructor(private readonly sql: Sql, private readonly log: Logger, private readonly options: LiveFeedOptions) {}

  /** Tenants with subscribers and subscribers in all: for metrics and tests that check resources are freed. */
  get size(): { tenants: number; subscribers: number } {
    let subscribers = 0
    for (const c of this.channels.values()) subscribers += c.subscribers.size
    return { tenants: this.channels.size, subscribers }
  }

  /** Streams this process holds open for a tenant. */
  streamsOf(tenantId: string): number {
    return this.channels.get(tenantId)?.subscribers.size ?? 0
  }

  /**
   * Follows a tenant's events from `after` (a cursor this feed gave, from Last-Event-ID) or from now. Resolves once
   * the subscriber is following (the listener has had the missed events, then a cursor); throws if the database
   * cannot be reached, before anything was sent.
   */
  async subscribe(tenantId: string, input: { filters: Filter[]; after: string | null }, listener: LiveListener): Promise<() => void> {
    if (this.closed) throw new Error('live feed closed')
    await this.listen()
    const channel = this.channelOf(tenantId)
    const sub: Subscriber = { filters: input.filters, listener, cursor: input.after ?? '', seen: null, pending: [], owesCursor: false }
    channel.subscribers.add(sub)
    const unsubscribe = () => this.remove(channel, sub)
    try {
      // The channel's first read must come before this one: what it has not read, this one has, so no gap between.
      if (channel.snapshot === null) await this.read(channel)
      const limit = this.options.resumeMaxEvents
      const read = await this.readAfter(tenantId, input.after, limit + 1)
      sub.seen = parseSnapshot(read.snapshot)
      if (read.rows.length > limit) {
        listener.reset(read.snapshot, limit)
      } else {
        const rows = read.rows.filter((r) => matchesFilters(r, sub.filters, LIVE_READERS))
        if (rows.length > 0) {
          listener.events(rows.map((r, i) => ({ cursor: i === rows.length - 1 ? read.snapshot : sub.cursor, data: JSON.stringify(toView(r)) })))
        } else {
          listener.cursor(read.snapshot)
        }
      }
      sub.cursor = read.snapshot
      const pending = sub.pending ?? []
      sub.pending = null
      for (const batch of pending) this.deliver(sub, batch)
      // Closed while this subscriber was catching up: close() did not see it, so it ends here.
      if (this.closed) listener.close()
    } catch (err) {
      unsubscribe()
      throw err
    }
    return unsubscribe
  }

  /** Ends every subscription (their listeners' close) and stops listening. */
  async close(): Promise<void> {
    this.closed = true
    if (this.sweep) clearInterval(this.sweep)
    for (const channel of this.channels.values()) {
      if (channel.retry) clearTimeout(channel.retry)
      if (channel.cursorRead) clearTimeout(channel.cursorRead)
      for (const sub of channel.subscribers) sub.listener.close()
      channel.subscribers.clear()
    }
    this.channels.clear()
    const listening = this.listening
    this.listening = null
    if (listening) await listening.then((l) => l.unlisten()).catch(() => {})
  }

  /**
   * withTenant with the tenant setting and the read sent together (postgres.js pipelines a transaction's queries in
   * the order they are made, and PostgreSQL runs them in that order): one round trip less on the feed's hot path.
   * RLS applies exactly as under withTenant: the setting is transaction-local and precedes the read.
   */
  private readAfter(tenantId: string, after: string | null, limit: number | null) {
    return this.sql.begin(async (tx) => {
      const [, read] = await Promise.all([setTenant(tx, tenantId), q.eventsCommittedAfter(tx, tenantId, after, limit)])
      return read
    }) as Promise<Awaited<ReturnType<typeof q.eventsCommittedAfter>>>
  }

  private listen() {
    this.listening ??= (async () => {
      const l = await q.listenForCommittedEvents(this.sql, (payload) => this.notified(payload), () => this.rereadAll())
      this.sweep = setInterval(() => this.rereadAll(), this.options.sweepIntervalMs)
      this.sweep.unref()
      return l
    })().catch((err) => {
      this.listening = null
      throw err
    })
    return this.listening
  }

  private notified(payload: string) {
    let note: ReturnType<typeof parseNotification>
    try {
      note = parseNotification(payload)
    } catch (err) {
      // Not ours to lose events over: read everything instead.
      this.log.warn({ err }, 'live feed: unreadable notification; rereading every tenant')
      return this.rereadAll()
    }
    if (note.tenantId === '*') return this.rereadAll()
    const channel = this.channels.get(note.tenantId)
    if (!channel) return
    // Before the channel's first read there is no snapshot to tell old from new: that read (or a subscriber's own
    // resume read) has these rows.
    if (note.rows === null || channel.snapshot === null) return this.kick(channel)
    const read = parseSnapshot(channel.snapshot)
    // A read that began after the commit already had them.
    const rows = note.rows.filter((r) => !committedVisibleIn(r.xid, read) && !channel.notified.has(r.id))
    if (rows.length === 0) return
    for (const r of rows) channel.notified.set(r.id, r.xid)
    const batch: Batch = { next: null, rows }
    for (const sub of channel.subscribers) {
      if (sub.pending) sub.pending.push(batch)
      else this.deliver(sub, batch)
    }
    channel.cursorRead ??= setTimeout(() => {
      channel.cursorRead = null
      this.kick(channel)
    }, this.options.cursorDelayMs ?? 100)
  }

  private rereadAll() {
    for (const channel of this.channels.values()) this.kick(channel)
  }

  /** A read nobody waits for: its failure is logged and retried by readLoop. */
  private kick(channel: Channel) {
    this.read(channel).catch(() => {})
  }

  private channelOf(tenantId: string): Channel {
    let channel = this.channels.get(tenantId)
    if (!channel) {
      channel = { tenantId, subscribers: new Set(), snapshot: null, running: false, dirty: false, current: Promise.resolve(), retry: null, notified: new Map(), cursorRead: null }
      this.channels.set(tenantId, channel)
    }
    return channel
  }

  private remove(channel: Channel, sub: Subscriber) {
    channel.subscribers.delete(sub)
    if (channel.subscribers.size === 0 && this.channels.get(channel.tenantId) === channel) {
      this.channels.delete(channel.tenantId)
      if (channel.retry) clearTimeout(channel.retry)
      if (channel.cursorRead) clearTimeout(channel.cursorRead)
    }
  }

  /**
   * Reads what the tenant committed since the channel's last snapshot and hands it to the subscribers: one read at a
   * time per tenant; a notification during a read makes one more after it. The promise settles when a read that
   * began after this call has finished.
   */
  private read(channel: Channel): Promise<void> {
    channel.dirty = true
    if (!channel.running) {
      channel.running = true
      channel.current = this.readLoop(channel)
    }
    return channel.current
  }

  private async readLoop(channel: Channel): Promise<void> {
    try {
      // `running` is cleared in the same turn as the last check of `dirty`: a notification can never fall between.
      while (channel.dirty) {
        channel.dirty = false
        if (this.closed || this.channels.get(channel.tenantId) !== channel) return
        const prev = channel.snapshot
        const read = await this.readAfter(channel.tenantId, prev, null)
        channel.snapshot = read.snapshot
        // What a notification already sent: this read saw its transaction (so no later one returns it), and sends
        // only the cursor for it.
        const rows = read.rows.filter((r) => !channel.notified.delete(r.id))
        if (channel.notified.size > 0) {
          const seen = parseSnapshot(read.snapshot)
          for (const [id, xid] of channel.notified) if (committedVisibleIn(xid, seen)) channel.notified.delete(id)
        }
        // Nothing new, and no cursor owed for notified rows: nobody needs to hear of it.
        if (prev === null || (rows.length === 0 && read.rows.length === 0)) continue
        const batch: Batch = { next: read.snapshot, rows: rows.map((r) => ({ ...r, xid: BigInt(r.xactId) })) }
        for (const sub of channel.subscribers) {
          if (sub.pending) sub.pending.push(batch)
          else this.deliver(sub, batch)
        }
      }
    } catch (err) {
      this.log.warn({ err, tenantId: channel.tenantId }, 'live feed: reading committed events failed; retrying in 1 s')
      if (!channel.retry && !this.closed) {
        channel.retry = setTimeout(() => {
          channel.retry = null
          this.kick(channel)
        }, 1000)
        channel.retry.unref()
      }
      throw err
    } finally {
      channel.running = false
    }
  }

  private deliver(sub: Subscriber, batch: Batch) {
    const seen = sub.seen
    const next = batch.next === null ? null : parseSnapshot(batch.next)
    // A read that began before this subscriber's own (resume) read has nothing it lacks, and must not move it back.
    if (seen && next && !notEarlier(next, seen)) return
    const rows = batch.rows.filter((r) => !(seen && committedVisibleIn(r.xid, seen)) && matchesFilters(r, sub.filters, LIVE_READERS))
    if (batch.next === null) {
      // From a notification: the cursor stays where the last read put it until the next read moves it.
      if (rows.length > 0) {
        sub.owesCursor = true
        sub.listener.events(rows.map((r) => ({ cursor: sub.cursor, data: (r.data ??= JSON.stringify(toView(r))) })))
      }
      return
    }
    const settles = sub.owesCursor
    sub.owesCursor = false
    if (rows.length === 0) {
      sub.cursor = batch.next
      sub.listener.cursor(batch.next, settles)
      return
    }
    const messages = rows.map((r, i) => ({ cursor: i === rows.length - 1 ? batch.next! : sub.cursor, data: (r.data ??= JSON.stringify(toView(r))) }))
    sub.cursor = batch.next
    sub.listener.events(messages)
  }
}
