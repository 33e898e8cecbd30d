import { createHmac, timingSafeEqual } from 'node:crypto'

const HEADER = /^sha256=([0-9a-f]{64})$/i

/**
 * Meta signs the exact bytes it sends (its JSON escapes non-ASCII as \\uXXXX), so we HMAC the raw body, never a
 * re-serialization, and compare in constant time.
 */
export function verifyMetaSignature(rawBody: Buffer, header: string | undefined, appSecret: string): boolean {
  const match = header ? HEADER.exec(header.trim()) : null
  if (!match) return false
  const expected = createHmac('sha256', appSecret).update(rawBody).digest()
  return timingSafeEqual(expected, Buffer.from(match[1]!, 'hex'))
}

export const signMetaBody = (rawBody: Buffer | string, appSecret: string): string =>
  `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`

export const hasSignatureHeader = (header: string | undefined): boolean => !!header && HEADER.test(header.trim())
