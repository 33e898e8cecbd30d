import { z } from 'zod'

// RFC 5321 caps a forward path at 256 octets including the angle brackets.
const MAX_EMAIL_LENGTH = 254
const EmailAddress = z.email().max(MAX_EMAIL_LENGTH)

/**
 * The form of an email address we store and match leads on: trimmed and lowercased, or null when it is not an
 * address. The local part is case-sensitive on paper, but no mail provider people use treats it so, and
 * "Ana@x.com" and "ana@x.com" arriving as two leads is the real failure.
 *
 * We deliberately do not strip dots or "+tags" (ana.silva+promo@gmail.com stays as it is): only some providers
 * (Gmail) ignore them, and elsewhere "a.b@" and "ab@", or "ana+shop@" and "ana@", can be distinct mailboxes owned
 * by different people. Merging two leads is irreversible (their histories and consents become one), so we only
 * fold what is the same address everywhere.
 */
export function normalizeEmail(raw: string): string | null {
  if (typeof raw !== 'string') return null
  const email = raw.trim().toLowerCase()
  return EmailAddress.safeParse(email).success ? email : null
}
