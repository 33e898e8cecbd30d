import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../../ops/emulators/whatsapp-cloud-api.js'
import {
  classifyGraphError,
  createGraphClient,
  GraphApiError,
  interactiveButtonsBody,
  interactiveListBody,
  markReadBody,
  templateBody,
  textBody,
  type GraphClient,
  type SendMessageBody,
} from './client.js'

const TOKEN = 'EAAG-test-token'
const PHONE_NUMBER_ID = '106540352242922'
const LEAD = '5511988887777'

let emulator: WhatsAppEmulator
let client: GraphClient

beforeAll(async () => {
  emulator = await startWhatsAppEmulator({ accessTokens: [TOKEN], autoStatuses: false })
  client = createGraphClient({ baseUrl: emulator.url, apiVersion: 'v21.0', timeoutMs: 2000 })
})
afterAll(async () => {
  await emulator.stop()
})
beforeEach(() => emulator.reset())

async function sendError(body: SendMessageBody = textBody({ to: LEAD, text: 'hi' }), c: GraphClient = client, accessToken = TOKEN): Promise<GraphApiError> {
  const err = await c.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken, body }).then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(GraphApiError)
  return err as GraphApiError
}

describe('sendMessage', () => {
  it('returns the wamid Meta assigned and the resolved wa_id', async () => {
    const result = await client.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, body: textBody({ to: `+${LEAD}`, text: 'Olá!' }) })
    expect(result.wamid).toMatch(/^wamid\./)
    expect(result.waId).toBe(LEAD)
    const [sent] = emulator.sent
    expect(sent).toMatchObject({ wamid: result.wamid, phoneNumberId: PHONE_NUMBER_ID, type: 'text', body: { text: { body: 'Olá!', preview_url: false } } })
  })

  it('carries the idempotency key as biz_opaque_callback_data so status webhooks can be reconciled', async () => {
    await client.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, body: textBody({ to: LEAD, text: 'hi' }), idempotencyKey: 'outbox:42' })
    expect(emulator.sent[0]?.bizOpaqueCallbackData).toBe('outbox:42')
  })

  it('sends templates, buttons and lists that the emulator accepts', async () => {
    const bodies = [
      templateBody({
        to: LEAD,
        name: 'lead_welcome',
        language: 'pt_BR',
        components: [
          { type: 'header', parameters: [{ type: 'text', text: 'Ana' }] },
          { type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: 'amanhã' }] },
          { type: 'button', subType: 'quick_reply', index: 0, parameters: [{ type: 'payload', payload: 'BOOK' }] },
        ],
      }),
      interactiveButtonsBody({ to: LEAD, text: 'Shall we book?', buttons: [{ id: 'yes', title: 'Yes' }, { id: 'no', title: 'No' }], header: 'Booking', footer: 'Reply any time' }),
      interactiveListBody({ to: LEAD, text: 'Pick a slot', buttonText: 'Slots', sections: [{ title: 'Tomorrow', rows: [{ id: 'am', title: 'Morning', description: '9-12' }] }] }),
    ]
    for (const body of bodies) await client.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, body })
    expect(emulator.sent.map((m) => m.type)).toEqual(['template', 'interactive', 'interactive'])
    expect(emulator.sent[0]?.body).toMatchObject({ template: { components: [{}, {}, { type: 'button', sub_type: 'quick_reply', index: '0' }] } })
  })

  it('marks an inbound message as read', async () => {
    await client.markRead({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, messageId: 'wamid.inbound1' })
    expect(emulator.reads).toMatchObject([{ phoneNumberId: PHONE_NUMBER_ID, messageId: 'wamid.inbound1' }])
    expect(emulator.sent).toHaveLength(0)
  })
})

describe('getMessagingLimit', () => {
  it("asks only for the number's messaging limit tier and gives what Meta answers, or null without one", async () => {
    const tiers = await startWhatsAppEmulator({
      accessTokens: [TOKEN], autoStatuses: false,
      phoneNumbers: [
        { id: '100000000000010', wabaId: '200000000000010', displayPhoneNumber: '15550000010', messagingLimit: 'TIER_2K' },
        { id: '100000000000011', wabaId: '200000000000010', displayPhoneNumber: '15550000011', messagingLimit: null },
      ],
    })
    try {
      const c = createGraphClient({ baseUrl: tiers.url, apiVersion: 'v21.0', timeoutMs: 2000 })
      expect(await c.getMessagingLimit({ phoneNumberId: '100000000000010', accessToken: TOKEN })).toBe('TIER_2K')
      expect(await c.getMessagingLimit({ phoneNumberId: '100000000000011', accessToken: TOKEN })).toBeNull()
      const raw = await fetch(`${tiers.url}/v21.0/100000000000010?fields=whatsapp_business_manager_messaging_limit`, { headers: { authorization: `Bearer ${TOKEN}` } })
      expect(await raw.json()).toEqual({ whatsapp_business_manager_messaging_limit: 'TIER_2K', id: '100000000000010' })
      const missing = await c.getMessagingLimit({ phoneNumberId: '100000000000099', accessToken: TOKEN }).catch((e: unknown) => e)
      expect(missing).toMatchObject({ code: 100, disposition: 'fail' })
      tiers.failNext(190)
      expect(await c.getMessagingLimit({ phoneNumberId: '100000000000010', accessToken: TOKEN }).catch((e: unknown) => e)).toMatchObject({ code: 190, disposition: 'token_invalid' })
    } finally {
      await tiers.stop()
    }
  })
})

