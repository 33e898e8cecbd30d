import { isIPv4, isIPv6 } from 'node:net'
import { pseudonym } from '../../../lib/crypto.js'

/**
 * What a link click keeps of the visitor's address: the network (IPv4 /24, IPv6 /48), enough for a country and for
 * spotting click farms, never the address itself; and a keyed hash of the whole address (lib/crypto pseudonym: HMAC
 * under SECRETS_KEY) so unique visitors without a cookie can be counted without anyone being able to test a guessed
 * address against it. An IPv4-mapped IPv6 address counts as its IPv4 address.
 */
export function truncatedAddress(ip: string | undefined | null): string | null {
  if (!ip) return null
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  const address = mapped ? mapped[1]! : ip.split('%')[0]!
  if (isIPv4(address)) return `${address.split('.').slice(0, 3).join('.')}.0/24`
  if (!isIPv6(address)) return null
  const [head = '', tail = ''] = address.split('::')
  const left = head ? head.split(':') : []
  const right = address.includes('::') && tail ? tail.split(':') : []
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups.slice(0, 3).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/48`
}

export const addressHash = (ip: string | undefined | null): string | null => {
  if (!ip) return null
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  return pseudonym('assessments:link-click:ip', mapped ? mapped[1]! : ip)
}

/** Cut to what the columns keep; control characters out (they are never part of a real user agent or URL). */
export const clip = (value: string | undefined | null, max: number): string | null => {
  if (!value) return null
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '')
  return clean === '' ? null : clean.slice(0, max)
}

/** The visitor cookie's value: 16 random bytes, base64url (22 characters). Anything else is replaced. */
export const VISITOR_ID = /^[A-Za-z0-9_-]{22}$/
