import { pseudonym } from '../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { normalizeEmail } from '../marketing/leads/identity/email.js'
import { phoneMatchKey, waIdToE164 } from '../marketing/leads/identity/phone.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import * as q from './queries.js'

/**
 * Suppression: an erased person's identity keys (email, phone key, wa_id) kept only as keyed hashes (HMAC under
 * SECRETS_KEY, lib/crypto.ts pseudonym), so that the platform can recognise them without holding them:
 * - no template (nor broadcast, nor bot-initiated message: all of those go out as templates outside a window the
 *   person opened) is sent to them (the outbound sender asks suppressedRecipients);
 * - a form submission for them is stored only with fresh consent, as a new lead marked returning_after_erasure_at;
 *   without it, it is dropped and counted on the suppression (screenSubmissions);
 * - a new WhatsApp message from them is their own act: it creates a new lead, marked the same way (markReturningSenders).
 * Tenants list them (hashes and dates) and lift one (DELETE /v1/privacy/suppressions/:id).
 */

export type KeyKind = 'email' | 'phone' | 'wa_id'

export const keyHash = (kind: KeyKind, value: string): string => pseudonym(`privacy:suppression:${kind}`, value)

export interface IdentityKeys {
  emails: string[]
  phoneKeys: string[]
  waIds: string[]
}

/** The hash rows for a person's keys, each key once. */
export function suppressionRows(keys: IdentityKeys): { kind: KeyKind; hash: string }[] {
  const rows = new Map<string, { kind: KeyKind; hash: string }>()
  const add = (kind: KeyKind, value: string) => {
    const hash = keyHash(kind, value)
    rows.set(hash, { kind, hash })
  }
  for (const e of keys.emails) add('email', e)
  for (const p of keys.phoneKeys) add('phone', p)
  for (const w of keys.waIds) add('wa_id', w)
  return [...rows.values()]
}

const phoneKeyOfWaId = (waId: string): string | null => {
  const e164 = waIdToE164(waId)
  return e164 ? phoneMatchKey(e164) : null
}

/** A screen must never fail a batch: a phone that is not E.164 (the form validated it) simply has no key. */
function safePhoneKey(e164: string | null): string | null {
  if (!e164) return null
  try {
    return phoneMatchKey(e164)
  } catch {
    return null
  }
}

/** The hashes that stand for one person's keys, as the hooks see them. */
function hashesOf(p: { email?: string | null; phoneKey?: string | null; waId?: string | null }): string[] {
  const out: string[] = []
  const email = p.email ? normalizeEmail(p.email) : null
  if (email) out.push(keyHash('email', email))
  if (p.phoneKey) out.push(keyHash('phone', p.phoneKey))
  if (p.waId) {
    out.push(keyHash('wa_id', p.waId))
    const key = phoneKeyOfWaId(p.waId)
    if (key) out.push(keyHash('phone', key))
  }
  return out
}

/** Recipients (wa_ids) that are suppressed, of the given ones: one query for the set. */
export async function suppressedRecipients(tx: Tx, waIds: string[]): Promise<Set<string>> {
  const byHash = new Map<string, string>()
  for (const w of new Set(waIds)) for (const h of hashesOf({ waId: w })) byHash.set(h, w)
  const hit = await q.suppressedHashes(tx, [...byHash.keys()])
  return new Set([...hit].map((h) => byHash.get(h)!))
}

export interface SubmissionKeys {
  id: string
  email: string | null
  phoneE164: string | null
  /** The submission says the person gave consent, now. */
  consentGranted: boolean
}

/**
 * Form processing's hook, for one batch: which submissions to drop (a suppressed person without fresh consent:
 * nothing of them is kept, the suppression counts it) and which to store as a returning person (fresh consent).
 */
export async function screenSubmissions(tx: Tx, rows: SubmissionKeys[]): Promise<{ drop: Set<string>; returning: Set<string> }> {
  const drop = new Set<string>()
  const returning = new Set<string>()
  if (rows.length === 0) return { drop, returning }
  const hashesByRow = rows.map((r) => hashesOf({ email: r.email, phoneKey: safePhoneKey(r.phoneE164) }))
  const hit = await q.suppressedHashes(tx, [...new Set(hashesByRow.flat())])
  if (hit.size === 0) return { drop, returning }
  const blocked = new Map<string, number>()
  rows.forEach((r, i) => {
    const hits = hashesByRow[i]!.filter((h) => hit.has(h))
    if (hits.length === 0) return
    if (r.consentGranted) {
      returning.add(r.id)
    } else {
      drop.add(r.id)
      for (const h of hits) blocked.set(h, (blocked.get(h) ?? 0) + 1)
    }
  })
  if (blocked.size > 0) await q.countBlockedSubmissions(tx, [...blocked].map(([hash, n]) => ({ hash, n })))
  return { drop, returning }
}

/** Marks leads that came back after erasure (a submission with fresh consent, screened above). */
export const markReturningLeads = (tx: Tx, leadIds: string[]) => q.markReturning(tx, [...new Set(leadIds)])

/**
 * WhatsApp ingestion's hook, for one batch of senders already written as leads: those whose keys are suppressed
 * are people back after erasure, and their (new) leads are marked so. One query when nobody is suppressed.
 */
export async function markReturningSenders(tx: Tx, senders: { leadId: string; phoneKey: string | null; waId: string | null }[]): Promise<void> {
  if (senders.length === 0) return
  const hashesBySender = senders.map((s) => hashesOf({ phoneKey: s.phoneKey?.startsWith('bsuid:') ? null : s.phoneKey, waId: s.waId }))
  const hit = await q.suppressedHashes(tx, [...new Set(hashesBySender.flat())])
  if (hit.size === 0) return
  await q.markReturning(tx, senders.filter((_, i) => hashesBySender[i]!.some((h) => hit.has(h))).map((s) => s.leadId))
}

// ---------------------------------------------------------------------------------------------------------
// The tenant's view.

export const listSuppressions = (sql: Sql, tenantId: string, limit: number) => withTenant(sql, tenantId, (tx) => q.listSuppressions(tx, limit))

/** Lifts one suppression (the person may be contacted and recreated again by that key), audit-logged. */
export async function liftSuppression(sql: Sql, who: { tenantId: string; actor: string; requestId: string | null }, id: string) {
  return withTenant(sql, who.tenantId, async (tx) => {
    const gone = await q.deleteSuppression(tx, id)
    if (gone) {
      await insertAuditEntry(tx, {
        tenantId: who.tenantId, actor: who.actor, action: 'privacy.suppression_lifted', targetType: 'suppression', targetId: id,
        details: { keyKind: gone.keyKind, keyHash: gone.keyHash, erasureRequestId: gone.erasureRequestId }, requestId: who.requestId ?? undefined,
      })
    }
    return gone
  })
}
