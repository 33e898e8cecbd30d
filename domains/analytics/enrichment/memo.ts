/**
 * A bounded memo for pure enrichment steps, least recently used out first. A site's visitors send the same few
 * hundred user agents, locales, referrers and landing URLs over and over, and parsing them (ua-parser-js, isbot,
 * Intl.Locale, WHATWG URL) is most of what enriching an event costs; a pure step's cached answer is the same answer.
 * Callers give a string key that determines the result, and must treat results as read-only (they are shared).
 */
export function memoize<T>(max: number, compute: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>()
  return (key) => {
    const hit = cache.get(key)
    if (hit !== undefined || cache.has(key)) {
      // Refreshed: the Map's order is its recency.
      cache.delete(key)
      cache.set(key, hit as T)
      return hit as T
    }
    const value = compute(key)
    if (cache.size >= max) cache.delete(cache.keys().next().value!)
    cache.set(key, value)
    return value
  }
}
