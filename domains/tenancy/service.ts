import { randomUUID } from 'node:crypto'
import { randomToken, sha256 } from '../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import * as q from './queries.js'
import type { ApiKeyRole, CreateTenantBody, Principal } from './schemas.js'

const KEY_PREFIX = 'wak_'

/** `wak_<8 chars>_<43 chars>`: 256 random bits; the first 12 characters are kept as a displayable prefix. */
export function generateApiKey(): { key: string; prefix: string; hash: Buffer } {
  const id = randomToken(6).replace(/[-_]/g, 'x').slice(0, 8)
  const key = `${KEY_PREFIX}${id}_${randomToken(32)}`
  return { key, prefix: key.slice(0, 12), hash: sha256(key) }
}

export const looksLikeApiKey = (value: string) => /^wak_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/.test(value)

export const actorName = (principal: Principal) => (principal.kind === 'operator' ? 'operator' : `api_key:${principal.keyId}`)

export async function createTenantWithFirstKey(sql: Sql, input: CreateTenantBody, requestId?: string) {
  const tenantId = randomUUID()
  return withTenant(sql, tenantId, async (tx) => {
    const tenant = await q.insertTenant(tx, { id: tenantId, ...input })
    const secret = generateApiKey()
    const apiKey = await q.insertApiKey(tx, {
      tenantId, name: input.firstKeyName, role: 'admin', prefix: secret.prefix, keyHash: secret.hash, createdBy: 'operator',
    })
    await q.insertAuditEntry(tx, { tenantId, actor: 'operator', action: 'tenant.created', targetType: 'tenant', targetId: tenantId, details: { slug: input.slug }, requestId })
    await q.insertAuditEntry(tx, { tenantId, actor: 'operator', action: 'api_key.created', targetType: 'api_key', targetId: apiKey.id, details: { role: 'admin' }, requestId })
    return { tenant, apiKey: { ...apiKey, key: secret.key } }
  })
}

export async function createApiKey(sql: Sql, principal: Principal & { kind: 'tenant' }, input: { name: string; role: ApiKeyRole }, requestId?: string) {
  return withTenant(sql, principal.tenantId, async (tx) => {
    const secret = generateApiKey()
    const apiKey = await q.insertApiKey(tx, {
      tenantId: principal.tenantId, name: input.name, role: input.role, prefix: secret.prefix, keyHash: secret.hash, createdBy: actorName(principal),
    })
    await q.insertAuditEntry(tx, { tenantId: principal.tenantId, actor: actorName(principal), action: 'api_key.created', targetType: 'api_key', targetId: apiKey.id, details: { role: input.role }, requestId })
    return { ...apiKey, key: secret.key }
  })
}

export async function revokeApiKey(sql: Sql, principal: Principal & { kind: 'tenant' }, keyId: string, requestId?: string) {
  const key = await withTenant(sql, principal.tenantId, async (tx) => {
    const key = await q.revokeApiKey(tx, keyId)
    if (key) {
      await q.insertAuditEntry(tx, { tenantId: principal.tenantId, actor: actorName(principal), action: 'api_key.revoked', targetType: 'api_key', targetId: keyId, requestId })
    }
    return key
  })
  // Committed: this process's key caches forget the tenant's keys now (others when the trigger's NOTIFY reaches them),
  // so the revoked key fails on the very next request.
  if (key) forgetTenantKeysLocally(sql, principal.tenantId)
  return key
}

// The in-process key caches (key-cache.ts) by the pool they read through, so that a change this process commits
// reaches them without waiting for its NOTIFY to come back.
const localKeyCaches = new WeakMap<Sql, Set<{ forgetTenant(tenantId: string): void }>>()

export function registerLocalKeyCache(sql: Sql, cache: { forgetTenant(tenantId: string): void }): () => void {
  let set = localKeyCaches.get(sql)
  if (!set) localKeyCaches.set(sql, (set = new Set()))
  set.add(cache)
  return () => void set.delete(cache)
}

/** This process committed a change to the tenant's keys or status: its caches on `sql` drop the tenant's keys at once. */
export function forgetTenantKeysLocally(sql: Sql, tenantId: string): void {
  for (const cache of localKeyCaches.get(sql) ?? []) cache.forgetTenant(tenantId)
}

/** Resolves a bearer key to its principal, or null. Callers must not say which part was wrong. */
export async function authenticateApiKey(sql: Sql, key: string): Promise<(Principal & { kind: 'tenant' }) | null> {
  if (!looksLikeApiKey(key)) return null
  const row = await q.authenticateKeyHash(sql, sha256(key))
  return row ? { kind: 'tenant', tenantId: row.tenantId, keyId: row.keyId, role: row.role } : null
}

/**
 * Onboarding's first step: a tenant that exists (its data is isolated from then on) but cannot be used yet: it has
 * no API key, and keys are refused while it is pending. Inside the caller's transaction, under the new tenant's id.
 */
export async function createPendingTenant(tx: Tx, input: { id: string; name: string; slug: string; defaultCountry: string; timezone: string }, actor: string) {
  const tenant = await q.insertTenant(tx, { ...input, status: 'pending' })
  await q.insertAuditEntry(tx, { tenantId: input.id, actor, action: 'tenant.created', targetType: 'tenant', targetId: input.id, details: { slug: input.slug, status: 'pending' } })
  return tenant
}

/** Onboarding's last step: the pending tenant becomes active with its first admin key (returned once). Null if it was not pending. */
export async function activateTenantWithFirstKey(tx: Tx, tenantId: string, actor: string) {
  const tenant = await q.activatePendingTenant(tx)
  if (!tenant) return null
  const secret = generateApiKey()
  const apiKey = await q.insertApiKey(tx, { tenantId, name: 'First admin key (onboarding)', role: 'admin', prefix: secret.prefix, keyHash: secret.hash, createdBy: actor })
  await q.insertAuditEntry(tx, { tenantId, actor, action: 'tenant.activated', targetType: 'tenant', targetId: tenantId })
  await q.insertAuditEntry(tx, { tenantId, actor, action: 'api_key.created', targetType: 'api_key', targetId: apiKey.id, details: { role: 'admin' } })
  return { tenant, apiKey: { ...apiKey, key: secret.key } }
}
