/**
 * Thirty days of believable history for the demo clinic, as plain data: who visited from where, who viewed and
 * submitted the form, who wrote on WhatsApp (from an ad or not), what the bot answered and how each conversation
 * ended, and which leads became qualified and converted. Pure and deterministic: each UTC day has its own seeded
 * random generator, so generating again (later the same day, or tomorrow) yields the same events for the same day
 * with the same dedupe keys, and the seed that records them stays idempotent.
 *
 * The volumes follow a clinic's week (quiet Sundays, busy weekday mornings and late afternoons, São Paulo time) and
 * grow a little over the month, so the charts have a shape worth looking at.
 */
import type { Enrichment } from '../domains/analytics/enrichment/schemas.js'
import { enrichEvent } from '../domains/analytics/enrichment/enrich.js'
import { seededRandom } from '../lib/seeded-random.js'

export const DEMO_TENANT_ID = '00000000-0000-4000-8000-000000000001'
export const DEMO_FORM_ID = '00000000-0000-4000-8000-0000000000f1'
export const DEMO_FLOW_ID = '00000000-0000-4000-8000-0000000000c1'
export const DEMO_TEMPLATE = 'appointment_reminder'
/** The demo tenant's zone (core.tenants.timezone): America/Sao_Paulo, UTC−3 all year since 2019. */
const LOCAL_OFFSET_MS = -3 * 3_600_000

const DAY_MS = 86_400_000

/** A lead the history needs, found or created by its identity key. */
export interface DemoLead {
  /** The phone's identity key (phoneMatchKey of the E.164 number): how the seed finds the lead again. */
  phoneKey: string
  phoneE164: string
  waId: string
  email: string | null
  name: string
  via: 'whatsapp' | 'form'
  /** The lead's source as the product records it: `whatsapp`, `whatsapp_ad`, `web_form`. */
  source: string
  firstSeenAt: Date
  /** marketing.leads.source_details as the product fills it: a form's landing page and referrer, an ad's referral. */
  sourceDetails: Record<string, unknown>
  /** The last status the history reaches before `now`. */
  status: 'new' | 'qualified' | 'converted'
}

/** One event, naming its lead by phone key (the seed turns keys into lead ids). */
export interface DemoEvent {
  name: string
  leadKey: string | null
  occurredAt: Date
  properties: Record<string, unknown>
  /** Stable per event; lead lifecycle keys are completed with the lead id by the seed (`lead:created:<id>`). */
  dedupeKey: string
  source: string
  anonymousId: string | null
  sessionId: string | null
  type: string | null
  context: Record<string, unknown> | null
  enrichment: Enrichment | null
}

export interface DemoHistory {
  leads: DemoLead[]
  events: DemoEvent[]
}

/** The demo history's generator (lib/seeded-random.ts). */
export const prng = seededRandom

type Rand = () => number
const pick = <T>(rand: Rand, items: readonly (readonly [T, number])[]): T => {
  const total = items.reduce((s, [, w]) => s + w, 0)
  let x = rand() * total
  for (const [item, w] of items) {
    x -= w
    if (x < 0) return item
  }
  return items[items.length - 1]![0]
}
const between = (rand: Rand, lo: number, hi: number) => lo + rand() * (hi - lo)
/** A count around `mean` (roughly Poisson for these sizes), never negative. */
const around = (rand: Rand, mean: number) => Math.max(0, Math.round(mean + (rand() + rand() + rand() - 1.5) * Math.sqrt(mean) * 1.4))

/** Visits by local hour: the clinic's site and number are busiest mid-morning and after work. */
const HOURLY = [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1.2, 2.5, 4.5, 6, 6.5, 6, 4.5, 4.5, 5.5, 6, 6, 6.5, 7, 6.5, 5.5, 4.5, 3, 1.8] as const
/** Sunday first, as Date#getUTCDay counts. */
const WEEKDAY = [0.4, 1.1, 1.05, 1, 1, 0.9, 0.65] as const

