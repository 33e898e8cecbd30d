import { z } from 'zod'
import { AppError } from './errors.js'

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
})

/**
 * A cursor's timestamp as PostgreSQL prints a timestamptz (`2024-05-01 12:00:00.123456+00`) or as ISO 8601. Checked
 * field by field (a 31st of February is refused too), because a cursor is caller input: whatever reaches a
 * `::timestamptz` cast must be a time the database accepts, else the caller gets a 500 instead of a 400.
 */
export const CursorTimestamp = z.string().max(40).refine(isRealTimestamp, 'not a timestamp')

const BIGINT_MAX = 9_223_372_036_854_775_807n
/** A bigint id as text, within the column's range (a bigger number would make the database fail the query). */
export const BigintId = z.string().refine((v) => /^\d{1,19}$/.test(v) && BigInt(v) <= BIGINT_MAX, 'not an id')

/** The usual keyset cursor: the last row's sort time and id (a uuid or a bigint, as the table's id is). */
export const keysetCursor = (id: z.ZodType<string>) => z.object({ at: CursorTimestamp, id })

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}(?::?\d{2})?)?$/

function isRealTimestamp(text: string): boolean {
  const m = TIMESTAMP.exec(text)
  if (!m) return false
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second))
  const offset = m[8] && m[8] !== 'Z' ? m[8].replace(':', '') : '+0000'
  return year >= 1 && date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
    date.getUTCHours() === hour && date.getUTCMinutes() === minute && date.getUTCSeconds() === second &&
    Number(offset.slice(1, 3)) <= 15 && Number(offset.slice(3, 5) || '0') < 60
}

/** Cursors are opaque to callers: base64url JSON of the last row's sort key. */
export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
  } catch {
    throw new AppError('BAD_REQUEST', 'invalid cursor', { details: [{ in: 'querystring', path: 'cursor', message: 'not a cursor this API returned' }] })
  }
}
