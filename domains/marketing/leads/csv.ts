import type { LeadView } from './schemas.js'

type Column = { header: string; value: (lead: LeadView) => unknown; text: boolean }

/**
 * The export's columns. `text` columns hold what people typed; a spreadsheet would run a value starting with
 * = + - @ as a formula (CSV injection), so those get a leading apostrophe. Phones (E.164 starts with '+'), ids,
 * dates and enums are ours and left exact.
 */
const COLUMNS: Column[] = [
  { header: 'id', value: (l) => l.id, text: false },
  { header: 'name', value: (l) => l.name, text: true },
  { header: 'profile_name', value: (l) => l.profileName, text: true },
  { header: 'email', value: (l) => l.email, text: true },
  { header: 'phone_e164', value: (l) => l.phoneE164, text: false },
  { header: 'wa_id', value: (l) => l.waId, text: false },
  { header: 'company', value: (l) => l.company, text: true },
  { header: 'source', value: (l) => l.source, text: false },
  { header: 'status', value: (l) => l.status, text: false },
  { header: 'owner', value: (l) => l.owner, text: true },
  { header: 'tags', value: (l) => l.tags.join(';'), text: true },
  { header: 'opted_out_at', value: (l) => l.optedOutAt, text: false },
  { header: 'first_seen_at', value: (l) => l.firstSeenAt, text: false },
  { header: 'last_seen_at', value: (l) => l.lastSeenAt, text: false },
  { header: 'created_at', value: (l) => l.createdAt, text: false },
  { header: 'fields', value: (l) => (l.fields && Object.keys(l.fields).length > 0 ? JSON.stringify(l.fields) : ''), text: true },
]

const FORMULA_START = /^[=+\-@\t\r]/

/** One CSV field per RFC 4180: quoted when it holds a comma, quote or line break, quotes doubled. */
export function csvField(value: unknown, text: boolean): string {
  if (value === null || value === undefined) return ''
  let s = value instanceof Date ? value.toISOString() : String(value)
  if (text && FORMULA_START.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export const CSV_HEADER = `${COLUMNS.map((c) => c.header).join(',')}\r\n`

export const leadCsvRow = (lead: LeadView): string => `${COLUMNS.map((c) => csvField(c.value(lead), c.text)).join(',')}\r\n`
