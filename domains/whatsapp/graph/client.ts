import { z } from 'zod'
import type { MarkReadBody, SendMessageBody } from './bodies.js'
import { classifyGraphError, GraphApiError, titleFromMessage } from './errors.js'

export * from './bodies.js'
export { classifyGraphError, GraphApiError, isGraphApiError, type GraphErrorDisposition } from './errors.js'

export interface GraphClientOptions {
  /** `https://graph.facebook.com` in production; the emulator's URL in development and tests. */
  baseUrl: string
  /** `v21.0` and the like. */
  apiVersion: string
  /** Whole-call budget: connecting, Meta's processing and reading the answer. */
  timeoutMs: number
  fetch?: typeof fetch
}

export interface SendMessageInput {
  phoneNumberId: string
  accessToken: string
  body: SendMessageBody
  /**
   * Our own key for this send (the outbox row id, say). Meta has no idempotency on /messages, so it cannot stop a
   * duplicate; it is sent as `biz_opaque_callback_data`, which Meta echoes in every status webhook of the message.
   * After a timeout that hid the wamid, the statuses still tell us the message went out.
   */
  idempotencyKey?: string
}

export interface SendMessageResult {
  wamid: string
  /** The recipient's WhatsApp id as Meta resolved it (may differ from `to`, e.g. without the `+`). */
  waId?: string
}

export interface PhoneNumberProfile { id: string; displayPhoneNumber: string; verifiedName: string | null; qualityRating: string | null }

export interface GraphClient {
  sendMessage(input: SendMessageInput): Promise<SendMessageResult>
  markRead(input: { phoneNumberId: string; accessToken: string; messageId: string }): Promise<void>
  /** `GET /{phone-number-id}`: the number's profile; proves the token can use that number. */
  getPhoneNumber(input: { phoneNumberId: string; accessToken: string }): Promise<PhoneNumberProfile>
  /**
   * `GET /{phone-number-id}?fields=whatsapp_business_manager_messaging_limit`: the messaging limit (unique
   * business-initiated recipients per rolling 24 h) as a tier, `TIER_250`, `TIER_2K`, …, `TIER_UNLIMITED`; null when
   * Meta's answer carries none. Meta deprecated `messaging_limit_tier` for this field (limits are set per business
   * portfolio since October 2025); it is asked on its own, so a version of the API that does not know the field fails
   * only this call, not the profile check.
   */
  getMessagingLimit(input: { phoneNumberId: string; accessToken: string }): Promise<string | null>
  /** `POST /{waba-id}/subscribed_apps`: subscribes the token's app to the WABA's webhooks. */
  subscribeApp(input: { wabaId: string; accessToken: string }): Promise<void>
}

const PhoneNumberAnswer = z.object({
  id: z.string(),
  display_phone_number: z.string(),
  verified_name: z.string().optional(),
  quality_rating: z.string().optional(),
})

// A tier name as Meta spells them (TIER_50 … TIER_100K, TIER_UNLIMITED, UNLIMITED); anything else is not stored.
const MessagingLimitAnswer = z.object({
  id: z.string(),
  whatsapp_business_manager_messaging_limit: z.string().regex(/^(TIER_[0-9A-Z]{1,12}|UNLIMITED)$/).optional().catch(undefined),
})

const SendSuccess = z.object({
  messaging_product: z.literal('whatsapp').optional(),
  contacts: z.array(z.object({ input: z.string().optional(), wa_id: z.string() })).optional(),
  messages: z.array(z.object({ id: z.string().min(1), message_status: z.string().optional() })).min(1),
})

const GraphErrorBody = z.object({
  error: z.object({
    message: z.string().default(''),
    type: z.string().optional(),
    // Numbers in Meta's answers; some proxies stringify them, so both are accepted.
    code: z.coerce.number().int().optional(),
    error_subcode: z.coerce.number().int().optional(),
    error_data: z.object({ messaging_product: z.string().optional(), details: z.string().optional() }).partial().optional(),
    fbtrace_id: z.string().optional(),
  }),
})

const ApiVersion = z.string().regex(/^v\d+\.\d+$/, 'apiVersion looks like v21.0')
// Meta's ids are digits; the emulator accepts any path-safe id, and so do we, but never a slash or a dot segment.
const PhoneNumberId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'phoneNumberId must be a plain id')
// Meta's limit on biz_opaque_callback_data.
const IdempotencyKey = z.string().min(1).max(512)

