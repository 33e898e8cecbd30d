import { z } from 'zod'
import { AppError } from './errors.js'

export const PageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
})

/** Cursors are opaque to callers: base64url JSON of the last row's sort key. */
export const encodeCursor = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

export function decodeCursor<T>(cursor: string, schema: z.ZodType<T>): T {
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')))
  } catch {
    throw new AppError('BAD_REQUEST', 'invalid cursor', { details: [{ in: 'querystring', path: 'cursor', message: 'not a cursor this API returned' }] })
  }
}
