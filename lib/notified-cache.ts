import type { Sql } from './db.js'
import type { Logger } from './logger.js'

const LISTEN_RETRY_MS = 5_000
const TENANT_ID = /^[0-9a-f-]{36}$/i

export interface NotifiedCacheOptions<K, V> {
  /** The channel the database's triggers NOTIFY on a change; the payload is the tenant's id (anything else drops everything). */
  channel: string
  /** How long an entry, once loaded, is trusted without asking again; 0 turns the cache off. */
  ttlMs: number
  /** Entries held at most; the oldest goes first. */
  maxEntries: number
  /** Logged (with the error's code) when the LISTEN cannot start; the cache stores nothing until it does. */
  listenFailedMessage: string
  /** The tenant an entry belongs to, for forgetTenant. */
  tenantOf: (key: K, value: V) => string
  /**
   * The tenant of a load in flight, when its key says it; without it, forgetTenant drops every load in flight (their
   * tenant is not known until they answer).
   */
  tenantOfKey?: (key: K) => string
  /** Whether a loaded value may be stored (default: any). */
  storable?: (value: V) => boolean
}

interface Entry<V> { value: V; expiresAt: number }

/**
 * Values loaded from the database, held in process and dropped when the database says they changed (LISTEN on a
 * channel its triggers NOTIFY, the payload a tenant id), for the caches of the hot paths (API keys, experiment
 * definitions). What makes it safe to trust an entry:
 *
 * - An entry lives at most `ttlMs`.
 * - Nothing is stored until the LISTEN is up, and everything is dropped each time it is (re)established (postgres.js
 *   re-listens on a new connection after losing one): a notification missed while the listening connection was down
 *   cannot leave an entry trusted for longer than the TTL.
 * - A load that was in flight when an invalidation arrived does not store its (possibly older) answer: every
 *   invalidation bumps a generation, and a load stores only if none happened since it began.
 * - Concurrent misses of one key share a single load.
 *
 * The process that commits a change calls forgetTenant itself, at once, before its NOTIFY comes back.
 */
export class NotifiedCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>()
  private readonly inflight = new Map<K, Promise<V>>()
  // Bumped by every invalidation: an answer read before it is not stored after it.
  private generation = 0
  private listening = false
  private isClosed = false
  private unlisten: (() => Promise<void>) | null = null
  private starting: Promise<void> | null = null

  constructor(private readonly sql: Sql, private readonly log: Logger, private readonly options: NotifiedCacheOptions<K, V>) {}

  get ttlMs(): number {
    return this.options.ttlMs
  }

  get closed(): boolean {
    return this.isClosed
  }

  /**
   * Starts listening for changes; resolves once the LISTEN is up (callers need not wait: until then every get loads).
   * A LISTEN that cannot start is logged and retried; the cache stores nothing meanwhile.
   */
  start(): Promise<void> {
    if (this.options.ttlMs <= 0 || this.isClosed) return Promise.resolve()
    return (this.starting ??= this.listen())
  }

  private async listen(): Promise<void> {
    try {
      const l = await this.sql.listen(this.options.channel, (payload) => this.notified(payload), () => this.listened())
      if (this.isClosed) await l.unlisten().catch(() => {})
      else this.unlisten = l.unlisten
    } catch (err) {
      // The database is not there yet: try again in a while (postgres.js itself re-listens after a lost connection).
      this.log.warn({ errCode: (err as { code?: string }).code ?? (err as Error).message }, this.options.listenFailedMessage)
      if (!this.isClosed) setTimeout(() => void (this.starting = this.listen()), LISTEN_RETRY_MS).unref()
    }
  }

  async close(): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    this.listening = false
    this.forgetAll()
    // Not awaited: with the database gone an UNLISTEN would wait for a reconnection and hold up shutdown; ending the
    // pool closes the listening connection anyway.
    void this.starting?.then(() => this.unlisten?.().catch(() => {}))
  }

  /** The value held for `key`, or `load`'s answer (shared with the other callers asking for `key` meanwhile). */
  get(key: K, load: () => Promise<V>): Promise<V> {
    const entry = this.entries.get(key)
    if (entry) {
      if (entry.expiresAt > Date.now()) return Promise.resolve(entry.value)
      this.entries.delete(key)
    }
    const pending = this.inflight.get(key)
    if (pending) return pending
    const generation = this.generation
    const loading = load().then((value) => {
      if (this.inflight.get(key) === loading) this.inflight.delete(key)
      if (this.listening && this.generation === generation && (this.options.storable?.(value) ?? true)) this.store(key, value)
      return value
    }, (err: unknown) => {
      if (this.inflight.get(key) === loading) this.inflight.delete(key)
      throw err
    })
    this.inflight.set(key, loading)
    return loading
  }

  /** Drops the tenant's entries and its loads in flight (every load in flight when their keys do not say the tenant). */
  forgetTenant(tenantId: string): void {
    this.generation++
    const tenantOfKey = this.options.tenantOfKey
    if (tenantOfKey) {
      for (const key of this.inflight.keys()) if (tenantOfKey(key) === tenantId) this.inflight.delete(key)
    } else {
      this.inflight.clear()
    }
    for (const [key, entry] of this.entries) if (this.options.tenantOf(key, entry.value) === tenantId) this.entries.delete(key)
  }

  forgetAll(): void {
    this.generation++
    this.inflight.clear()
    this.entries.clear()
  }

  /** How many entries are held (for tests and metrics). */
  get size(): number {
    return this.entries.size
  }

  private store(key: K, value: V) {
    if (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(key, { value, expiresAt: Date.now() + this.options.ttlMs })
  }

  // Called when the LISTEN is established, and again after postgres.js re-establishes it on a new connection: what
  // was said in between is lost, so nothing cached before can be trusted.
  private listened() {
    if (this.isClosed) return
    this.forgetAll()
    this.listening = true
  }

  private notified(payload: string) {
    if (TENANT_ID.test(payload)) this.forgetTenant(payload.toLowerCase())
    else this.forgetAll()
  }
}
