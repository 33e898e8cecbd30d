import { validVisitorId } from './links.js'

/** The partner-link visitor cookie: first-party to the link domain, HttpOnly (no script reads it), Lax (sent on the redirect back). */
export const VISITOR_COOKIE = 'wa_lv'

export function visitorIdFromCookie(header: string | undefined): string | null {
  if (!header) return null
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=')
    if (name === VISITOR_COOKIE) return validVisitorId(rest.join('='))
  }
  return null
}

export const visitorCookie = (visitorId: string, days: number, secure: boolean) =>
  `${VISITOR_COOKIE}=${visitorId}; Max-Age=${days * 86_400}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`
