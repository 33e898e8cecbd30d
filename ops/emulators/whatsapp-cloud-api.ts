import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { graphError, type GraphErrorResponse } from './meta-errors.js'
import { metaSignature } from './signature.js'

/**
 * A local stand-in for Meta's WhatsApp Cloud API: `POST /{version}/{phone_number_id}/messages` answered the way Meta
 * answers (success bodies with fresh wamids, Graph error bodies with real codes and statuses), plus the status
 * webhooks Meta sends back for each accepted message, signed with the app secret. Built on node:http rather than
 * Fastify on purpose: it must speak Meta's wire format (Graph error bodies, exact status codes), not ours.
 *
 * Control, in-process or over HTTP (`/_emulator/...`): make the next calls fail with a given code, throttle, add
 * latency, list what was sent, reset. The control routes have no auth: bind to loopback (the default).
 */

export interface WhatsAppEmulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number
  host?: string
  /** When set, only this version is accepted (catches a misconfigured client); otherwise any `vNN.N`. */
  apiVersion?: string
  /** Where status webhooks go, e.g. `http://127.0.0.1:3001/webhooks/whatsapp`. */
  webhookUrl?: string
  /** Signs webhooks (X-Hub-Signature-256). No secret, no webhooks. */
  appSecret?: string
  /** Accepted bearer tokens; empty or unset accepts any non-empty token. */
  accessTokens?: string[]
  /** Pause before each status webhook (sent, then delivered, then read). Default 50 ms. */
  statusDelayMs?: number
  /** Post sent/delivered/read webhooks for accepted messages. Default true (needs webhookUrl and appSecret). */
  autoStatuses?: boolean
  /** Which statuses those are, in order. Default sent, delivered, read (a bench may want only `sent`). */
  statusKinds?: ('sent' | 'delivered' | 'read')[]
  /** WABA id (`entry[].id`) and display number (`metadata.display_phone_number`) used in webhooks. */
  wabaId?: string
  displayPhoneNumber?: string
  /**
   * Meta retries a webhook that does not answer 200 with growing delays for up to 7 days; the emulator compresses
   * that to `webhookAttempts` tries (default 8, about 25 s in all) starting `webhookRetryDelayMs` apart (default 100 ms, doubling).
   */
  webhookAttempts?: number
  webhookRetryDelayMs?: number
  /** Per-attempt timeout of a webhook POST. Default 5000 ms. */
  webhookTimeoutMs?: number
  /**
   * Numbers `GET /{phone-number-id}` knows, with their WABA. Empty (default): any all-digit id is answered as a number
   * of `wabaId` showing `displayPhoneNumber`; with entries, other ids get Meta's error 100 (object does not exist).
   */
  phoneNumbers?: EmulatedPhoneNumber[]
  /** The messaging limit tier of the numbers answered without `phoneNumbers` (default TIER_250; null leaves the field out). */
  messagingLimit?: string | null
  /**
   * Approved templates, as Meta knows them. Empty (default): any template send is accepted; with entries, a template
   * not among them (name and language) gets Meta's 132001, and a body with the wrong number of parameters 132000.
   */
  templates?: EmulatedTemplate[]
}

export interface EmulatedTemplate { name: string; language: string; bodyParameters: number }

/** The templates the development seeds mark APPROVED (db/seeds), for `npm start`'s emulator. */
export const DEMO_TEMPLATES: EmulatedTemplate[] = [
  { name: 'appointment_reminder', language: 'en_US', bodyParameters: 2 },
  { name: 'onboarding_reminder', language: 'en', bodyParameters: 2 },
]

export interface EmulatedPhoneNumber {
  id: string
  wabaId: string
  displayPhoneNumber: string
  verifiedName?: string
  /** `whatsapp_business_manager_messaging_limit`: TIER_250 (Meta's default for a new portfolio) unless given; null: left out of the answer. */
  messagingLimit?: string | null
}

export interface SentMessage {
  /** Position in the log since the last reset. */
  seq: number
  phoneNumberId: string
  apiVersion: string
  wamid: string
  to: string
  waId: string
  type: string
  body: Record<string, unknown>
  bizOpaqueCallbackData?: string
  receivedAt: string
}

export interface ReadReceipt {
  phoneNumberId: string
  messageId: string
  receivedAt: string
}

