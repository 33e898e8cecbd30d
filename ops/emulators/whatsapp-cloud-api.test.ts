import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startWhatsAppEmulator, type WhatsAppEmulator } from './whatsapp-cloud-api.js'

const APP_SECRET = 'emulator-test-app-secret'
const TOKEN = 'EAAG-test-token'
const PHONE_NUMBER_ID = '106540352242922'
const WABA_ID = '102290129340398'
const LEAD = '5511988887777'

/** A tiny webhook receiver that keeps the exact bytes it got, and can refuse the first few deliveries. */
interface Received {
  raw: Buffer
  headers: IncomingHttpHeaders
}
async function startReceiver() {
  const received: Received[] = []
  const state = { refuse: 0, attempts: 0 }
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      state.attempts++
      if (state.refuse > 0) {
        state.refuse--
        res.writeHead(500).end()
        return
      }
      received.push({ raw: Buffer.concat(chunks), headers: req.headers })
      res.writeHead(200).end('EVENT_RECEIVED')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/webhooks/whatsapp`,
    received,
    state,
    statuses: () => received.map((r) => JSON.parse(r.raw.toString('utf8')).entry[0].changes[0].value.statuses[0]),
    waitFor: async (count: number, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} webhooks, got ${received.length}`)
        await new Promise((r) => setTimeout(r, 10))
      }
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>

let receiver: Receiver
let emulator: WhatsAppEmulator

beforeAll(async () => {
  receiver = await startReceiver()
  emulator = await startWhatsAppEmulator({
    webhookUrl: receiver.url,
    appSecret: APP_SECRET,
    accessTokens: [TOKEN],
    statusDelayMs: 5,
    webhookRetryDelayMs: 10,
    wabaId: WABA_ID,
    displayPhoneNumber: '15550783881',
  })
})
afterAll(async () => {
  await emulator.stop()
  await receiver.stop()
})
afterEach(async () => {
  // Let any status chain finish before the next test counts webhooks.
  await new Promise((r) => setTimeout(r, 100))
  emulator.reset()
  receiver.received.length = 0
  receiver.state.refuse = 0
  receiver.state.attempts = 0
})

// Meta's and the emulator's answers are read loosely here; the assertions are the schema.
type JsonResponse = Omit<Response, 'json'> & { json(): Promise<any> }

