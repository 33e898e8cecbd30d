import { normalizeEmail } from '../leads/identity/email.js'
import { type CountryCode, normalizePhone } from '../leads/identity/phone.js'
import { type FormDefinition, type FormField, type LeadField, TEXT_MAX_LENGTH, UTM_KEYS } from './schemas.js'

/** What validateSubmission needs of a form; a stored FormDefinition fits. */
export type SubmissionForm = Pick<FormDefinition, 'fields' | 'honeypotField' | 'minFillSeconds' | 'consent'> & {
  defaultCountry?: CountryCode
}

export type SubmissionError = { field: string; message: string }
export type SubmissionLead = { name?: string; email?: string; phoneE164?: string; company?: string }

type UtmKey = (typeof UTM_KEYS)[number]

/** What the body said about itself rather than about the person. Never fails a submission: bad values are dropped. */
export type SubmissionMeta = {
  utm: Partial<Record<UtmKey, string>>
  consent?: boolean
  startedAt?: Date
  pageUrl?: string
  referrer?: string
  /** `anonymous_id`: the site's visitor id (POST /v1/events anonymousId), so the visitor's page views count for the lead. */
  anonymousId?: string
  /** Seconds between the page's fill-start timestamp and `now`, when the page sent one. */
  fillSeconds?: number
  /**
   * Bot signals, for the endpoint to act on (typically: answer as if accepted, store nothing). A missing fill-start
   * timestamp is not counted: a form posted without JavaScript has none.
   */
  spam: { honeypot: boolean; tooFast: boolean }
}

export type SubmissionResult =
  | { ok: true; values: Record<string, unknown>; lead: SubmissionLead; meta: SubmissionMeta }
  | { ok: false; errors: SubmissionError[]; meta: SubmissionMeta }

type Read = { value: unknown } | { missing: true } | { error: string }
const MISSING: Read = { missing: true }

/**
 * Checks a posted body against a form, naming every bad field. The same body may come as JSON (typed values) or
 * as application/x-www-form-urlencoded (every value a string, repeated keys as arrays), so each field type accepts
 * both spellings. Keys that are neither fields nor reserved metadata are ignored.
 */
export function validateSubmission(
  form: SubmissionForm,
  body: Record<string, unknown>,
  options: { defaultCountry?: CountryCode; now?: Date } = {},
): SubmissionResult {
  const meta = readMeta(form, body, options.now ?? new Date())
  const country = form.defaultCountry ?? options.defaultCountry
  const values: Record<string, unknown> = {}
  const lead: SubmissionLead = {}
  const errors: SubmissionError[] = []

  for (const field of form.fields) {
    const read = readField(field, ownValue(body, field.name), country)
    if ('error' in read) {
      errors.push({ field: field.name, message: read.error })
    } else if ('missing' in read) {
      if (field.required) errors.push({ field: field.name, message: 'is required' })
    } else {
      values[field.name] = read.value
      if (field.maps_to && typeof read.value === 'string') lead[leadKey(field.maps_to)] = read.value
    }
  }
  if (form.consent?.required && meta.consent !== true) errors.push({ field: 'consent', message: 'consent is required' })

  return errors.length > 0 ? { ok: false, errors, meta } : { ok: true, values, lead, meta }
}

const leadKey = (field: LeadField) => (field === 'phone' ? 'phoneE164' : field)

/**
 * Own properties only: a field named "constructor" must not read Object.prototype.constructor. Bracketed
 * names ("interests[]") are how many HTML forms and qs-style encoders spell multi-valued keys.
 */
function ownValue(body: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(body, name)) return body[name]
  if (Object.hasOwn(body, `${name}[]`)) return body[`${name}[]`]
  return undefined
}

function readField(field: FormField, raw: unknown, country: CountryCode | undefined): Read {
  switch (field.type) {
    case 'text':
      return readText(raw, field.minLength, field.maxLength ?? TEXT_MAX_LENGTH)
    case 'hidden': {
      const read = readText(raw, undefined, TEXT_MAX_LENGTH)
      return 'missing' in read && field.defaultValue !== undefined ? { value: field.defaultValue } : read
    }
    case 'email':
      return readString(raw, (text) => {
        const email = normalizeEmail(text)
        return email ? { value: email } : { error: 'must be a valid email address' }
      })
    case 'phone':
      return readString(raw, (text) => {
        const phone = normalizePhone(text, country)
        return phone ? { value: phone.e164 } : { error: 'must be a valid phone number' }
      })
    case 'number':
      return readNumber(raw, field.min, field.max)
    case 'checkbox':
      return readCheckbox(raw, field.required)
    case 'select':
      return field.multiple ? readMultiSelect(raw, field.options ?? []) : readSelect(raw, field.options ?? [])
  }
}

/** One scalar from a value that urlencoded bodies may have turned into an array by repeating the key. */
function scalar(raw: unknown): Read {
  if (Array.isArray(raw)) {
    if (raw.length > 1) return { error: 'expected a single value' }
    return scalar(raw[0])
  }
  if (raw === undefined || raw === null) return MISSING
  if (typeof raw === 'string') {
    // PostgreSQL text cannot hold NUL; refusing it here keeps it from becoming a 500 later.
    if (raw.includes('\u0000')) return { error: 'contains invalid characters' }
    const text = raw.trim()
    return text === '' ? MISSING : { value: text }
  }
  if (typeof raw === 'number' && Number.isFinite(raw)) return { value: raw }
  if (typeof raw === 'boolean') return { value: raw }
  return { error: 'must be a single value' }
}

function readString(raw: unknown, then: (text: string) => Read): Read {
  const read = scalar(raw)
  if (!('value' in read)) return read
  // A JSON client may send a phone or a code as a number; booleans are never text.
  if (typeof read.value === 'number') return then(String(read.value))
  return typeof read.value === 'string' ? then(read.value) : { error: 'must be text' }
}