export interface WebhookDelivery {
  wamid?: string
  status?: string
  attempts: number
  delivered: boolean
  lastHttpStatus: number | null
}

export interface FailureRule {
  code: number
  remaining: number
  httpStatus?: number
  details?: string
}

export interface WhatsAppEmulator {
  url: string
  /** Live log of accepted sends (cleared in place by reset). */
  sent: SentMessage[]
  /** Mark-as-read calls. */
  reads: ReadReceipt[]
  /** Every status webhook the emulator tried to deliver, with its outcome. */
  webhooks: WebhookDelivery[]
  /** The next `times` calls to /messages answer with Meta error `code` (or HTTP `code` when it is 500-599). */
  failNext(code: number, times?: number, options?: { httpStatus?: number; details?: string }): void
  /** Throughput per phone number id; over it, calls get 130429. Undefined removes the limit. */
  setRateLimit(perSecond?: number): void
  /** Messages per (number, recipient) per rolling minute; over it, calls get 131056 (pair rate). Undefined removes it. */
  setPairRateLimit(perMinute?: number): void
  /** Throttling answers given since the last reset, by code (130429 throughput, 131056 pair rate). */
  throttled: Record<number, number>
  /** Holds every /messages answer this long (the message is still recorded, as at Meta after a client timeout). */
  setLatency(ms: number): void
  waitForSent(predicate: (m: SentMessage) => boolean, timeoutMs?: number): Promise<SentMessage>
  /** Adds a number `GET /{phone-number-id}` answers for (see `phoneNumbers`). */
  addPhoneNumber(number: EmulatedPhoneNumber): void
  /** Registers an approved template (see `templates`). */
  addTemplate(template: EmulatedTemplate): void
  /** WABAs an app was subscribed to with `POST /{waba-id}/subscribed_apps`. */
  subscriptions: string[]
  /** Posts any payload to the webhook URL, signed, with the same retries as statuses. Resolves true on a 200. */
  postWebhook(payload: unknown, meta?: { wamid?: string; status?: string }): Promise<boolean>
  reset(): void
  stop(): Promise<void>
}

