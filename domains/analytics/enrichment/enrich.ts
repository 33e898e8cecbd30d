import { inferCountry } from './country.js'
import { classifyAcquisition } from './referrer.js'
import type { Enrichment } from './schemas.js'
import { parseUserAgent } from './user-agent.js'

/**
 * Everything enrichment derives for one event: device from the user agent, source and channel from the referrer,
 * landing URL and UTM, country from the phone or the locale. Pure and deterministic: the same input gives the same
 * output, whenever and wherever it runs, so re-enriching raw events (a rollup recomputed from raw) agrees with the
 * first pass. Never throws: any field may be missing, of the wrong type, malformed or huge.
 */
export function enrichEvent(input: unknown): Enrichment {
  const fields = input && typeof input === 'object' ? (input as Record<string, unknown>) : {}
  const ua = parseUserAgent(fields.userAgent)
  const acquisition = classifyAcquisition({ referrer: fields.referrer, pageUrl: fields.pageUrl, utm: fields.utm })
  return {
    browser: ua.browser,
    os: ua.os,
    device: ua.device,
    isBot: ua.isBot,
    source: acquisition.source,
    channel: acquisition.channel,
    referrerHost: acquisition.referrerHost,
    internal: acquisition.internal,
    utm: acquisition.utm,
    clickId: acquisition.clickId,
    country: inferCountry({ phoneE164: fields.phoneE164, locale: fields.locale }),
  }
}