const send = (body: unknown, { token = TOKEN, path = `/v21.0/${PHONE_NUMBER_ID}/messages` } = {}): Promise<JsonResponse> =>
  fetch(`${emulator.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
const text = (body = 'Olá') => ({ messaging_product: 'whatsapp', recipient_type: 'individual', to: LEAD, type: 'text', text: { body } })
const control = (path: string, body?: unknown): Promise<JsonResponse> =>
  fetch(`${emulator.url}/_emulator/${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('send endpoint', () => {
  it('answers like Meta with a fresh wamid and the resolved contact', async () => {
    const res = await send(text())
    expect(res.status).toBe(200)
    const body = await res.json()
    expect(body).toEqual({ messaging_product: 'whatsapp', contacts: [{ input: LEAD, wa_id: LEAD }], messages: [{ id: expect.stringMatching(/^wamid\./) }] })
    expect(emulator.sent[0]).toMatchObject({ wamid: body.messages[0].id, phoneNumberId: PHONE_NUMBER_ID, apiVersion: 'v21.0', to: LEAD, type: 'text' })
    const second = await (await send(text())).json()
    expect(second.messages[0].id).not.toBe(body.messages[0].id)
  })

  it('marks templates as accepted', async () => {
    const res = await send({ messaging_product: 'whatsapp', to: LEAD, type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } })
    expect((await res.json()).messages[0].message_status).toBe('accepted')
  })

  it.each([
    ['no token', undefined, 401, 190],
    ['an unknown token', 'EAAG-other', 401, 190],
  ])('refuses %s with 401 and code 190', async (_name, token, status, code) => {
    const res = await send(text(), { token: token ?? '' })
    expect(res.status).toBe(status)
    expect((await res.json()).error).toMatchObject({ code, type: 'OAuthException', fbtrace_id: expect.any(String) })
    expect(emulator.sent).toHaveLength(0)
  })

  it.each([
    ['invalid JSON', '{nope'],
    ['a JSON array', '[]'],
    ['no messaging_product', { to: LEAD, type: 'text', text: { body: 'x' } }],
    ['no recipient', { messaging_product: 'whatsapp', type: 'text', text: { body: 'x' } }],
    ['an unknown type', { messaging_product: 'whatsapp', to: LEAD, type: 'hologram', hologram: {} }],
    ['a text without body', { messaging_product: 'whatsapp', to: LEAD, type: 'text', text: {} }],
    ['a template without language', { messaging_product: 'whatsapp', to: LEAD, type: 'template', template: { name: 'x' } }],
    ['four reply buttons', { messaging_product: 'whatsapp', to: LEAD, type: 'interactive', interactive: { type: 'button', body: { text: 'x' }, action: { buttons: [1, 2, 3, 4] } } }],
  ])('answers 400 with code 100 to %s', async (_name, body) => {
    const res = await send(body)
    expect(res.status).toBe(400)
    const { error } = await res.json()
    expect(error).toMatchObject({ code: 100, type: 'OAuthException', error_data: { messaging_product: 'whatsapp', details: expect.any(String) } })
  })

  it('answers an unsupported path the way Graph does', async () => {
    const res = await send(text(), { path: `/v21.0/${PHONE_NUMBER_ID}/media_things` })
    expect(res.status).toBe(400)
    expect((await res.json()).error.code).toBe(100)
  })

  it('acknowledges mark-as-read without status webhooks', async () => {
    const res = await send({ messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.inbound' })
    expect(await res.json()).toEqual({ success: true })
    expect(emulator.reads).toMatchObject([{ messageId: 'wamid.inbound', phoneNumberId: PHONE_NUMBER_ID }])
    await new Promise((r) => setTimeout(r, 100))
    expect(receiver.received).toHaveLength(0)
  })

  it('throttles a phone number over its rate with 130429', async () => {
    emulator.setRateLimit(2)
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await send(text())).status)
    expect(statuses).toEqual([200, 200, 400])
    const res = await send(text())
    expect((await res.json()).error.code).toBe(130429)
  })

  it('waits for a matching send', async () => {
    const waiting = emulator.waitForSent((m) => m.body.text !== undefined && (m.body.text as { body: string }).body === 'later', 2000)
    await send(text('sooner'))
    await send(text('later'))
    await expect(waiting).resolves.toMatchObject({ to: LEAD })
    await expect(emulator.waitForSent(() => false, 50)).rejects.toThrow(/no matching message/)
  })
})

describe('failNext', () => {
  it('fails exactly the next n calls with the real code and status, then recovers', async () => {
    emulator.failNext(131047, 2)
    const first = await send(text())
    expect(first.status).toBe(400)
    expect((await first.json()).error).toMatchObject({ code: 131047, message: '(#131047) Re-engagement message', error_data: { details: expect.stringMatching(/24 hours/) } })
    expect((await send(text())).status).toBe(400)
    expect((await send(text())).status).toBe(200)
    expect(emulator.sent).toHaveLength(1)
  })

  it.each([
    [190, 401],
    [100, 400],
    [130429, 400],
    [131056, 400],
    [131026, 400],
    [131000, 500],
    [132001, 404],
    [503, 503],
  ])('answers code %i with HTTP %i', async (code, status) => {
    emulator.failNext(code)
    const res = await send(text())
    expect(res.status).toBe(status)
    expect((await res.json()).error.code).toBe(code === 503 ? 2 : code)
  })
})

describe('status webhooks', () => {
  it('posts sent, delivered and read in order, signed over the exact bytes', async () => {
    const { messages } = await (await send({ ...text(), biz_opaque_callback_data: 'outbox:7' })).json()
    await receiver.waitFor(3)

    for (const { raw, headers } of receiver.received) {
      const expected = Buffer.from(`sha256=${createHmac('sha256', APP_SECRET).update(raw).digest('hex')}`)
      const got = Buffer.from(String(headers['x-hub-signature-256']))
      expect(got.length).toBe(expected.length)
      expect(timingSafeEqual(got, expected)).toBe(true)
      expect(headers['content-type']).toMatch(/application\/json/)
    }

    const envelope = JSON.parse(receiver.received[0]!.raw.toString('utf8'))
    expect(envelope).toMatchObject({
      object: 'whatsapp_business_account',
      entry: [{ id: WABA_ID, changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { phone_number_id: PHONE_NUMBER_ID, display_phone_number: '15550783881' } } }] }],
    })

    const statuses = receiver.statuses()
    expect(statuses.map((s) => s.status)).toEqual(['sent', 'delivered', 'read'])
    for (const s of statuses) expect(s).toMatchObject({ id: messages[0].id, recipient_id: LEAD, timestamp: expect.stringMatching(/^\d+$/), biz_opaque_callback_data: 'outbox:7' })
    expect(statuses[0]).toMatchObject({
      conversation: { id: expect.any(String), expiration_timestamp: expect.stringMatching(/^\d+$/), origin: { type: 'service' } },
      pricing: { billable: false, category: 'service' },
    })
    expect(statuses[1]).toMatchObject({ conversation: { id: statuses[0].conversation.id }, pricing: { category: 'service' } })
    expect(statuses[2].pricing).toBeUndefined()
  })

  it('uses the phone number id of the URL in metadata', async () => {
    await send(text(), { path: '/v21.0/999000111/messages' })
    await receiver.waitFor(3)
    const ids = receiver.received.map((r) => JSON.parse(r.raw.toString('utf8')).entry[0].changes[0].value.metadata.phone_number_id)
    expect(new Set(ids)).toEqual(new Set(['999000111']))
  })

  it('bills template messages by category', async () => {
    await send({ messaging_product: 'whatsapp', to: LEAD, type: 'template', template: { name: 'hello_world', language: { code: 'en_US' } } })
    await receiver.waitFor(1)
    expect(receiver.statuses()[0]).toMatchObject({ pricing: { billable: true, category: 'utility' }, conversation: { origin: { type: 'utility' } } })
  })

  it('retries a delivery the webhook does not answer with 200, resending the same signed bytes', async () => {
    receiver.state.refuse = 2
    await send(text())
    await receiver.waitFor(3)
    expect(receiver.state.attempts).toBe(5)
    expect(receiver.statuses().map((s) => s.status)).toEqual(['sent', 'delivered', 'read'])
    expect(emulator.webhooks[0]).toMatchObject({ status: 'sent', attempts: 3, delivered: true, lastHttpStatus: 200 })
  })

  it('posts nothing when autoStatuses is off', async () => {
    const quiet = await startWhatsAppEmulator({ webhookUrl: receiver.url, appSecret: APP_SECRET, autoStatuses: false, statusDelayMs: 1 })
    try {
      const res = await fetch(`${quiet.url}/v21.0/${PHONE_NUMBER_ID}/messages`, { method: 'POST', headers: { authorization: 'Bearer any' }, body: JSON.stringify(text()) })
      expect(res.status).toBe(200)
      await new Promise((r) => setTimeout(r, 50))
      expect(receiver.received).toHaveLength(0)
    } finally {
      await quiet.stop()
    }
  })
})

