import type { SecretBox } from '../../lib/crypto.js'
import type { Sql } from '../../lib/db.js'
import { ownAppSecrets } from './queries.js'

const TTL_MS = 30_000
const MAX_ENTRIES = 10_000

/**
 * App secrets of tenants who bring their own Meta app, looked up by the phone number ids and WABA ids a delivery
 * names. Cached briefly (positive and negative) so the webhook hot path does not query per request; a rotated
 * secret takes effect within TTL_MS.
 */
export class OwnAppSecrets {
  private cache = new Map<string, { at: number; secrets: string[] }>()

  constructor(private readonly sql: Sql, private readonly box: SecretBox) {}

  async forIds(phoneNumberIds: string[], wabaIds: string[]): Promise<string[]> {
    if (phoneNumberIds.length === 0 && wabaIds.length === 0) return []
    const key = `${[...phoneNumberIds].sort().join(',')}|${[...wabaIds].sort().join(',')}`
    const hit = this.cache.get(key)
    if (hit && Date.now() - hit.at < TTL_MS) return hit.secrets
    const sealed = await ownAppSecrets(this.sql, phoneNumberIds, wabaIds)
    const secrets = sealed.map((s) => this.box.open(s))
    if (this.cache.size >= MAX_ENTRIES) this.cache.clear()
    this.cache.set(key, { at: Date.now(), secrets })
    return secrets
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
