/**
 * Partner keys: a partner's own credential. A tenant admin creates one for a partner (shown once, stored as its
 * sha256, like tenant API keys); with it the partner reads only its own links, clicks, commissions, balance, ledger
 * and report and requests withdrawals (portal.ts), and is refused every tenant route (services/api/plugins/auth.ts).
 * RLS still isolates the tenant; the partner is enforced by every portal query naming the key's partner.
 */
import { randomToken, sha256 } from '../../../lib/crypto.js'
import { type Sql, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import * as q from './queries.js'
import type { Who } from './service.js'

export interface PartnerPrincipal { kind: 'partner'; tenantId: string; partnerId: string; keyId: string }

const KEY_PREFIX = 'wpk_'

export function generatePartnerKey(): { key: string; prefix: string; hash: Buffer } {
  const id = randomToken(6).replace(/[-_]/g, 'x').slice(0, 8)
  const key = `${KEY_PREFIX}${id}_${randomToken(32)}`
  return { key, prefix: key.slice(0, 12), hash: sha256(key) }
}

export const looksLikePartnerKey = (value: string) => /^wpk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/.test(value)

/** The actor a partner key acts as, in audit entries and ledger rows. */
export const partnerActor = (p: PartnerPrincipal) => `partner_key:${p.keyId}`

/** Resolves a partner key to its principal, or null (never says which part was wrong). */
export async function authenticatePartnerKey(sql: Sql, key: string): Promise<PartnerPrincipal | null> {
  if (!looksLikePartnerKey(key)) return null
  const row = await q.authenticatePartnerKeyHash(sql, sha256(key))
  return row ? { kind: 'partner', tenantId: row.tenantId, partnerId: row.partnerId, keyId: row.keyId } : null
}

export interface PartnerKeyView { id: string; partnerId: string; label: string; prefix: string; createdBy: string; createdAt: string; lastUsedAt: string | null; revokedAt: string | null }
const view = (k: q.PartnerKeyRow): PartnerKeyView => ({
  id: k.id, partnerId: k.partnerId, label: k.label, prefix: k.prefix, createdBy: k.createdBy, createdAt: k.createdAt.toISOString(),
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null, revokedAt: k.revokedAt?.toISOString() ?? null,
})

/** An admin creates a key for a partner of the tenant: the key is in the answer, once. */
export const createPartnerKey = (sql: Sql, who: Who, partnerId: string, label: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const partner = await q.findPartner(tx, partnerId)
    if (!partner) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
    if (partner.status === 'terminated') throw new AppError('CONFLICT', `partner ${partnerId} is terminated`)
    const secret = generatePartnerKey()
    const row = await q.insertPartnerKey(tx, who.tenantId, { partnerId, label, prefix: secret.prefix, keyHash: secret.hash, createdBy: who.actor })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'partner_key.created', targetType: 'partner_key', targetId: row.id, details: { partnerId }, requestId: who.requestId ?? undefined })
    return { ...view(row), key: secret.key }
  })

export const listPartnerKeys = (sql: Sql, tenantId: string, partnerId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findPartner(tx, partnerId))) throw new AppError('NOT_FOUND', `partner ${partnerId} not found`)
    return (await q.listPartnerKeys(tx, partnerId)).map(view)
  })

export const revokePartnerKey = (sql: Sql, who: Who, partnerId: string, keyId: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const row = await q.revokePartnerKey(tx, partnerId, keyId)
    if (!row) throw new AppError('NOT_FOUND', `key ${keyId} of partner ${partnerId} not found`)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'partner_key.revoked', targetType: 'partner_key', targetId: keyId, details: { partnerId }, requestId: who.requestId ?? undefined })
    return view(row)
  })