describe('control routes', () => {
  it('fail-next, sent and reset drive the emulator over HTTP', async () => {
    expect((await control('fail-next', { code: 131026, times: 1 })).status).toBe(200)
    const failed = await send(text())
    expect((await failed.json()).error.code).toBe(131026)

    await send(text('kept'))
    await send({ ...text('other'), to: '5511900000000' })
    const all = await (await control('sent')).json()
    expect(all.sent.map((m: { body: { text: { body: string } } }) => m.body.text.body)).toEqual(['kept', 'other'])
    const forLead = await (await control(`sent?to=${LEAD}`)).json()
    expect(forLead.sent).toHaveLength(1)
    const since = await (await control('sent?since=1')).json()
    expect(since.sent.map((m: { seq: number }) => m.seq)).toEqual([1])

    expect((await control('reset', {})).status).toBe(200)
    expect((await (await control('sent')).json()).sent).toEqual([])
    expect(emulator.sent).toHaveLength(0)
  })

  it('sets and clears the rate limit and latency', async () => {
    await control('rate-limit', { perSecond: 1 })
    expect((await send(text())).status).toBe(200)
    expect((await send(text())).status).toBe(400)
    await control('rate-limit', { perSecond: null })
    expect((await send(text())).status).toBe(200)

    await control('latency', { ms: 150 })
    const started = Date.now()
    await send(text())
    expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  })

  it('rejects a bad control request', async () => {
    expect((await control('fail-next', { code: 'soon' })).status).toBe(400)
    expect((await control('nothing-here', {})).status).toBe(404)
  })
})
