import { z } from 'zod'
import { type IntakeBatch, type IntakeEvent, isHttpUrl, MAX_EVENTS_PER_BATCH, MAX_FUTURE_SKEW_MS, EVENT_NAME_PATTERN, propertiesFit } from './schemas.js'

/**
 * The intake's common case without zod: a batch whose every event has exactly IntakeEvent's shape (no key the schema
 * would strip, every value of the right type and within its limits) is checked here in one plain pass, with the
 * same patterns and limits as schemas.ts, and comes out as the value `IntakeBatch.parse` would return (defaults
 * filled in, `properties` measured for propertiesJson). Anything else, valid with unknown keys or invalid, returns
 * null and the caller parses the body with zod, which reports every problem per index (`events.3.occurredAt`) as
 * before: this function only ever decides "certainly valid", never how input is wrong. zod's schema walk
 * (a context per value, an issue list, a check array per string) was the largest part of the webhooks process's
 * CPU per event after JSON parsing; intake-fast-path.test.ts holds the two to the same answers.
 */
export function fastIntakeBatch(body: unknown): IntakeBatch | null {
  if (!isPlain(body)) return null
  let keys = 0
  for (const k in body) {
    if (k !== 'events') return null
    keys++
  }
  if (keys !== 1) return null
  const events = (body as { events?: unknown }).events
  if (!Array.isArray(events) || events.length < 1 || events.length > MAX_EVENTS_PER_BATCH) return null
  // One clock for the batch, read once: zod reads it per event, a microsecond apart; the bound is 10 minutes.
  const latest = Date.now() + MAX_FUTURE_SKEW_MS
  const out: IntakeEvent[] = new Array(events.length)
  for (let i = 0; i < events.length; i++) {
    const e = fastEvent(events[i], latest)
    if (e === null) return null
    out[i] = e
  }
  return { events: out }
}

const UUID = z.regexes.uuid()
const DATETIME = z.regexes.datetime({ offset: true })
const TYPES = new Set(['page', 'track', 'identify', 'screen'])

/** A JSON object (what JSON.parse makes): not null, not an array, Object's or no prototype. */
const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const proto = Object.getPrototypeOf(v) as object | null
  return proto === Object.prototype || proto === null
}

const text = (v: unknown, min: number, max: number): v is string => typeof v === 'string' && v.length >= min && v.length <= max
const optionalText = (v: unknown, min: number, max: number) => v === undefined || text(v, min, max)

function fastEvent(e: unknown, latest: number): IntakeEvent | null {
  if (!isPlain(e)) return null
  let id: unknown, name: unknown, type: unknown, occurredAt: unknown, anonymousId: unknown, leadId: unknown, sessionId: unknown, properties: unknown, context: unknown
  for (const k in e) {
    const v = e[k]
    switch (k) {
      case 'id': id = v; break
      case 'name': name = v; break
      case 'type': type = v; break
      case 'occurredAt': occurredAt = v; break
      case 'anonymousId': anonymousId = v; break
      case 'leadId': leadId = v; break
      case 'sessionId': sessionId = v; break
      case 'properties': properties = v; break
      case 'context': context = v; break
      default: return null
    }
  }
  if (typeof id !== 'string' || !UUID.test(id)) return null
  if (!text(name, 1, 120) || !EVENT_NAME_PATTERN.test(name)) return null
  if (typeof type !== 'string' || !TYPES.has(type)) return null
  if (typeof occurredAt !== 'string' || !DATETIME.test(occurredAt) || Date.parse(occurredAt) > latest) return null
  if (!optionalText(anonymousId, 1, 200) || !optionalText(sessionId, 1, 200)) return null
  if (leadId !== undefined && (typeof leadId !== 'string' || !UUID.test(leadId))) return null
  if (anonymousId === undefined && leadId === undefined) return null
  let props: Record<string, unknown>
  if (properties === undefined) props = {}
  else if (isPlain(properties)) props = properties
  else return null
  if (!propertiesFit(props)) return null
  const ctx = context === undefined ? {} : fastContext(context)
  if (ctx === null) return null
  // The keys in the schema's order, absent ones left out, as zod builds its output.
  const out: Record<string, unknown> = { id, name, type, occurredAt }
  if (anonymousId !== undefined) out.anonymousId = anonymousId
  if (leadId !== undefined) out.leadId = leadId
  if (sessionId !== undefined) out.sessionId = sessionId
  out.properties = props
  out.context = ctx
  return out as IntakeEvent
}

const httpUrl = (v: unknown) => typeof v === 'string' && v.length <= 2000 && isHttpUrl(v)

function fastContext(c: unknown): IntakeEvent['context'] | null {
  if (!isPlain(c)) return null
  let page: unknown, utm: unknown, userAgent: unknown, locale: unknown
  for (const k in c) {
    const v = c[k]
    switch (k) {
      case 'page': page = v; break
      case 'utm': utm = v; break
      case 'userAgent': userAgent = v; break
      case 'locale': locale = v; break
      default: return null
    }
  }
  if (!optionalText(userAgent, 0, 1000) || !optionalText(locale, 0, 35)) return null
  const out: Record<string, unknown> = {}
  if (page !== undefined) {
    const p = fastPage(page)
    if (p === null) return null
    out.page = p
  }
  if (utm !== undefined) {
    const u = fastUtm(utm)
    if (u === null) return null
    out.utm = u
  }
  if (userAgent !== undefined) out.userAgent = userAgent
  if (locale !== undefined) out.locale = locale
  return out as IntakeEvent['context']
}

function fastPage(p: unknown): Record<string, unknown> | null {
  if (!isPlain(p)) return null
  let url: unknown, path: unknown, title: unknown, referrer: unknown
  for (const k in p) {
    const v = p[k]
    switch (k) {
      case 'url': url = v; break
      case 'path': path = v; break
      case 'title': title = v; break
      case 'referrer': referrer = v; break
      default: return null
    }
  }
  if (url !== undefined && !httpUrl(url)) return null
  if (!optionalText(path, 0, 2000) || !optionalText(title, 0, 500)) return null
  if (referrer !== undefined && referrer !== '' && !httpUrl(referrer)) return null
  const out: Record<string, unknown> = {}
  if (url !== undefined) out.url = url
  if (path !== undefined) out.path = path
  if (title !== undefined) out.title = title
  if (referrer !== undefined) out.referrer = referrer
  return out
}

const UTM_KEYS = ['source', 'medium', 'campaign', 'term', 'content'] as const

function fastUtm(u: unknown): Record<string, unknown> | null {
  if (!isPlain(u)) return null
  for (const k in u) if (!(UTM_KEYS as readonly string[]).includes(k)) return null
  const out: Record<string, unknown> = {}
  for (const k of UTM_KEYS) {
    const v = u[k]
    if (v === undefined) continue
    if (!text(v, 1, 200)) return null
    out[k] = v
  }
  return out
}