export function createGraphClient(options: GraphClientOptions): GraphClient {
  const apiVersion = ApiVersion.parse(options.apiVersion)
  const baseUrl = options.baseUrl.replace(/\/+$/, '')
  const doFetch = options.fetch ?? fetch

  const post = (phoneNumberId: string, accessToken: string, body: unknown) =>
    call('POST', `${PhoneNumberId.parse(phoneNumberId)}/messages`, accessToken, body)

  async function call(method: 'GET' | 'POST', path: string, accessToken: string, body?: unknown): Promise<unknown> {
    const url = `${baseUrl}/${apiVersion}/${path}`
    let res: Response
    let text: string
    try {
      // The signal covers reading the body too: a server that sends headers and then stalls still times out.
      const signal = AbortSignal.timeout(options.timeoutMs)
      res = await doFetch(url, {
        method,
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal,
      })
      text = await res.text()
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')
      const message = timedOut ? `Graph API call timed out after ${options.timeoutMs} ms` : `Graph API call failed: ${err instanceof Error ? err.message : String(err)}`
      throw new GraphApiError({
        httpStatus: null,
        code: null,
        subcode: null,
        title: timedOut ? 'Timeout' : 'Network error',
        message,
        details: null,
        fbtraceId: null,
        disposition: classifyGraphError(null, null),
        cause: err,
      })
    }

    const json = parseJson(text)
    if (res.ok) return json
    throw errorFromResponse(res.status, json, text)
  }

  return {
    async sendMessage({ phoneNumberId, accessToken, body, idempotencyKey }) {
      const payload: SendMessageBody =
        idempotencyKey && body.biz_opaque_callback_data === undefined ? { ...body, biz_opaque_callback_data: IdempotencyKey.parse(idempotencyKey) } : body
      const json = await post(phoneNumberId, accessToken, payload)
      const parsed = SendSuccess.safeParse(json)
      if (!parsed.success) {
        // A 2xx without a message id: we cannot tell whether Meta queued it. Failing (not retrying) avoids sending
        // twice; the status webhooks, carrying biz_opaque_callback_data, will show if it went out after all.
        throw new GraphApiError({
          httpStatus: 200,
          code: null,
          subcode: null,
          title: 'Unexpected response',
          message: 'Graph API answered 2xx without a message id',
          details: null,
          fbtraceId: null,
          disposition: 'fail',
        })
      }
      const [message] = parsed.data.messages
      const waId = parsed.data.contacts?.[0]?.wa_id
      return { wamid: message!.id, ...(waId ? { waId } : {}) }
    },

    async markRead({ phoneNumberId, accessToken, messageId }) {
      const body: MarkReadBody = { messaging_product: 'whatsapp', status: 'read', message_id: messageId }
      await post(phoneNumberId, accessToken, body)
    },

    async getPhoneNumber({ phoneNumberId, accessToken }) {
      const json = await call('GET', `${PhoneNumberId.parse(phoneNumberId)}?fields=id,display_phone_number,verified_name,quality_rating`, accessToken)
      const parsed = PhoneNumberAnswer.safeParse(json)
      if (!parsed.success) {
        throw new GraphApiError({ httpStatus: 200, code: null, subcode: null, title: 'Unexpected response', message: 'Graph API answered without the number', details: null, fbtraceId: null, disposition: 'fail' })
      }
      return { id: parsed.data.id, displayPhoneNumber: parsed.data.display_phone_number, verifiedName: parsed.data.verified_name ?? null, qualityRating: parsed.data.quality_rating ?? null }
    },

    async getMessagingLimit({ phoneNumberId, accessToken }) {
      const json = await call('GET', `${PhoneNumberId.parse(phoneNumberId)}?fields=whatsapp_business_manager_messaging_limit`, accessToken)
      const parsed = MessagingLimitAnswer.safeParse(json)
      if (!parsed.success) {
        throw new GraphApiError({ httpStatus: 200, code: null, subcode: null, title: 'Unexpected response', message: 'Graph API answered without the number', details: null, fbtraceId: null, disposition: 'fail' })
      }
      return parsed.data.whatsapp_business_manager_messaging_limit ?? null
    },

    async subscribeApp({ wabaId, accessToken }) {
      await call('POST', `${PhoneNumberId.parse(wabaId)}/subscribed_apps`, accessToken, {})
    },
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

function errorFromResponse(httpStatus: number, json: unknown, text: string): GraphApiError {
  const parsed = GraphErrorBody.safeParse(json)
  if (!parsed.success) {
    // Not a Graph error body (an HTML page from a load balancer, say): only the status tells us anything.
    return new GraphApiError({
      httpStatus,
      code: null,
      subcode: null,
      title: `HTTP ${httpStatus}`,
      message: `Graph API answered HTTP ${httpStatus}: ${text.slice(0, 200)}`,
      details: null,
      fbtraceId: null,
      disposition: classifyGraphError(httpStatus, null),
    })
  }
  const e = parsed.data.error
  const code = e.code ?? null
  return new GraphApiError({
    httpStatus,
    code,
    subcode: e.error_subcode ?? null,
    title: titleFromMessage(e.message),
    message: e.message || `Graph API answered HTTP ${httpStatus}`,
    details: e.error_data?.details ?? null,
    fbtraceId: e.fbtrace_id ?? null,
    disposition: classifyGraphError(httpStatus, code),
  })
}