describe('Graph errors', () => {
  it.each([
    [130429, 400, 'retry'],
    [131056, 400, 'retry'],
    [131000, 500, 'retry'],
    [133004, 503, 'retry'],
    [503, 503, 'retry'],
    [131047, 400, 'fail'],
    [131026, 400, 'fail'],
    [100, 400, 'fail'],
    [132000, 400, 'fail'],
    [132001, 404, 'fail'],
    [131049, 400, 'fail'],
    [190, 401, 'token_invalid'],
  ] as const)('code %i answers HTTP %i and means %s', async (code, httpStatus, disposition) => {
    emulator.failNext(code)
    const err = await sendError()
    expect(err).toMatchObject({ httpStatus, disposition, retryable: disposition === 'retry' })
    expect(err.code).toBe(code === 503 ? 2 : code)
    expect(err.fbtraceId).toBeTruthy()
    expect(err.title).not.toMatch(/^\(#/)
    // The failure is consumed: the next send goes through.
    await expect(client.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, body: textBody({ to: LEAD, text: 'again' }) })).resolves.toHaveProperty('wamid')
  })

  it('reports Meta details for a closed 24h window', async () => {
    emulator.failNext(131047)
    const err = await sendError()
    expect(err.title).toBe('Re-engagement message')
    expect(err.details).toMatch(/24 hours/)
  })

  it('flags a token Meta does not accept as token_invalid', async () => {
    const err = await sendError(undefined, client, 'EAAG-revoked')
    expect(err).toMatchObject({ httpStatus: 401, code: 190, disposition: 'token_invalid', retryable: false })
    expect(err.message).not.toContain('EAAG-revoked')
  })

  it('fails without retrying when Meta rejects the body as an invalid parameter', async () => {
    const garbage = { messaging_product: 'whatsapp', to: LEAD, type: 'text', text: {} } as unknown as SendMessageBody
    const err = await sendError(garbage)
    expect(err).toMatchObject({ httpStatus: 400, code: 100, disposition: 'fail' })
    expect(err.details).toMatch(/text\['body'\]/)
  })

  it('retries when the business number is over its throughput', async () => {
    emulator.setRateLimit(1)
    await client.sendMessage({ phoneNumberId: PHONE_NUMBER_ID, accessToken: TOKEN, body: textBody({ to: LEAD, text: 'one' }) })
    const err = await sendError()
    expect(err).toMatchObject({ code: 130429, disposition: 'retry' })
  })

  it('turns a timeout into a retryable error with no HTTP status', async () => {
    emulator.setLatency(600)
    const impatient = createGraphClient({ baseUrl: emulator.url, apiVersion: 'v21.0', timeoutMs: 100 })
    const err = await sendError(undefined, impatient)
    expect(err).toMatchObject({ httpStatus: null, code: null, disposition: 'retry', title: 'Timeout' })
  })

  it('turns a refused connection into a retryable error', async () => {
    const closed = await startWhatsAppEmulator()
    const url = closed.url
    await closed.stop()
    const err = await sendError(undefined, createGraphClient({ baseUrl: url, apiVersion: 'v21.0', timeoutMs: 1000 }))
    expect(err).toMatchObject({ httpStatus: null, disposition: 'retry', title: 'Network error' })
  })

  it('classifies a non-Graph 502 page by its status', async () => {
    const proxy: typeof fetch = async () => new Response('<html>Bad Gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } })
    const err = await sendError(undefined, createGraphClient({ baseUrl: emulator.url, apiVersion: 'v21.0', timeoutMs: 1000, fetch: proxy }))
    expect(err).toMatchObject({ httpStatus: 502, code: null, disposition: 'retry' })
  })
})

describe('classifyGraphError', () => {
  it.each([
    [400, 130429, 'retry'],
    [400, 131056, 'retry'],
    [500, 131000, 'retry'],
    [null, null, 'retry'],
    [502, null, 'retry'],
    [429, null, 'retry'],
    [400, 80007, 'retry'],
    [400, 131047, 'fail'],
    [400, 131026, 'fail'],
    [400, 100, 'fail'],
    [400, 132000, 'fail'],
    [404, 132001, 'fail'],
    [400, 132999, 'fail'],
    [403, 10, 'fail'],
    [404, null, 'fail'],
    [401, 190, 'token_invalid'],
    [400, 190, 'token_invalid'],
    [401, null, 'token_invalid'],
  ] as const)('HTTP %s with code %s is %s', (status, code, expected) => {
    expect(classifyGraphError(status, code)).toBe(expected)
  })
})

describe('body builders', () => {
  it('builds a text reply with context and link preview', () => {
    expect(textBody({ to: LEAD, text: 'see https://x.test', previewUrl: true, replyTo: 'wamid.abc' })).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: LEAD,
      context: { message_id: 'wamid.abc' },
      type: 'text',
      text: { body: 'see https://x.test', preview_url: true },
    })
  })

  it('builds reply buttons in Meta shape', () => {
    expect(interactiveButtonsBody({ to: LEAD, text: 'Ok?', buttons: [{ id: 'y', title: 'Yes' }] }).interactive).toEqual({
      type: 'button',
      body: { text: 'Ok?' },
      action: { buttons: [{ type: 'reply', reply: { id: 'y', title: 'Yes' } }] },
    })
  })

  it('builds mark-as-read', () => {
    expect(markReadBody('wamid.x')).toEqual({ messaging_product: 'whatsapp', status: 'read', message_id: 'wamid.x' })
  })

  const button = (i: number) => ({ id: `b${i}`, title: `Option ${i}` })
  const row = (i: number) => ({ id: `r${i}`, title: `Row ${i}` })

  it.each([
    ['empty text', () => textBody({ to: LEAD, text: '' })],
    ['text over 4096 characters', () => textBody({ to: LEAD, text: 'x'.repeat(4097) })],
    ['a recipient that is not a number', () => textBody({ to: 'ana@example.com', text: 'hi' })],
    ['no buttons', () => interactiveButtonsBody({ to: LEAD, text: 'hi', buttons: [] })],
    ['four buttons', () => interactiveButtonsBody({ to: LEAD, text: 'hi', buttons: [1, 2, 3, 4].map(button) })],
    ['a button title over 20 characters', () => interactiveButtonsBody({ to: LEAD, text: 'hi', buttons: [{ id: 'a', title: 'x'.repeat(21) }] })],
    ['duplicate button ids', () => interactiveButtonsBody({ to: LEAD, text: 'hi', buttons: [{ id: 'a', title: 'A' }, { id: 'a', title: 'B' }] })],
    ['a header over 60 characters', () => interactiveButtonsBody({ to: LEAD, text: 'hi', buttons: [button(1)], header: 'x'.repeat(61) })],
    ['interactive body over 1024 characters', () => interactiveButtonsBody({ to: LEAD, text: 'x'.repeat(1025), buttons: [button(1)] })],
    ['a list button over 20 characters', () => interactiveListBody({ to: LEAD, text: 'hi', buttonText: 'x'.repeat(21), sections: [{ rows: [row(1)] }] })],
    ['eleven rows across sections', () => interactiveListBody({ to: LEAD, text: 'hi', buttonText: 'Go', sections: [{ title: 'A', rows: [1, 2, 3, 4, 5, 6].map(row) }, { title: 'B', rows: [7, 8, 9, 10, 11].map(row) }] })],
    ['a row title over 24 characters', () => interactiveListBody({ to: LEAD, text: 'hi', buttonText: 'Go', sections: [{ rows: [{ id: 'r', title: 'x'.repeat(25) }] }] })],
    ['untitled sections when there are several', () => interactiveListBody({ to: LEAD, text: 'hi', buttonText: 'Go', sections: [{ rows: [row(1)] }, { rows: [row(2)] }] })],
    ['a template name with capitals', () => templateBody({ to: LEAD, name: 'Welcome', language: 'en_US' })],
    ['a template language that is not a code', () => templateBody({ to: LEAD, name: 'welcome', language: 'English' })],
    ['a button index past 9', () => templateBody({ to: LEAD, name: 'welcome', language: 'en', components: [{ type: 'button', subType: 'quick_reply', index: 10, parameters: [{ type: 'payload', payload: 'x' }] }] })],
    ['an empty message id to mark read', () => markReadBody('')],
  ])('rejects %s', (_name, build) => {
    expect(build).toThrow()
  })

  it('refuses a malformed API version when the client is created', () => {
    expect(() => createGraphClient({ baseUrl: 'http://x', apiVersion: '21', timeoutMs: 1000 })).toThrow()
  })
})