const UA = {
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1',
  android: 'Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Mobile Safari/537.36',
  androidSamsung: 'Mozilla/5.0 (Linux; Android 13; SM-G991B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/27.0 Chrome/125.0.0.0 Mobile Safari/537.36',
  windows: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36',
  mac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Safari/605.1.15',
  edge: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36 Edg/138.0.0.0',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1',
} as const
const USER_AGENTS: readonly (readonly [string, number])[] = [
  [UA.android, 34], [UA.iphone, 24], [UA.androidSamsung, 9], [UA.windows, 17], [UA.mac, 7], [UA.edge, 4], [UA.ipad, 5],
]

const SITE = 'https://brightsmile.example'
const LANDING = `${SITE}/avaliacao`

/** How a visit arrived: the referrer and landing URL a browser would report; enrichment derives source and channel. */
const ARRIVALS: readonly (readonly [{ referrer: string; url: string }, number])[] = [
  [{ referrer: 'https://www.google.com/', url: LANDING }, 30],
  [{ referrer: 'https://www.google.com/', url: `${LANDING}?utm_source=google&utm_medium=cpc&utm_campaign=implantes&gclid=seed` }, 12],
  [{ referrer: 'https://m.facebook.com/', url: LANDING }, 9],
  [{ referrer: 'https://l.facebook.com/', url: `${LANDING}?utm_source=facebook&utm_medium=paid_social&utm_campaign=clareamento&fbclid=seed` }, 8],
  [{ referrer: 'https://l.instagram.com/', url: LANDING }, 14],
  [{ referrer: '', url: LANDING }, 16],
  [{ referrer: '', url: `${LANDING}?utm_source=newsletter&utm_medium=email&utm_campaign=check-up` }, 6],
  [{ referrer: 'https://wa.me/', url: LANDING }, 3],
  [{ referrer: 'https://www.bing.com/', url: LANDING }, 2],
]

const FIRST_NAMES = ['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Fábio', 'Gabriela', 'Henrique', 'Isabela', 'João', 'Larissa', 'Marcos', 'Natália', 'Otávio', 'Paula', 'Rafael', 'Sofia', 'Thiago', 'Vanessa', 'Wagner']
const LAST_NAMES = ['Silva', 'Santos', 'Oliveira', 'Souza', 'Lima', 'Pereira', 'Costa', 'Rodrigues', 'Almeida', 'Nascimento', 'Carvalho', 'Ribeiro']

/** Local midnight of the UTC day `dayNumber` (days since the epoch), as a UTC instant. */
const localMidnight = (dayNumber: number) => new Date(dayNumber * DAY_MS - LOCAL_OFFSET_MS)

function instantIn(rand: Rand, dayNumber: number): Date {
  const hour = pick(rand, HOURLY.map((w, h) => [h, w] as const))
  return new Date(localMidnight(dayNumber).getTime() + (hour * 3600 + Math.floor(rand() * 3600)) * 1000)
}

const enrichCache = new Map<string, Enrichment>()
function enrichOnce(input: { userAgent?: string; referrer?: string; pageUrl?: string; phoneE164?: string; locale?: string }): Enrichment {
  const key = JSON.stringify(input)
  let hit = enrichCache.get(key)
  if (!hit) enrichCache.set(key, (hit = enrichEvent(input)))
  return hit
}

/**
 * The history of the `days` local days up to and including `now`'s, with nothing after `now`. Phone numbers are
 * +55 11 9DDDD-NNNN (DDDD from the day, NNNN the person of that day): unique across the month, stable across runs.
 */
