/** Limits on outside text before any parser sees it: a huge string must cost no more than a normal one. */
export const MAX_USER_AGENT = 512
export const MAX_URL = 2048
export const MAX_UTM_VALUE = 200
export const MAX_LOCALE = 64

/** The trimmed string, cut to max characters, or null when it is not a string or is empty. */
export function cleanText(value: unknown, max: number): string | null {
  if (typeof value !== 'string') return null
  // Cut before trimming so a multi-megabyte value is never scanned whole.
  const text = (value.length > max * 2 ? value.slice(0, max * 2) : value).trim()
  if (text.length === 0) return null
  return text.length > max ? text.slice(0, max) : text
}

/** A URL or null: `new URL` throws on garbage, and we never throw. */
export function parseUrl(value: unknown): URL | null {
  const text = cleanText(value, MAX_URL)
  if (!text) return null
  try {
    return new URL(text)
  } catch {
    return null
  }
}
