import { z } from 'zod'

/**
 * What enrichment adds to an event, derived only from the event's own context (user agent, referrer, page URL,
 * UTM, locale) and the lead's phone number. The rollup dimensions `visit:device`, `visit:channel`, `lead:source`
 * and `visit:country` are these fields, so their values are closed sets or normalised (lowercase) strings.
 */

export const DeviceType = z.enum(['desktop', 'mobile', 'tablet', 'bot', 'other'])
export type DeviceType = z.infer<typeof DeviceType>

export const Channel = z.enum(['direct', 'search', 'social', 'email', 'paid', 'whatsapp', 'referral'])
export type Channel = z.infer<typeof Channel>

/** The ad click ids we recognise in a landing URL; `ctwa_clid` is Meta's click-to-WhatsApp ad click. */
export const ClickIdParam = z.enum(['gclid', 'gbraid', 'wbraid', 'dclid', 'msclkid', 'fbclid', 'ttclid', 'twclid', 'li_fat_id', 'ctwa_clid'])
export type ClickIdParam = z.infer<typeof ClickIdParam>

const NameVersion = z.object({ name: z.string().max(60).nullable(), version: z.string().max(40).nullable() })

export const Utm = z.object({
  source: z.string().max(200).nullable(),
  medium: z.string().max(200).nullable(),
  campaign: z.string().max(200).nullable(),
  term: z.string().max(200).nullable(),
  content: z.string().max(200).nullable(),
})
export type Utm = z.infer<typeof Utm>

export const Enrichment = z.object({
  browser: NameVersion,
  os: NameVersion,
  device: DeviceType,
  /** Crawlers, link-preview fetchers (WhatsApp's, Facebook's), HTTP libraries (curl): counted apart from people. */
  isBot: z.boolean(),
  /** Where the visit came from, lowercase: utm_source when tagged, else a known name (`google`), else the host. */
  source: z.string().max(200).nullable(),
  channel: Channel,
  /** The referrer's host (no path, no query: those can carry personal data), or null. */
  referrerHost: z.string().max(253).nullable(),
  /** The referrer is the page's own site: navigation inside it, counted as direct. */
  internal: z.boolean(),
  utm: Utm,
  clickId: z.object({ param: ClickIdParam, value: z.string().max(200) }).nullable(),
  /** ISO 3166-1 alpha-2. From the phone number (strong) or else from the locale's region (weak: a language setting). */
  country: z.object({ code: z.string().regex(/^[A-Z]{2}$/), from: z.enum(['phone', 'locale']), confidence: z.enum(['strong', 'weak']) }).nullable(),
})
export type Enrichment = z.infer<typeof Enrichment>

/**
 * The input of enrichEvent. Every field is optional and the function accepts anything (it is fed from outside
 * input); this schema documents the shape and lets the intake validate what it forwards.
 */
export const EnrichInput = z.object({
  userAgent: z.string().optional(),
  referrer: z.string().optional(),
  pageUrl: z.string().optional(),
  utm: z.object({
    source: z.string().optional(),
    medium: z.string().optional(),
    campaign: z.string().optional(),
    term: z.string().optional(),
    content: z.string().optional(),
  }).partial().optional(),
  locale: z.string().optional(),
  phoneE164: z.string().optional(),
})
export type EnrichInput = z.infer<typeof EnrichInput>
