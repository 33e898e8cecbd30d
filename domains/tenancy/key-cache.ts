import { sha256 } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { NotifiedCache } from '../../lib/notified-cache.js'
import type { Principal } from './schemas.js'
import { authenticateApiKey, looksLikeApiKey, registerLocalKeyCache } from './service.js'

type TenantPrincipal = Principal & { kind: 'tenant' }

/** The channel migration 0051's triggers notify (payload: the tenant's id) when a key or its tenant changes. */
export const API_KEY_CHANGED_CHANNEL = 'api_key_changed'

export interface ApiKeyCacheOptions {
  /** How long a key, once looked up, is trusted without asking again; 0 turns the cache off. */
  ttlMs: number
  /** Distinct keys held at most; the oldest goes first. */
  maxEntries?: number
}

/**
 * API keys resolved to their principal, in process, so that an authenticated request does not cost a database
 * round trip (GET /v1/me at 50 connections spent most of its p99 on the lookup).
 *
 * - Only valid keys are held, by their sha256 (never the key itself): a wrong key is looked up every time, so a guesser
 *   still pays the failure limiter on every try and gains nothing from the cache.
 * - An entry lives at most `ttlMs`; a revoke, role change or deletion of a key, or its tenant's suspension or deletion,
 *   drops the tenant's entries: at once in the process that committed it (service.ts forgetTenantKeysLocally), and in every other
 *   process when the NOTIFY of migration 0051's triggers arrives (LISTEN api_key_changed).
 * - The rest is lib/notified-cache.ts: nothing stored until the LISTEN is up and everything dropped each time it is
 *   (re)established, a lookup in flight during an invalidation not stored, concurrent misses of one key sharing one
 *   lookup. A lookup's tenant is not known until it answers, so an invalidation drops every lookup in flight.
 */
export class ApiKeyCache {
  private readonly cache: NotifiedCache<string, TenantPrincipal | null>
  private readonly unregister: () => void

  constructor(private readonly sql: Sql, log: Logger, options: ApiKeyCacheOptions) {
    this.cache = new NotifiedCache<string, TenantPrincipal | null>(sql, log, {
      channel: API_KEY_CHANGED_CHANNEL, ttlMs: options.ttlMs, maxEntries: options.maxEntries ?? 10_000,
      listenFailedMessage: 'api key cache: cannot listen for key changes; not caching',
      tenantOf: (_hash, principal) => principal!.tenantId,
      storable: (principal) => principal !== null,
    })
    // A change this process commits (revokeApiKey) drops entries at once, before its NOTIFY comes back.
    this.unregister = registerLocalKeyCache(sql, this)
  }

  get enabled(): boolean {
    return this.cache.ttlMs > 0
  }

  /**
   * Starts listening for changes; resolves once the LISTEN is up (callers need not wait: until then every request looks
   * its key up). A LISTEN that cannot start is logged and leaves the cache off until it is up.
   */
  start(): Promise<void> {
    return this.cache.start()
  }

  async close(): Promise<void> {
    if (this.cache.closed) return
    await this.cache.close()
    this.unregister()
  }

  /** The principal of a bearer key, or null (callers must not say which part was wrong). */
  async authenticate(key: string): Promise<TenantPrincipal | null> {
    if (!this.enabled) return authenticateApiKey(this.sql, key)
    if (!looksLikeApiKey(key)) return null
    return this.cache.get(sha256(key).toString('base64'), () => authenticateApiKey(this.sql, key))
  }

  /** Drops the tenant's keys (and every lookup in flight, whose tenant is not known yet). */
  forgetTenant(tenantId: string): void {
    this.cache.forgetTenant(tenantId)
  }

  forgetAll(): void {
    this.cache.forgetAll()
  }

  /** How many keys are held (for tests and metrics). */
  get size(): number {
    return this.cache.size
  }
}