const MAX_BODY_BYTES = 1_048_576
const SEND_TYPES = new Set(['text', 'template', 'interactive', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts', 'reaction'])
const MEDIA_TYPES = new Set(['image', 'audio', 'video', 'document', 'sticker'])

export async function startWhatsAppEmulator(options: WhatsAppEmulatorOptions = {}): Promise<WhatsAppEmulator> {
  const host = options.host ?? '127.0.0.1'
  const statusDelayMs = options.statusDelayMs ?? 50
  const autoStatuses = options.autoStatuses ?? true
  const wabaId = options.wabaId ?? '100000000000001'
  const displayPhoneNumber = options.displayPhoneNumber ?? '15550001234'
  const defaultMessagingLimit = options.messagingLimit === undefined ? 'TIER_250' : options.messagingLimit
  const webhookAttempts = options.webhookAttempts ?? 8
  const webhookRetryDelayMs = options.webhookRetryDelayMs ?? 100
  const webhookTimeoutMs = options.webhookTimeoutMs ?? 5000
  const acceptedTokens = new Set(options.accessTokens ?? [])
  const phoneNumbers = new Map((options.phoneNumbers ?? []).map((n) => [n.id, n]))
  const templates = new Map((options.templates ?? []).map((t) => [`${t.name}:${t.language}`, t]))
  const subscriptions: string[] = []

  const sent: SentMessage[] = []
  const reads: ReadReceipt[] = []
  const webhooks: WebhookDelivery[] = []
  let failures: FailureRule[] = []
  let ratePerSecond: number | undefined
  let pairPerMinute: number | undefined
  const pairCalls = new Map<string, number[]>()
  const throttled: Record<number, number> = {}
  const statusKinds = options.statusKinds ?? ['sent', 'delivered', 'read']
  let latencyMs = 0
  let seq = 0
  const recentCalls = new Map<string, number[]>()
  const conversations = new Map<string, { id: string; expiresAt: number }>()
  const waiters = new Set<() => void>()
  // Aborted on stop(): cancels pending status pauses and in-flight webhook POSTs.
  const lifecycle = new AbortController()
  const background = new Set<Promise<unknown>>()

  const track = (p: Promise<unknown>) => {
    background.add(p)
    void p.finally(() => background.delete(p))
  }

  function failNext(code: number, times = 1, extra: { httpStatus?: number; details?: string } = {}) {
    if (!Number.isInteger(code) || !Number.isInteger(times) || times < 1) throw new Error('failNext needs an integer code and times >= 1')
    failures.push({ code, remaining: times, ...extra })
  }

  function reset() {
    sent.length = 0
    reads.length = 0
    webhooks.length = 0
    failures = []
    ratePerSecond = undefined
    pairPerMinute = undefined
    pairCalls.clear()
    for (const k of Object.keys(throttled)) delete throttled[Number(k)]
    latencyMs = 0
    seq = 0
    recentCalls.clear()
    conversations.clear()
  }

  function waitForSent(predicate: (m: SentMessage) => boolean, timeoutMs = 5000): Promise<SentMessage> {
    const found = sent.find(predicate)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = sent.find(predicate)
        if (!match) return
        cleanup()
        resolve(match)
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`no matching message within ${timeoutMs} ms (${sent.length} sent)`))
      }, timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
    })
  }

  async function postWebhook(payload: unknown, meta: { wamid?: string; status?: string } = {}): Promise<boolean> {
    const record: WebhookDelivery = { ...meta, attempts: 0, delivered: false, lastHttpStatus: null }
    webhooks.push(record)
    if (!options.webhookUrl || !options.appSecret) return false
    // Signed once over the exact string sent; retries resend the same bytes, as Meta does.
    const raw = JSON.stringify(payload)
    const signature = metaSignature(options.appSecret, raw)
    for (let attempt = 0; attempt < webhookAttempts; attempt++) {
      if (lifecycle.signal.aborted) return false
      if (attempt > 0) {
        const paused = await sleep(webhookRetryDelayMs * 2 ** (attempt - 1), true, { signal: lifecycle.signal }).catch(() => false)
        if (!paused) return false
      }
      record.attempts++
      try {
        const res = await fetch(options.webhookUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature, 'user-agent': 'facebookexternalua' },
          body: raw,
          signal: AbortSignal.any([lifecycle.signal, AbortSignal.timeout(webhookTimeoutMs)]),
        })
        await res.arrayBuffer().catch(() => undefined)
        record.lastHttpStatus = res.status
        // Meta counts only a 200 as delivered; anything else (even another 2xx) is retried.
        if (res.status === 200) {
          record.delivered = true
          return true
        }
      } catch {
        record.lastHttpStatus = null
      }
    }
    return false
  }

  function conversationFor(message: SentMessage, category: string, now: number) {
    const key = `${message.phoneNumberId}:${message.waId}:${category}`
    let conversation = conversations.get(key)
    if (!conversation || conversation.expiresAt <= now) {
      // A conversation (or, under per-message pricing, a customer service window) lasts 24 hours.
      conversation = { id: randomBytes(16).toString('hex'), expiresAt: now + 24 * 3600 }
      conversations.set(key, conversation)
    }
    return conversation
  }

  function statusEnvelope(message: SentMessage, status: 'sent' | 'delivered' | 'read') {
    const now = Math.floor(Date.now() / 1000)
    // Templates are billed by their category (unknown here: utility assumed); free-form replies fall inside the
    // customer service window, which is free.
    const isTemplate = message.type === 'template'
    const category = isTemplate ? 'utility' : 'service'
    const conversation = conversationFor(message, category, now)
    return {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: wabaId,
          changes: [
            {
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: displayPhoneNumber, phone_number_id: message.phoneNumberId },
                statuses: [
                  {
                    id: message.wamid,
                    status,
                    timestamp: String(now),
                    recipient_id: message.waId,
                    ...(message.bizOpaqueCallbackData !== undefined ? { biz_opaque_callback_data: message.bizOpaqueCallbackData } : {}),
                    // Meta includes conversation and pricing with `sent` and with one of delivered/read, not with both.
                    ...(status !== 'read'
                      ? {
                          conversation: {
                            id: conversation.id,
                            ...(status === 'sent' ? { expiration_timestamp: String(conversation.expiresAt) } : {}),
                            origin: { type: category },
                          },
                          pricing: isTemplate
                            ? { billable: true, pricing_model: 'PMP', type: 'regular', category }
                            : { billable: false, pricing_model: 'PMP', type: 'free_customer_service', category },
                        }
                      : {}),
                  },
                ],
              },
              field: 'messages',
            },
          ],
        },
      ],
    }
  }

  async function runStatuses(message: SentMessage) {
    // One message's statuses go strictly in order: each waits for the previous one's delivery (and retries).
    for (const status of statusKinds) {
      const paused = await sleep(statusDelayMs, true, { signal: lifecycle.signal }).catch(() => false)
      if (!paused) return
      await postWebhook(statusEnvelope(message, status), { wamid: message.wamid, status })
    }
  }

  function takeFailure(): GraphErrorResponse | null {
    const rule = failures[0]
    if (!rule) return null
    rule.remaining--
    if (rule.remaining <= 0) failures.shift()
    return graphError(rule.code, { httpStatus: rule.httpStatus, details: rule.details })
  }

  /** A sliding-window count: true (and not counted) when `key` already had `max` calls in the last `windowMs`. */
  function overWindow(log: Map<string, number[]>, key: string, windowMs: number, max: number): boolean {
    const now = Date.now()
    const calls = (log.get(key) ?? []).filter((t) => now - t < windowMs)
    const over = calls.length >= max
    if (!over) calls.push(now)
    log.set(key, calls)
    return over
  }

  const overRateLimit = (phoneNumberId: string) => ratePerSecond !== undefined && overWindow(recentCalls, phoneNumberId, 1000, ratePerSecond)

  const overPairLimit = (phoneNumberId: string, to: string) =>
    pairPerMinute !== undefined && overWindow(pairCalls, `${phoneNumberId}:${to.replace(/\D/g, '')}`, 60_000, pairPerMinute)

  function authorized(req: IncomingMessage, url: URL): boolean {
    const header = req.headers.authorization ?? ''
    const token = header.match(/^Bearer\s+(.+)$/i)?.[1]?.trim() ?? url.searchParams.get('access_token') ?? ''
    if (!token) return false
    return acceptedTokens.size === 0 || acceptedTokens.has(token)
  }

  async function handleMessages(req: IncomingMessage, res: ServerResponse, url: URL, apiVersion: string, phoneNumberId: string) {
    const raw = await readBody(req)
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: lifecycle.signal }).catch(() => undefined)

    if (options.apiVersion && apiVersion !== options.apiVersion) {
      return sendGraphError(res, graphError(100, { message: `(#100) Unsupported API version ${apiVersion}`, details: `This emulator serves ${options.apiVersion}.` }))
    }
    if (!authorized(req, url)) {
      // What Graph answers for a token it cannot use, whatever the reason.
      return sendGraphError(res, graphError(190, { message: 'Invalid OAuth access token - Cannot parse access token', httpStatus: 401 }))
    }
    if (raw === null) return sendGraphError(res, graphError(100, { details: 'Request body too large.' }))

    const parsed = parseMessageBody(raw)
    if (!parsed.ok) return sendGraphError(res, graphError(100, { details: parsed.details }))

    const failure = takeFailure()
    if (failure) return sendGraphError(res, failure)
    if (overRateLimit(phoneNumberId)) {
      throttled[130429] = (throttled[130429] ?? 0) + 1
      return sendGraphError(res, graphError(130429))
    }
    if (parsed.kind !== 'read' && overPairLimit(phoneNumberId, parsed.to)) {
      throttled[131056] = (throttled[131056] ?? 0) + 1
      return sendGraphError(res, graphError(131056))
    }
    const templateError = parsed.kind === 'send' && parsed.type === 'template' ? checkTemplate(parsed.body) : null
    if (templateError) return sendGraphError(res, templateError)

    const receivedAt = new Date().toISOString()
    if (parsed.kind === 'read') {
      reads.push({ phoneNumberId, messageId: parsed.messageId, receivedAt })
      return sendJson(res, 200, { success: true })
    }

    const wamid = newWamid()
    const message: SentMessage = {
      seq: seq++,
      phoneNumberId,
      apiVersion,
      wamid,
      to: parsed.to,
      waId: parsed.to.replace(/\D/g, ''),
      type: parsed.type,
      body: parsed.body,
      ...(typeof parsed.body.biz_opaque_callback_data === 'string' ? { bizOpaqueCallbackData: parsed.body.biz_opaque_callback_data } : {}),
      receivedAt,
    }
    sent.push(message)
    for (const wake of [...waiters]) wake()
    sendJson(res, 200, {
      messaging_product: 'whatsapp',
      contacts: [{ input: parsed.to, wa_id: message.waId }],
      // Meta reports `accepted` for template sends (and holds some marketing ones for quality review).
      messages: [{ id: wamid, ...(parsed.type === 'template' ? { message_status: 'accepted' } : {}) }],
    })
    if (autoStatuses && options.webhookUrl && options.appSecret) track(runStatuses(message))
  }

  /** Meta's answer to a template it does not have (132001) or whose body parameters do not fit (132000). */
  function checkTemplate(body: Record<string, unknown>): GraphErrorResponse | null {
    if (templates.size === 0) return null
    const t = body.template as { name: string; language: { code: string }; components?: Array<{ type?: string; parameters?: unknown[] }> }
    const known = templates.get(`${t.name}:${t.language.code}`)
    if (!known) return graphError(132001, { details: `template name (${t.name}) does not exist in ${t.language.code}` })
    const given = (t.components ?? []).find((c) => String(c.type).toLowerCase() === 'body')?.parameters?.length ?? 0
    if (given !== known.bodyParameters) return graphError(132000, { details: `body: number of localizable_params (${given}) does not match the expected number of params (${known.bodyParameters})` })
    return null
  }

  /** The number as `GET /{phone-number-id}` sees it, or null when Graph would say it does not exist. */
  function lookUpNumber(id: string): EmulatedPhoneNumber | null {
    const known = phoneNumbers.get(id)
    if (known) return known
    return phoneNumbers.size === 0 && /^\d{5,20}$/.test(id) ? { id, wabaId, displayPhoneNumber, messagingLimit: defaultMessagingLimit } : null
  }

  const objectMissing = (id: string) => graphError(100, {
    message: `Unsupported get request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
    details: `Object with ID '${id}' does not exist.`,
  })

  // GET /{version}/{phone-number-id}: the number's profile, as the Cloud API's phone number endpoint answers it.
  async function handlePhoneNumber(req: IncomingMessage, res: ServerResponse, url: URL, id: string) {
    req.resume()
    if (!authorized(req, url)) return sendGraphError(res, graphError(190, { message: 'Invalid OAuth access token - Cannot parse access token', httpStatus: 401 }))
    const failure = takeFailure()
    if (failure) return sendGraphError(res, failure)
    const number = lookUpNumber(id)
    if (!number) return sendGraphError(res, objectMissing(id))
    const limit = number.messagingLimit === undefined ? 'TIER_250' : number.messagingLimit
    const node: Record<string, unknown> = {
      verified_name: number.verifiedName ?? 'Emulated Business', code_verification_status: 'VERIFIED',
      display_phone_number: number.displayPhoneNumber, quality_rating: 'GREEN', platform_type: 'CLOUD_API',
      throughput: { level: 'STANDARD' },
      ...(limit === null ? {} : { whatsapp_business_manager_messaging_limit: limit }),
      id: number.id,
    }
    // Graph answers the fields asked for (and the id), or its defaults when none are named.
    const fields = url.searchParams.get('fields')
    if (!fields) return sendJson(res, 200, node)
    const asked = fields.split(',').map((f) => f.trim())
    return sendJson(res, 200, Object.fromEntries(Object.entries(node).filter(([k]) => k === 'id' || asked.includes(k))))
  }

  // POST /{version}/{waba-id}/subscribed_apps: subscribes the calling app to the WABA's webhooks.
  async function handleSubscribe(req: IncomingMessage, res: ServerResponse, url: URL, waba: string) {
    await readBody(req)
    if (!authorized(req, url)) return sendGraphError(res, graphError(190, { message: 'Invalid OAuth access token - Cannot parse access token', httpStatus: 401 }))
    const failure = takeFailure()
    if (failure) return sendGraphError(res, failure)
    const knownWabas = new Set([...phoneNumbers.values()].map((n) => n.wabaId))
    if (phoneNumbers.size > 0 ? !knownWabas.has(waba) : !/^\d{5,20}$/.test(waba)) return sendGraphError(res, objectMissing(waba))
    if (!subscriptions.includes(waba)) subscriptions.push(waba)
    return sendJson(res, 200, { success: true })
  }

  async function handleControl(req: IncomingMessage, res: ServerResponse, url: URL) {
    const route = `${req.method} ${url.pathname}`
    const body = req.method === 'POST' ? parseJsonObject(await readBody(req)) : {}
    if (body === null) return sendJson(res, 400, { error: 'body must be a JSON object' })
    switch (route) {
      case 'GET /_emulator/sent': {
        const to = url.searchParams.get('to')
        const since = Number(url.searchParams.get('since') ?? 0)
        const match = (m: { to?: string; waId?: string }) => !to || m.to === to || m.waId === to.replace(/\D/g, '')
        return sendJson(res, 200, { sent: sent.filter((m) => m.seq >= since && match(m)), reads, webhooks })
      }
      case 'POST /_emulator/fail-next': {
        const code = Number(body.code)
        const times = body.times === undefined ? 1 : Number(body.times)
        const httpStatus = body.httpStatus === undefined ? undefined : Number(body.httpStatus)
        if (!Number.isInteger(code) || !Number.isInteger(times) || times < 1) return sendJson(res, 400, { error: 'code must be an integer and times >= 1' })
        failNext(code, times, httpStatus === undefined ? {} : { httpStatus })
        return sendJson(res, 200, { ok: true, pending: failures })
      }
      case 'POST /_emulator/rate-limit': {
        const perSecond = body.perSecond === undefined || body.perSecond === null ? undefined : Number(body.perSecond)
        if (perSecond !== undefined && !(perSecond > 0)) return sendJson(res, 400, { error: 'perSecond must be positive or null' })
        ratePerSecond = perSecond
        return sendJson(res, 200, { ok: true, perSecond: perSecond ?? null })
      }
      case 'POST /_emulator/latency': {
        const ms = Number(body.ms)
        if (!(ms >= 0)) return sendJson(res, 400, { error: 'ms must be >= 0' })
        latencyMs = ms
        return sendJson(res, 200, { ok: true, ms })
      }
      case 'POST /_emulator/reset':
        reset()
        return sendJson(res, 200, { ok: true })
      default:
        return sendJson(res, 404, { error: `no control route ${route}` })
    }
  }

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator')
    const handle = async () => {
      if (url.pathname.startsWith('/_emulator/')) return handleControl(req, res, url)
      const m = url.pathname.match(/^\/(v\d+\.\d+)\/([^/]+)\/messages\/?$/)
      if (req.method === 'POST' && m) return handleMessages(req, res, url, m[1]!, decodeURIComponent(m[2]!))
      const sub = url.pathname.match(/^\/(v\d+\.\d+)\/([^/]+)\/subscribed_apps\/?$/)
      if (req.method === 'POST' && sub) return handleSubscribe(req, res, url, decodeURIComponent(sub[2]!))
      const node = url.pathname.match(/^\/(v\d+\.\d+)\/([^/]+)\/?$/)
      if (req.method === 'GET' && node) return handlePhoneNumber(req, res, url, decodeURIComponent(node[2]!))
      // Graph's answer to a path or method it does not serve.
      req.resume()
      return sendGraphError(res, graphError(100, { message: `Unsupported ${(req.method ?? 'get').toLowerCase()} request.`, details: `${req.method} ${url.pathname} is not emulated.` }))
    }
    handle().catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) sendGraphError(res, graphError(1, { details: err instanceof Error ? err.message : String(err) }))
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const urlHost = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host

  return {
    url: `http://${urlHost}:${address.port}`,
    sent,
    reads,
    webhooks,
    failNext,
    setRateLimit: (perSecond?: number) => {
      ratePerSecond = perSecond
    },
    setPairRateLimit: (perMinute?: number) => {
      pairPerMinute = perMinute
    },
    throttled,
    setLatency: (ms: number) => {
      latencyMs = ms
    },
    waitForSent,
    addPhoneNumber: (number: EmulatedPhoneNumber) => {
      phoneNumbers.set(number.id, number)
    },
    addTemplate: (template: EmulatedTemplate) => {
      templates.set(`${template.name}:${template.language}`, template)
    },
    subscriptions,
    postWebhook,
    reset,
    async stop() {
      lifecycle.abort()
      await Promise.allSettled([...background])
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

type ParsedBody =
  | { ok: true; kind: 'read'; messageId: string }
  | { ok: true; kind: 'send'; to: string; type: string; body: Record<string, unknown> }
  | { ok: false; details: string }

/**
 * Loose on purpose: enough to reject garbage the way Meta does (error 100 naming the parameter), not a full
 * re-implementation of Meta's validation; the client's zod builders are the strict side.
 */
export function parseMessageBody(raw: Buffer): ParsedBody {
  const body = parseJsonObject(raw)
  if (!body) return { ok: false, details: 'Request body must be a JSON object.' }
  if (body.messaging_product !== 'whatsapp') return { ok: false, details: "The parameter messaging_product is required and must be 'whatsapp'." }
  if (body.status !== undefined) {
    if (body.status !== 'read') return { ok: false, details: "Param status must be 'read'." }
    if (typeof body.message_id !== 'string' || !body.message_id) return { ok: false, details: 'The parameter message_id is required.' }
    return { ok: true, kind: 'read', messageId: body.message_id }
  }
  if (typeof body.to !== 'string' || !/\d/.test(body.to)) return { ok: false, details: 'The parameter to is required.' }
  const type = body.type === undefined ? 'text' : body.type
  if (typeof type !== 'string' || !SEND_TYPES.has(type)) return { ok: false, details: `Param type must be one of {${[...SEND_TYPES].join(', ')}}.` }
  const part = body[type]
  if (!isObject(part) && !(type === 'contacts' && Array.isArray(part))) return { ok: false, details: `The parameter ${type} is required.` }
  if (type === 'text') {
    const text = (part as Record<string, unknown>).body
    if (typeof text !== 'string' || !text) return { ok: false, details: "Param text['body'] is required." }
    if (text.length > 4096) return { ok: false, details: "Param text['body'] must be at most 4096 characters long." }
  }
  if (type === 'template') {
    const t = part as Record<string, unknown>
    if (typeof t.name !== 'string' || !t.name) return { ok: false, details: "Param template['name'] is required." }
    if (!isObject(t.language) || typeof t.language.code !== 'string') return { ok: false, details: "Param template['language']['code'] is required." }
  }
  if (type === 'interactive') {
    const i = part as Record<string, unknown>
    if (typeof i.type !== 'string') return { ok: false, details: "Param interactive['type'] is required." }
    if (!isObject(i.action)) return { ok: false, details: "Param interactive['action'] is required." }
    if (i.type === 'button') {
      const buttons = i.action.buttons
      if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return { ok: false, details: "Param interactive['action']['buttons'] must have 1 to 3 elements." }
    }
    if (i.type === 'list' && !Array.isArray(i.action.sections)) return { ok: false, details: "Param interactive['action']['sections'] is required." }
  }
  if (MEDIA_TYPES.has(type)) {
    const media = part as Record<string, unknown>
    if (typeof media.link !== 'string' && typeof media.id !== 'string') return { ok: false, details: `Param ${type}['link'] or ${type}['id'] is required.` }
  }
  return { ok: true, kind: 'send', to: body.to, type, body }
}

/** Meta's wamids are `wamid.` plus base64 (standard alphabet, often ending in `=`): consumers must cope with that. */
const newWamid = () => `wamid.${randomBytes(33).toString('base64').slice(0, 44)}=`

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function parseJsonObject(raw: Buffer | null): Record<string, unknown> | null {
  if (raw === null) return null
  if (raw.length === 0) return {}
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'))
    return isObject(v) ? v : null
  } catch {
    return null
  }
}

/** The raw bytes of a request body, or null past the size limit. */
async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = []
  let size = 0
  let tooLarge = false
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) tooLarge = true
    else chunks.push(chunk as Buffer)
  }
  return tooLarge ? null : Buffer.concat(chunks)
}

function sendJson(res: ServerResponse, status: number, body: unknown) {
  if (res.destroyed || res.headersSent) return
  const raw = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(raw) })
  res.end(raw)
}

function sendGraphError(res: ServerResponse, error: GraphErrorResponse) {
  // Graph echoes the trace id in a header too.
  if (!res.destroyed && !res.headersSent) res.setHeader('x-fb-trace-id', String(error.body.error.fbtrace_id))
  sendJson(res, error.httpStatus, error.body)
}