const charCount = (text: string) => Array.from(text).length // code points: an emoji is one character to the person typing it

function readText(raw: unknown, minLength: number | undefined, maxLength: number): Read {
  return readString(raw, (text) => {
    if (minLength !== undefined && charCount(text) < minLength) return { error: `must be at least ${minLength} characters` }
    if (charCount(text) > maxLength) return { error: `must be at most ${maxLength} characters` }
    return { value: text }
  })
}

function readNumber(raw: unknown, min: number | undefined, max: number | undefined): Read {
  const read = scalar(raw)
  if (!('value' in read)) return read
  let value: number
  if (typeof read.value === 'number') value = read.value
  // Plain decimals only: Number() would also take "0x1f", "1e9" and "Infinity".
  else if (typeof read.value === 'string' && /^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(read.value)) value = Number(read.value)
  else return { error: 'must be a number' }
  if (min !== undefined && value < min) return { error: `must be at least ${min}` }
  if (max !== undefined && value > max) return { error: `must be at most ${max}` }
  return { value }
}

const TRUE_WORDS = new Set(['on', 'true', '1', 'yes'])
const FALSE_WORDS = new Set(['off', 'false', '0', 'no'])

/** true/false for a checkbox-ish value, undefined when absent, null when it is neither. */
function booleanish(raw: unknown): boolean | undefined | null {
  // A hidden "false" input before the checkbox is a common trick to post unchecked boxes: the last value wins.
  const value = Array.isArray(raw) ? raw.at(-1) : raw
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value === 'boolean') return value
  if (value === 1 || value === 0) return value === 1
  if (typeof value !== 'string') return null
  const word = value.trim().toLowerCase()
  return TRUE_WORDS.has(word) ? true : FALSE_WORDS.has(word) ? false : null
}

function readCheckbox(raw: unknown, required: boolean): Read {
  const checked = booleanish(raw)
  if (checked === null) return { error: 'must be checked or unchecked' }
  // Browsers send nothing for an unchecked box, so absent means false, and a required box means "must be checked".
  if (required && checked !== true) return { error: 'must be checked' }
  return { value: checked ?? false }
}

function readSelect(raw: unknown, options: { value: string }[]): Read {
  return readString(raw, (text) => (options.some((o) => o.value === text) ? { value: text } : { error: 'must be one of the options' }))
}

function readMultiSelect(raw: unknown, options: { value: string }[]): Read {
  const items = Array.isArray(raw) ? raw : [raw]
  const chosen: string[] = []
  for (const item of items) {
    const read = readSelect(item, options)
    if ('error' in read) return read
    if ('value' in read && !chosen.includes(read.value as string)) chosen.push(read.value as string)
  }
  return chosen.length > 0 ? { value: chosen } : MISSING
}

function readMeta(form: SubmissionForm, body: Record<string, unknown>, now: Date): SubmissionMeta {
  const utm: SubmissionMeta['utm'] = {}
  for (const key of UTM_KEYS) {
    const value = metaText(ownValue(body, key), 200)
    if (value !== undefined) utm[key] = value
  }
  // Any answer at all in the honeypot counts, whatever its shape: people never see the input.
  const meta: SubmissionMeta = { utm, spam: { honeypot: !('missing' in scalar(ownValue(body, form.honeypotField))), tooFast: false } }

  const consent = booleanish(ownValue(body, 'consent'))
  if (typeof consent === 'boolean') meta.consent = consent
  const pageUrl = metaUrl(ownValue(body, 'page_url'))
  if (pageUrl) meta.pageUrl = pageUrl
  const referrer = metaUrl(ownValue(body, 'referrer'))
  if (referrer) meta.referrer = referrer
  const anonymousId = metaText(ownValue(body, 'anonymous_id'), 201)
  if (anonymousId && /^[\x21-\x7e]{1,200}$/.test(anonymousId)) meta.anonymousId = anonymousId

  const startedAt = metaTimestamp(ownValue(body, 'started_at') ?? ownValue(body, '_ts'), now)
  if (startedAt) {
    meta.startedAt = startedAt
    meta.fillSeconds = (now.getTime() - startedAt.getTime()) / 1000
    // A negative time is the visitor's clock running ahead of ours, not a bot: only a plausible fill can be too fast.
    meta.spam.tooFast = form.minFillSeconds > 0 && meta.fillSeconds >= 0 && meta.fillSeconds < form.minFillSeconds
  }
  return meta
}

function metaText(raw: unknown, maxLength: number): string | undefined {
  const read = scalar(raw)
  if (!('value' in read) || typeof read.value !== 'string') return undefined
  return read.value.slice(0, maxLength)
}

function metaUrl(raw: unknown): string | undefined {
  const text = metaText(raw, 2000)
  if (!text || !URL.canParse(text)) return undefined
  const url = new URL(text)
  return url.protocol === 'https:' || url.protocol === 'http:' ? text : undefined
}

/** Epoch milliseconds (number or digits) or an ISO 8601 string; anything implausible is dropped, not trusted. */
function metaTimestamp(raw: unknown, now: Date): Date | undefined {
  const read = scalar(raw)
  if (!('value' in read)) return undefined
  const { value } = read
  let ms: number
  if (typeof value === 'number') ms = value
  else if (typeof value === 'string' && /^\d{12,14}$/.test(value)) ms = Number(value)
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)) ms = Date.parse(value)
  else return undefined
  // Older than a week or ahead of us by more than a day of clock skew: not a page load of this submission.
  const age = now.getTime() - ms
  if (!Number.isFinite(ms) || age > 7 * 24 * 3600_000 || age < -24 * 3600_000) return undefined
  return new Date(ms)
}
