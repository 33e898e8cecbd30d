import { parsePhoneNumberFromString } from 'libphonenumber-js/max'
import type { Tx } from '../../lib/db.js'
import * as q from './queries.js'

/** Shorter strings would match unrelated data (a year, a zip code): never searched for on their own. */
const MIN_NEEDLE_LENGTH = 6

/**
 * Every form in which the person's identity may be stored, lowercase: the email; for each phone the E.164 digits
 * (with or without '+', so the digits), the national significant number (how people and CSVs often write it) and
 * the wa_id (which may keep a legacy spelling, e.g. Brazil without the ninth digit). A needle containing another is
 * dropped: any text holding the longer one holds the shorter.
 */
export function identityNeedles(p: { emails: string[]; phones: string[]; waIds: string[] }): string[] {
  const all = new Set<string>()
  for (const e of p.emails) all.add(e.trim().toLowerCase())
  for (const phone of p.phones) {
    const digits = phone.replace(/\D/g, '')
    if (digits) all.add(digits)
    const national = parsePhoneNumberFromString(`+${digits}`)?.nationalNumber
    if (national) all.add(String(national))
  }
  for (const w of p.waIds) {
    const id = w.trim().toLowerCase()
    all.add(id)
    if (/^\d+$/.test(id)) {
      const national = parsePhoneNumberFromString(`+${id}`)?.nationalNumber
      if (national) all.add(String(national))
    }
  }
  const usable = [...all].filter((n) => n.length >= MIN_NEEDLE_LENGTH).sort((a, b) => a.length - b.length || (a < b ? -1 : 1))
  return usable.filter((n, i) => !usable.slice(0, i).some((shorter) => n.includes(shorter)))
}

/**
 * The verification pass: every text-like column of every table in the database (discovered from pg_catalog when it
 * runs, by privacy.find_mentions, with the owner's rights so that no policy hides a row), searched for the needles.
 * Returns `schema.table.column` for each hit, never the value.
 */
export async function findRemainingMentions(tx: Tx, needles: string[]): Promise<string[]> {
  if (needles.length === 0) return []
  const hits = await q.findMentions(tx, needles)
  return hits.map((h) => `${h.tableName}.${h.columnName}`)
}