export function generateDemoHistory(options: { now: Date; days?: number }): DemoHistory {
  const now = options.now.getTime()
  const days = options.days ?? 30
  const today = Math.floor((now + LOCAL_OFFSET_MS) / DAY_MS)
  const leads: DemoLead[] = []
  const events: DemoEvent[] = []

  for (let day = today - days + 1; day <= today; day++) {
    const rand = prng(day * 2_654_435_761)
    const weekday = new Date(day * DAY_MS).getUTCDay()
    // The clinic's ads ramp up over the month: about +30% from the first day to the last.
    const volume = WEEKDAY[weekday]! * (1 + 0.3 * (day - (today - days + 1)) / days)
    const tag = String(day)
    let person = 0
    const newLead = (via: DemoLead['via'], source: string, at: Date, sourceDetails: Record<string, unknown>): DemoLead => {
      const n = person++
      const local = `9${String(day % 10_000).padStart(4, '0')}${String(n).padStart(4, '0')}`
      const first = FIRST_NAMES[Math.floor(rand() * FIRST_NAMES.length)]!
      const last = LAST_NAMES[Math.floor(rand() * LAST_NAMES.length)]!
      const e164 = `+5511${local}`
      const lead: DemoLead = {
        phoneKey: e164, phoneE164: e164, waId: e164.slice(1), name: `${first} ${last}`,
        email: via === 'form' ? `${first}.${last}.${local}@example.com`.toLowerCase().normalize('NFD').replace(/[\u0300-\u036f]/g, '') : null,
        via, source, firstSeenAt: at, sourceDetails, status: 'new',
      }
      leads.push(lead)
      return lead
    }
    const push = (e: Omit<DemoEvent, 'anonymousId' | 'sessionId' | 'type' | 'context' | 'enrichment'> & Partial<DemoEvent>) => {
      events.push({ anonymousId: null, sessionId: null, type: null, context: null, enrichment: null, ...e })
    }

    const created = (lead: DemoLead, at: Date, enrichment: Enrichment | null) =>
      push({ name: 'lead.created', leadKey: lead.phoneKey, occurredAt: at, properties: { leadSource: lead.source }, dedupeKey: 'lead:created', source: 'marketing', enrichment })

    /** Qualified a little after what earned it; some convert days later and get the appointment reminder. */
    const progress = (lead: DemoLead, at: Date, enrichment: Enrichment | null) => {
      const qualifiedAt = new Date(at.getTime() + between(rand, 10 * 60_000, 30 * 3_600_000))
      push({ name: 'lead.status_changed', leadKey: lead.phoneKey, occurredAt: qualifiedAt, properties: { from: 'new', to: 'qualified' }, dedupeKey: 'lead:status:new:qualified', source: 'marketing' })
      push({ name: 'lead.qualified', leadKey: lead.phoneKey, occurredAt: qualifiedAt, properties: { leadSource: lead.source }, dedupeKey: 'lead:qualified', source: 'marketing', enrichment })
      if (rand() >= 0.38) return
      const convertedAt = new Date(qualifiedAt.getTime() + between(rand, 6 * 3_600_000, 5 * DAY_MS))
      push({ name: 'lead.status_changed', leadKey: lead.phoneKey, occurredAt: convertedAt, properties: { from: 'qualified', to: 'converted' }, dedupeKey: 'lead:status:qualified:converted', source: 'marketing' })
      push({ name: 'lead.converted', leadKey: lead.phoneKey, occurredAt: convertedAt, properties: { leadSource: lead.source }, dedupeKey: 'lead:converted', source: 'marketing', enrichment })
      whatsappOut(lead, new Date(convertedAt.getTime() + between(rand, 3_600_000, 2 * DAY_MS)), `${tag}:${lead.phoneKey}:reminder`, DEMO_TEMPLATE)
    }

    /** One message from the clinic: sent, then delivered and read (or failed), as Meta's statuses report. */
    const whatsappOut = (lead: DemoLead, at: Date, id: string, templateName?: string) => {
      const messageId = `seed.${id}`
      const base = { leadKey: lead.phoneKey, source: 'whatsapp' }
      push({ ...base, name: 'whatsapp.message_sent', occurredAt: at, properties: { messageId, ...(templateName ? { templateName } : {}) }, dedupeKey: `seed:wa:sent:${id}` })
      const template = templateName ? { templateName } : {}
      if (rand() < 0.025) {
        push({ ...base, name: 'whatsapp.message_failed', occurredAt: new Date(at.getTime() + 1500), properties: { messageId, errorCode: pick(rand, [[131026, 3], [131047, 1], [130472, 1]]), ...template }, dedupeKey: `seed:wa:status:${id}:failed` })
        return
      }
      const deliveredAt = new Date(at.getTime() + between(rand, 800, 4000))
      push({ ...base, name: 'whatsapp.message_delivered', occurredAt: deliveredAt, properties: { messageId, ...template }, dedupeKey: `seed:wa:status:${id}:delivered` })
      if (rand() < (templateName ? 0.7 : 0.86)) {
        push({ ...base, name: 'whatsapp.message_read', occurredAt: new Date(deliveredAt.getTime() + between(rand, 2000, 20 * 60_000)), properties: { messageId, ...template }, dedupeKey: `seed:wa:status:${id}:read` })
      }
    }

    // --- The website: visits, form views, submissions (a lead each).
    const visits = around(rand, 150 * volume)
    for (let v = 0; v < visits; v++) {
      const at = instantIn(rand, day)
      const arrival = pick(rand, ARRIVALS)
      const userAgent = pick(rand, USER_AGENTS)
      const context = { page: { url: arrival.url, path: '/avaliacao', referrer: arrival.referrer }, userAgent, locale: 'pt-BR' }
      const enrichment = enrichOnce({ userAgent, referrer: arrival.referrer, pageUrl: arrival.url, locale: 'pt-BR' })
      const visitor = { anonymousId: `seed-anon-${tag}-${v}`, sessionId: `seed-session-${tag}-${v}`, context, enrichment }
      const visit = events.length
      push({ ...visitor, name: 'pageview', type: 'page', leadKey: null, occurredAt: at, properties: { path: '/avaliacao' }, dedupeKey: `seed:site:page:${tag}:${v}`, source: 'site' })
      // Paid visitors landed on the form on purpose; organic ones browse first.
      const paid = enrichment.channel === 'paid'
      if (rand() >= (paid ? 0.75 : 0.5)) continue
      const viewedAt = new Date(at.getTime() + between(rand, 5_000, 120_000))
      push({ ...visitor, name: 'form.viewed', type: 'track', leadKey: null, occurredAt: viewedAt, properties: { formId: DEMO_FORM_ID }, dedupeKey: `seed:form:view:${tag}:${v}`, source: 'site' })
      if (rand() >= (paid ? 0.2 : 0.13)) continue
      const submittedAt = new Date(viewedAt.getTime() + between(rand, 25_000, 240_000))
      const lead = newLead('form', 'web_form', submittedAt, { formId: DEMO_FORM_ID, pageUrl: arrival.url, referrer: arrival.referrer })
      // The submission links the visitor to the lead, and with it the visit's earlier page and form views.
      for (const e of events.slice(visit)) e.leadKey = lead.phoneKey
      push({ name: 'form.submitted', leadKey: lead.phoneKey, occurredAt: submittedAt, properties: { formId: DEMO_FORM_ID, leadCreated: true }, dedupeKey: `seed:form:sub:${tag}:${v}`, source: 'web_form', anonymousId: visitor.anonymousId })
      created(lead, submittedAt, enrichment)
      if (rand() < 0.3) progress(lead, submittedAt, enrichment)
    }

    // --- WhatsApp: people writing first, from a click-to-WhatsApp ad or on their own; the bot answers.
    const chats = around(rand, 16 * volume)
    for (let c = 0; c < chats; c++) {
      const at = instantIn(rand, day)
      const ad = rand() < 0.55
      const network = ad ? pick(rand, [['facebook', 6], ['instagram', 4]] as const) : null
      // A click-to-WhatsApp ad's first message carries Meta's referral (the ad's URL); the others just write.
      const referral = network ? { sourceType: 'ad', sourceUrl: network === 'instagram' ? 'https://www.instagram.com/p/seed' : 'https://fb.me/seed' } : null
      const lead = newLead('whatsapp', ad ? 'whatsapp_ad' : 'whatsapp', at, referral ? { referral } : {})
      // As the product attributes them: an ad is channel whatsapp with the ad's network as source; a plain first
      // message is whatsapp / whatsapp.
      const enrichment = enrichOnce({
        phoneE164: lead.phoneE164,
        ...(network ? { pageUrl: `https://wa.me/15550001234?utm_source=${network}&ctwa_clid=seed` } : { referrer: 'https://wa.me/' }),
      })
      const conversationId = `seed-conv-${tag}-${c}`
      const id = (what: string) => `${tag}:${c}:${what}`
      const inbound = (when: Date, what: string) =>
        push({ name: 'whatsapp.message_received', leadKey: lead.phoneKey, occurredAt: when, properties: { type: 'text', phoneNumberId: '100000000000002', referral: ad && what === 'm0' }, dedupeKey: `seed:wa:msg:${id(what)}`, source: 'whatsapp', enrichment })
      inbound(at, 'm0')
      created(lead, at, enrichment)
      const started = new Date(at.getTime() + 400)
      push({ name: 'bot.conversation_started', leadKey: lead.phoneKey, occurredAt: started, properties: { flowId: DEMO_FLOW_ID, conversationId }, dedupeKey: `seed:bot:start:${conversationId}`, source: 'bot' })
      // The bot's first reply: its first-response time is seconds.
      let t = started.getTime() + between(rand, 1200, 6000)
      whatsappOut(lead, new Date(t), id('r0'))
      const turns = pick(rand, [[0, 2], [1, 2], [2, 3], [3, 4]] as const)
      for (let turn = 1; turn <= turns; turn++) {
        t += between(rand, 15_000, 6 * 60_000)
        inbound(new Date(t), `m${turn}`)
        t += between(rand, 900, 3500)
        whatsappOut(lead, new Date(t), id(`r${turn}`))
      }
      const outcome = turns === 0 ? 'abandoned' : pick(rand, [['completed', 64], ['handed_over', 24], ['abandoned', 12]] as const)
      if (outcome === 'completed') {
        push({ name: 'bot.conversation_completed', leadKey: lead.phoneKey, occurredAt: new Date(t + 500), properties: { flowId: DEMO_FLOW_ID, conversationId }, dedupeKey: `seed:bot:done:${conversationId}`, source: 'bot' })
      } else if (outcome === 'handed_over') {
        push({ name: 'bot.conversation_handed_over', leadKey: lead.phoneKey, occurredAt: new Date(t + 500), properties: { flowId: DEMO_FLOW_ID, conversationId }, dedupeKey: `seed:bot:handover:${conversationId}`, source: 'bot' })
        // The front desk picks it up within minutes (longer at night).
        t += between(rand, 2 * 60_000, 45 * 60_000)
        whatsappOut(lead, new Date(t), id('human'))
      }
      const qualify = outcome === 'completed' ? 0.45 : outcome === 'handed_over' ? 0.6 : 0.05
      if (rand() < qualify) progress(lead, new Date(t), enrichment)
    }
  }

  // Nothing in the future: the day in progress stops at `now`, and so do later steps of a lead's life.
  const past = events.filter((e) => e.occurredAt.getTime() <= now)
  const reached = new Map<string, DemoLead['status']>()
  for (const e of past) {
    if (e.name === 'lead.qualified' && reached.get(e.leadKey!) !== 'converted') reached.set(e.leadKey!, 'qualified')
    if (e.name === 'lead.converted') reached.set(e.leadKey!, 'converted')
  }
  const known = leads.filter((l) => l.firstSeenAt.getTime() <= now).map((l) => ({ ...l, status: reached.get(l.phoneKey) ?? 'new' }))
  return { leads: known, events: past.sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime()) }
}
