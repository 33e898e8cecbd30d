import { memoize } from './memo.js'
import type { Channel, ClickIdParam, Utm } from './schemas.js'
import { sourceForHost, sourceForUtm } from './sources.js'
import { cleanText, MAX_UTM_VALUE, parseUrl } from './text.js'

export type Acquisition = {
  source: string | null
  channel: Channel
  referrerHost: string | null
  internal: boolean
  utm: Utm
  clickId: { param: ClickIdParam; value: string } | null
}

export type UtmInput = Partial<Record<keyof Utm, unknown>>

const UTM_KEYS = ['source', 'medium', 'campaign', 'term', 'content'] as const

/** In this order: a landing URL rarely carries two, and when it does the more specific id wins. */
const CLICK_IDS: ClickIdParam[] = ['ctwa_clid', 'gclid', 'gbraid', 'wbraid', 'dclid', 'msclkid', 'fbclid', 'ttclid', 'twclid', 'li_fat_id']

/**
 * Click ids that only ads add. Meta appends fbclid to ordinary, unpaid link clicks from Facebook and Instagram too, so
 * it is kept (and names the source) but does not make a visit paid, as in Plausible.
 */
const PAID_CLICK_IDS = new Set<ClickIdParam>(['gclid', 'gbraid', 'wbraid', 'dclid', 'msclkid', 'ttclid', 'twclid', 'li_fat_id'])

/** The engine behind each click id, for the source when nothing else names one. */
const CLICK_ID_SOURCE: Record<ClickIdParam, string> = {
  ctwa_clid: 'facebook', gclid: 'google', gbraid: 'google', wbraid: 'google', dclid: 'google', msclkid: 'bing',
  fbclid: 'facebook', ttclid: 'tiktok', twclid: 'twitter', li_fat_id: 'linkedin',
}

// utm_medium vocabularies, as GA4's default channel group and Plausible read them.
const PAID_MEDIUM = /^(.*cp.*|ppc|retargeting|paid.*|display|banner|cpm|ads?)$/
const EMAIL_TAGS = ['email', 'e-mail', 'e_mail', 'e mail', 'newsletter']
const SOCIAL_MEDIUMS = new Set(['social', 'social-network', 'social-media', 'sm', 'social network', 'social media'])
const SEARCH_MEDIUMS = new Set(['organic', 'search'])
const WHATSAPP_TAGS = new Set(['whatsapp', 'wa'])

/**
 * Where a visit came from. The precedence (README.md, "Source and channel"):
 * 1. A click-to-WhatsApp ad (`ctwa_clid`) is `whatsapp`.
 * 2. UTM tags (explicit ones field by field over the landing URL's) decide when present: a paid medium or an ad
 *    click id → `paid`; an email, social, search or WhatsApp medium → that channel; otherwise utm_source's known
 *    category, else `referral`. utm_source is the source.
 * 3. An ad click id without UTM → `paid`, source from the referrer or the id's engine.
 * 4. Otherwise the referrer: none, or the page's own host → `direct`; a known host → its category; any other
 *    host → `referral` with the host as source.
 */
export function classifyAcquisition(input: { referrer?: unknown; pageUrl?: unknown; utm?: unknown }): Acquisition {
  // Parsing two URLs is most of the cost, and a site's pages and referrers repeat: memoized (memo.ts) when the inputs
  // are plain strings (and utm absent), the shape a browser's events have; anything else is computed.
  if ((typeof input.referrer === 'string' || input.referrer === undefined) && (typeof input.pageUrl === 'string' || input.pageUrl === undefined)
    && input.utm === undefined && (input.referrer?.length ?? 0) + (input.pageUrl?.length ?? 0) <= 4000) {
    // Length-prefixed: any character may be in either string. An absent URL reads as an empty one (parseUrl: null).
    const referrer = input.referrer ?? ''
    return classifyUrls(`${referrer.length}:${referrer}${input.pageUrl ?? ''}`)
  }
  return classify(input)
}

const classifyUrls = memoize(2000, (key: string) => {
  const colon = key.indexOf(':')
  const end = colon + 1 + Number(key.slice(0, colon))
  const a = classify({ referrer: key.slice(colon + 1, end), pageUrl: key.slice(end) })
  // Shared by every event with these URLs: read-only all the way down.
  return Object.freeze({ ...a, utm: Object.freeze({ ...a.utm }), clickId: a.clickId && Object.freeze({ ...a.clickId }) })
})

