import { sha256 } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import type { Principal } from './schemas.js'
import { authenticateApiKey, looksLikeApiKey, registerLocalKeyCache } from './service.js'

type TenantPrincipal = Principal & { kind: 'tenant' }

/** The channel migration 0051's triggers notify (payload: the tenant's id) when a key or its tenant changes. */
export const API_KEY_CHANGED_CHANNEL = 'api_key_changed'
const LISTEN_RETRY_MS = 5_000

export interface ApiKeyCacheOptions {
  /** How long a key, once looked up, is trusted without asking again; 0 turns the cache off. */
  ttlMs: number
  /** Distinct keys held at most; the oldest goes first. */
  maxEntries?: number
}

interface Entry { principal: TenantPrincipal; expiresAt: number }

/**
 * API keys resolved to their principal, in process, so that an authenticated request does not cost a database
 * round trip (GET /v1/me at 50 connections spent most of its p99 on the lookup).
 *
 * - Only valid keys are held, by their sha256 (never the key itself): a wrong key is looked up every time, so a guesser
 *   still pays the failure limiter on every try and gains nothing from the cache.
 * - An entry lives at most `ttlMs`; a revoke, role change or deletion of a key, or its tenant's suspension or deletion,
 *   drops the tenant's entries: at once in the process that committed it (service.ts forgetTenantKeysLocally), and in every other
 *   process when the NOTIFY of migration 0051's triggers arrives (LISTEN api_key_changed).
 * - Nothing is stored until the LISTEN is up, and everything is dropped each time it is (re)established: a
 *   notification missed while the listening connection was down cannot leave a key trusted for longer than the TTL.
 * - A lookup that was in flight when an invalidation arrived does not store its (possibly older) answer; concurrent
 *   misses of one key share a single lookup.
 */
export class ApiKeyCache {
  private readonly entries = new Map<string, Entry>()
  private readonly inflight = new Map<string, Promise<TenantPrincipal | null>>()
  private readonly ttlMs: number
  private readonly maxEntries: number
  // Bumped by every invalidation: an answer read before it is not stored after it.
  private generation = 0
  private listening = false
  private closed = false
  private unlisten: (() => Promise<void>) | null = null
  private starting: Promise<void> | null = null
  private readonly unregister: () => void

  constructor(private readonly sql: Sql, private readonly log: Logger, options: ApiKeyCacheOptions) {
    this.ttlMs = options.ttlMs
    this.maxEntries = options.maxEntries ?? 10_000
    // A change this process commits (revokeApiKey) drops entries at once, before its NOTIFY comes back.
    this.unregister = registerLocalKeyCache(sql, this)
  }

  get enabled(): boolean {
    return this.ttlMs > 0
  }

  /**
   * Starts listening for changes; resolves once the LISTEN is up (callers need not wait: until then every request looks
   * its key up). A LISTEN that cannot start is logged and leaves the cache off until postgres.js re-establishes it.
   */
  start(): Promise<void> {
    if (!this.enabled || this.closed) return Promise.resolve()
    return (this.starting ??= this.listen())
  }

  private async listen(): Promise<void> {
    try {
      const l = await this.sql.listen(API_KEY_CHANGED_CHANNEL, (payload) => this.notified(payload), () => this.listened())
      if (this.closed) await l.unlisten().catch(() => {})
      else this.unlisten = l.unlisten
    } catch (err) {
      // The database is not there yet: try again in a while (postgres.js itself re-listens after a lost connection).
      this.log.warn({ errCode: (err as { code?: string }).code ?? (err as Error).message }, 'api key cache: cannot listen for key changes; not caching')
      if (!this.closed) setTimeout(() => void (this.starting = this.listen()), LISTEN_RETRY_MS).unref()
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.listening = false
    this.forgetAll()
    this.unregister()
    // Not awaited: with the database gone an UNLISTEN would wait for a reconnection and hold up shutdown; ending the
    // pool closes the listening connection anyway.
    void this.starting?.then(() => this.unlisten?.().catch(() => {}))
  }

  /** The principal of a bearer key, or null (callers must not say which part was wrong). */
  async authenticate(key: string): Promise<TenantPrincipal | null> {
    if (!this.enabled) return authenticateApiKey(this.sql, key)
    if (!looksLikeApiKey(key)) return null
    const hash = sha256(key).toString('base64')
    const entry = this.entries.get(hash)
    if (entry) {
      if (entry.expiresAt > Date.now()) return entry.principal
      this.entries.delete(hash)
    }
    const pending = this.inflight.get(hash)
    if (pending) return pending
    const generation = this.generation
    const lookup = authenticateApiKey(this.sql, key).then((principal) => {
      if (this.inflight.get(hash) === lookup) this.inflight.delete(hash)
      if (principal && this.listening && this.generation === generation) this.store(hash, principal)
      return principal
    }, (err: unknown) => {
      if (this.inflight.get(hash) === lookup) this.inflight.delete(hash)
      throw err
    })
    this.inflight.set(hash, lookup)
    return lookup
  }

  /** Drops the tenant's keys (and every lookup in flight, whose tenant is not known yet). */
  forgetTenant(tenantId: string): void {
    this.generation++
    this.inflight.clear()
    for (const [hash, entry] of this.entries) if (entry.principal.tenantId === tenantId) this.entries.delete(hash)
  }

  forgetAll(): void {
    this.generation++
    this.inflight.clear()
    this.entries.clear()
  }

  /** How many keys are held (for tests and metrics). */
  get size(): number {
    return this.entries.size
  }

  private store(hash: string, principal: TenantPrincipal) {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(hash, { principal, expiresAt: Date.now() + this.ttlMs })
  }

  // Called when the LISTEN is established, and again after postgres.js re-establishes it on a new connection: what
  // was said in between is lost, so nothing cached before can be trusted.
  private listened() {
    if (this.closed) return
    this.forgetAll()
    this.listening = true
  }

  private notified(payload: string) {
    if (/^[0-9a-f-]{36}$/i.test(payload)) this.forgetTenant(payload.toLowerCase())
    else this.forgetAll()
  }
}
