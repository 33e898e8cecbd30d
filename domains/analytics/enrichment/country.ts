import { isSupportedCountry } from 'libphonenumber-js/max'
import { normalizePhone } from '../../marketing/leads/identity/phone.js'
import type { Enrichment } from './schemas.js'
import { memoize } from './memo.js'
import { cleanText, MAX_LOCALE } from './text.js'

/**
 * The lead's country. A phone number says where the line was issued: strong. A locale (`pt-BR`, from the browser's
 * language or WhatsApp's) says which language variant a person chose, often but not always where they are (an
 * expatriate, a default never changed): weak, and only when no phone is known.
 */
export function inferCountry(input: { phoneE164?: unknown; locale?: unknown }): Enrichment['country'] {
  const phone = typeof input.phoneE164 === 'string' ? normalizePhone(input.phoneE164) : null
  if (phone?.country) return { code: phone.country, from: 'phone', confidence: 'strong' }
  const region = localeRegion(input.locale)
  return region ? { code: region, from: 'locale', confidence: 'weak' } : null
}

/** The region of a BCP 47 tag (`pt-BR`, `pt_BR`, `zh-Hant-TW`, or an Accept-Language list's first tag), or null. */
export function localeRegion(value: unknown): string | null {
  const text = cleanText(value, MAX_LOCALE)
  return text ? regionOf(text) : null
}

/** Intl.Locale costs microseconds a call and a site's visitors have a handful of locales: memoized (memo.ts). */
const regionOf = memoize(500, (text: string): string | null => {
  const first = text.split(/[,;]/, 1)[0]!.trim().replace(/_/g, '-')
  try {
    // Intl.Locale is the standard BCP 47 parser; it throws on a malformed tag.
    const region = new Intl.Locale(first).region
    // Numeric regions (es-419: Latin America) are not countries.
    return region && /^[A-Z]{2}$/.test(region) && isSupportedCountry(region) ? region : null
  } catch {
    return null
  }
})