function classify(input: { referrer?: unknown; pageUrl?: unknown; utm?: unknown }): Acquisition {
  const page = parseUrl(input.pageUrl)
  const referrer = parseUrl(input.referrer)
  const utm = readUtm(page, input.utm)
  const clickId = readClickId(page)

  const referrerHost = referrer ? hostOf(referrer) : null
  const pageHost = page ? hostOf(page) : null
  const internal = referrerHost !== null && pageHost !== null && sameSite(referrerHost, pageHost)
  const known = referrerHost && !internal ? sourceForHost(referrerHost) : null
  const referrerSource = internal ? null : (known?.name ?? referrerHost?.slice(0, MAX_UTM_VALUE) ?? null)
  const base = { referrerHost, internal, utm, clickId }

  if (clickId?.param === 'ctwa_clid') {
    return { ...base, source: lower(utm.source) ?? referrerSource ?? 'facebook', channel: 'whatsapp' }
  }

  const medium = lower(utm.medium) ?? ''
  const utmSource = lower(utm.source)
  if (utmSource || medium || utm.campaign) {
    return { ...base, source: utmSource ?? referrerSource, channel: channelFromUtm(medium, utmSource, clickId !== null && PAID_CLICK_IDS.has(clickId.param), known?.category) }
  }
  if (clickId && PAID_CLICK_IDS.has(clickId.param)) return { ...base, source: referrerSource ?? CLICK_ID_SOURCE[clickId.param], channel: 'paid' }
  if (clickId && !referrerHost) return { ...base, source: CLICK_ID_SOURCE[clickId.param], channel: 'social' }
  if (!referrerHost || internal) return { ...base, source: null, channel: 'direct' }
  return { ...base, source: referrerSource, channel: known?.category ?? 'referral' }
}

function channelFromUtm(medium: string, utmSource: string | null, hasClickId: boolean, referrerCategory: Channel | undefined): Channel {
  if (hasClickId || PAID_MEDIUM.test(medium)) return 'paid'
  if (EMAIL_TAGS.some((tag) => medium.includes(tag))) return 'email'
  if (SOCIAL_MEDIUMS.has(medium)) return 'social'
  if (SEARCH_MEDIUMS.has(medium)) return 'search'
  if (WHATSAPP_TAGS.has(medium)) return 'whatsapp'
  if (medium === 'referral') return 'referral'
  const known = utmSource ? sourceForUtm(utmSource) : null
  if (known) return known.category
  if (utmSource && EMAIL_TAGS.some((tag) => utmSource.includes(tag))) return 'email'
  // Only a campaign (or an unknown medium) with no source: the referrer still tells where the click happened.
  return !utmSource && referrerCategory ? referrerCategory : 'referral'
}

/** Explicit UTM fields win field by field over the landing URL's (the client may keep first-touch UTM). */
function readUtm(page: URL | null, explicit: unknown): Utm {
  const given = explicit && typeof explicit === 'object' ? (explicit as UtmInput) : {}
  const utm = {} as Utm
  for (const key of UTM_KEYS) {
    utm[key] = cleanText(given[key], MAX_UTM_VALUE) ?? cleanText(page?.searchParams.get(`utm_${key}`), MAX_UTM_VALUE)
  }
  return utm
}

function readClickId(page: URL | null): Acquisition['clickId'] {
  if (!page || page.search.length < 2) return null
  for (const param of CLICK_IDS) {
    const value = cleanText(page.searchParams.get(param), MAX_UTM_VALUE)
    if (value) return { param, value }
  }
  return null
}

/** The host without `www.`, lowercase (URL already lowercases), or the app package for `android-app://`. */
function hostOf(url: URL): string | null {
  const host = url.hostname
  if (!host) return null
  // DNS names stop at 253 characters; the URL parser does not check that.
  return (host.startsWith('www.') ? host.slice(4) : host).slice(0, 253)
}

/** `shop.example.com` and `example.com` are one site: a visitor moving between them is not a referral. */
function sameSite(a: string, b: string): boolean {
  return a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`)
}

const lower = (value: string | null): string | null => (value ? value.toLowerCase() : null)
