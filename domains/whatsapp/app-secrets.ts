import type { SecretBox } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import { bindOwnAppKeys, ownAppSecrets } from './queries.js'

const TTL_MS = 30_000
const MAX_ENTRIES = 10_000
const APP_KEY_PURPOSE = 'whatsapp-own-app'

/**
 * Which Meta app verified a delivery, as stored on it (whatsapp.webhook_deliveries.signed_by): the platform's app,
 * or a tenant's own app by its key. 'unbound' is a delivery with no record of it (older rows): its items are refused.
 */
export type DeliverySigner = 'platform' | `own:${string}`
export type ParsedSigner = { kind: 'platform' } | { kind: 'own'; appKey: string } | { kind: 'unbound' }

/**
 * An own app's identity: a keyed fingerprint of its secret. Not the meta_app_id, which a tenant can claim freely;
 * only the app's owner can sign with its secret, so "the app whose secret verified this" is what the key names.
 */
export const appKeyOf = (box: SecretBox, appSecret: string): string => box.fingerprint(APP_KEY_PURPOSE, appSecret).toString('hex')

export const ownSigner = (appKey: string): DeliverySigner => `own:${appKey}`

export function parseSigner(signedBy: string): ParsedSigner {
  if (signedBy === 'platform') return { kind: 'platform' }
  if (/^own:[0-9a-f]{64}$/.test(signedBy)) return { kind: 'own', appKey: signedBy.slice(4) }
  return { kind: 'unbound' }
}

/** Is a number (or a WABA, through its numbers) registered under the app that signed a delivery? */
export function registeredUnder(signer: ParsedSigner, registration: { platform: boolean; appKeys: string[] }): boolean {
  if (signer.kind === 'platform') return registration.platform
  if (signer.kind === 'own') return registration.appKeys.includes(signer.appKey)
  return false
}

export interface OwnApp {
  secret: string
  appKey: string
}

/**
 * App secrets of tenants who bring their own Meta app, looked up by the phone number ids and WABA ids a delivery
 * names. The ids only choose which secrets to try: a delivery is bound to the app whose secret verified it (its
 * key), never to the apps owning the ids, so naming another tenant's number next to one's own WABA verifies the
 * delivery for one's own app only, and processing refuses the other tenant's items.
 *
 * Cached briefly (positive and negative) so the webhook hot path does not query per request; a rotated secret takes
 * effect within TTL_MS. Older registrations without a key are given one on the cache miss that opens their secret.
 */
export class OwnAppSecrets {
  private cache = new Map<string, { at: number; apps: OwnApp[] }>()

  constructor(private readonly sql: Sql, private readonly box: SecretBox) {}

  async forIds(phoneNumberIds: string[], wabaIds: string[]): Promise<OwnApp[]> {
    if (phoneNumberIds.length === 0 && wabaIds.length === 0) return []
    const key = `${[...phoneNumberIds].sort().join(',')}|${[...wabaIds].sort().join(',')}`
    const hit = this.cache.get(key)
    if (hit && Date.now() - hit.at < TTL_MS) return hit.apps
    const rows = await ownAppSecrets(this.sql, phoneNumberIds, wabaIds)
    const apps = new Map<string, OwnApp>()
    const unbound: { phoneId: string; sealed: string; appKey: Buffer }[] = []
    for (const row of rows) {
      const secret = this.box.open(row.appSecretSealed)
      const appKey = appKeyOf(this.box, secret)
      apps.set(appKey, { secret, appKey })
      if (!row.bound) unbound.push({ phoneId: row.phoneId, sealed: row.appSecretSealed, appKey: Buffer.from(appKey, 'hex') })
    }
    if (unbound.length > 0) await bindOwnAppKeys(this.sql, unbound)
    const result = [...apps.values()]
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
    this.cache.set(key, { at: Date.now(), apps: result })
    return result
  }
}

/** The ids a delivery names, read without trusting it (the signature is not verified yet). */
export function idsInDelivery(body: unknown): { phoneNumberIds: string[]; wabaIds: string[] } {
  const phoneNumberIds = new Set<string>()
  const wabaIds = new Set<string>()
  const entries = (body as { entry?: unknown })?.entry
  if (Array.isArray(entries)) {
    for (const entry of entries.slice(0, 100)) {
      if (typeof entry?.id === 'string') wabaIds.add(entry.id)
      const changes = Array.isArray(entry?.changes) ? entry.changes : []
      for (const change of changes.slice(0, 100)) {
        const id = change?.value?.metadata?.phone_number_id
        if (typeof id === 'string') phoneNumberIds.add(id)
      }
    }
  }
  return { phoneNumberIds: [...phoneNumberIds].slice(0, 50), wabaIds: [...wabaIds].slice(0, 50) }
}
