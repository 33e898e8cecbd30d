import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import type { App } from '../../lib/http/create-server.js'
import { runSeeds } from '../../db/seed.js'
import { startWhatsAppEmulator, type SentMessage, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { startWorker, type WorkerHandle } from '../../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { PLATFORM_APP_SECRET } from '../../test/factories/whatsapp.js'
import { signMetaBody } from '../whatsapp/signature.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import { demoQualificationFlow } from './flows/demo-qualification-flow.js'

const DEMO_ADMIN_KEY = 'wak_demo0000_local-development-only-demo-admin-key-00001'
const WABA_ID = '100000000000001'
const PHONE_NUMBER_ID = '100000000000002'

/**
 * A new patient qualifies themselves with the seeded demo bot, end to end: signed inbound webhooks over real HTTP
 * into the webhooks service, the real worker (graphile-worker, LISTEN/NOTIFY) running the bot and the outbox, the
 * Cloud API emulator receiving the replies and posting signed status webhooks back, and the API showing the result.
 */
describe('the demo qualification conversation, end to end through the emulator and the webhook path', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let wa: WhatsAppEmulator
  let worker: WorkerHandle
  let webhooksUrl: string
  const lead = '5511988887777'

  beforeAll(async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    webhooks = await buildTestWebhooks(db.current)
    webhooksUrl = `${await webhooks.listen({ host: '127.0.0.1', port: 0 })}/webhooks/whatsapp`
    wa = await startWhatsAppEmulator({ webhookUrl: webhooksUrl, appSecret: PLATFORM_APP_SECRET, wabaId: WABA_ID, displayPhoneNumber: '15550001234', statusDelayMs: 10 })
    const config = testConfig({ GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '200' })
    worker = await startWorker({ config, log: testLogger(), connectionString: db.current.runtimeUrl })
    api = await buildTestApi(db.current, { GRAPH_API_BASE_URL: wa.url })
  })
  afterAll(async () => {
    await worker?.stop()
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  /** What play-lead does: a signed inbound message, posted to the webhooks service. */
  const leadSends = async (message: f.RawMessage) => {
    const raw = JSON.stringify(f.delivery({ wabaId: WABA_ID, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '15550001234', messages: [message], contacts: [{ waId: lead, name: 'Ana' }] }))
    const res = await fetch(webhooksUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) }, body: raw })
    expect(res.status).toBe(200)
  }
  let seen = 0
  /** The business's next `n` messages to the lead, as the emulator received them. */
  const nextReplies = async (n: number): Promise<SentMessage[]> => {
    const deadline = Date.now() + 10_000
    while (wa.sent.filter((m) => m.to === lead).length < seen + n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} more replies; have ${wa.sent.filter((m) => m.to === lead).length - seen}`)
      await sleep(20)
    }
    const replies = wa.sent.filter((m) => m.to === lead).slice(seen, seen + n)
    seen += n
    return replies
  }
  const text = (m: SentMessage) => (m.body.text as { body: string } | undefined)?.body ?? (m.body.interactive as { body: { text: string } }).body.text
  const get = (url: string) => api.inject({ method: 'GET', url, headers: bearer(DEMO_ADMIN_KEY) }).then((r) => r.json())

  it('ships the demo flow and a working sealed token in the seed', async () => {
    const [version] = await db.current.owner<{ document: unknown }[]>`select document from conversations.flow_versions where flow_id = '00000000-0000-4000-8000-0000000000c1'`
    expect(version!.document).toEqual(demoQualificationFlow)
    const [number] = await db.current.owner<{ accessTokenSealed: string }[]>`select access_token_sealed from whatsapp.phone_numbers where phone_number_id = ${PHONE_NUMBER_ID}`
    expect(SecretBox.fromConfig(undefined).open(number!.accessTokenSealed)).toMatch(/^EAAG-demo/)
    expect((await get('/v1/flows')).data).toEqual([expect.objectContaining({ publishedVersion: 1, trigger: { type: 'first_message' } })])
  })

  it('qualifies a new patient: greeting, buttons, list, a bad email and a good one, then thanks', async () => {
    await leadSends(f.textMessage({ from: lead, body: 'Oi, quero marcar uma consulta' }))
    const [greeting, services] = await nextReplies(2)
    expect(text(greeting!)).toMatch(/^Hi Ana! 👋 Welcome/)
    // The greeting is the demo experiment's: the lead was assigned greeting-tone and exposed to its variation once.
    const [exposure] = await db.current.owner<{ variationKey: string; assigned: string }[]>`
      select x.variation_key, a.variation_key as assigned from experiments.exposures x
        join experiments.assignments a on a.experiment_id = x.experiment_id and a.lead_id = x.lead_id
        join experiments.experiments e on e.id = x.experiment_id where e.key = 'greeting-tone'`
    expect(exposure!.variationKey).toBe(exposure!.assigned)
    expect(text(greeting!).length > 'Hi Ana! 👋 Welcome to Bright Smile Dental.'.length).toBe(exposure!.variationKey === 'full')
    expect(services!.body.interactive).toMatchObject({ type: 'button', action: { buttons: [{ reply: { id: 'cleaning' } }, { reply: { id: 'implants' } }, { reply: { id: 'human' } }] } })

    await leadSends(f.replyTo(f.interactiveButtonReply({ from: lead, replyId: 'implants', title: 'Implants & braces' }), services!.wamid))
    const [times] = await nextReplies(1)
    expect(text(times!)).toBe('Great choice: Implants & braces. When would you prefer to come in?')
    expect(times!.body.interactive).toMatchObject({ type: 'list', action: { button: 'See times' } })

    await leadSends(f.interactiveListReply({ from: lead, replyId: 'saturday', title: 'Saturday' }))
    expect(text((await nextReplies(1))[0]!)).toMatch(/What's your email/)
    await leadSends(f.textMessage({ from: lead, body: 'ana at example' }))
    expect(text((await nextReplies(1))[0]!)).toMatch(/doesn't look like an email/)
    await leadSends(f.textMessage({ from: lead, body: 'Ana.Lima@Example.com' }))
    expect(text((await nextReplies(1))[0]!)).toBe('Thank you, Ana! 🦷 Our team will confirm your Implants & braces appointment (Saturday) here on WhatsApp shortly.')

    // Seen through the API: the lead is qualified and tagged, the conversation ended, every message delivered.
    const [conversation] = (await get(`/v1/conversations`)).data
    expect(conversation).toMatchObject({
      waId: lead, mode: 'bot', state: { status: 'ended', answers: { service: 'implants', preferred_time: 'saturday', email: 'ana.lima@example.com' } },
      lead: { status: 'qualified', email: 'ana.lima@example.com', tags: ['high_value', 'service:implants'], fields: { preferred_time: 'Saturday' } },
    })
    const deadline = Date.now() + 10_000
    let messages: { status: string; sendState: string }[] = []
    while (Date.now() < deadline) {
      messages = (await get(`/v1/messages?leadId=${conversation.leadId}`)).data
      if (messages.length === 6 && messages.every((m) => m.status === 'read')) break
      await sleep(50)
    }
    expect(messages.map((m) => [m.sendState, m.status])).toEqual(Array(6).fill(['accepted', 'read']))
    const one = await get(`/v1/messages/${(messages[0] as unknown as { id: string }).id}`)
    expect(one.statusHistory.map((s: { status: string }) => s.status)).toEqual(['sent', 'delivered', 'read'])
  })

  it('refuses free text once the window has closed, and sends the approved template instead', async () => {
    const [conversation] = (await get('/v1/conversations')).data
    await db.current.owner`update whatsapp.service_windows set last_inbound_at = now() - interval '25 hours' where wa_id = ${lead}`
    const refused = await api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(DEMO_ADMIN_KEY), payload: { type: 'text', leadId: conversation.leadId, text: 'Are you still coming?' } })
    expect(refused.statusCode).toBe(422)
    expect(refused.json().error.message).toMatch(/window .* closed/)
    const template = await api.inject({
      method: 'POST', url: '/v1/messages', headers: bearer(DEMO_ADMIN_KEY),
      payload: { type: 'template', leadId: conversation.leadId, template: { name: 'appointment_reminder', language: 'en_US', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: 'Saturday 9:00' }] }] } },
    })
    expect(template.statusCode).toBe(202)
    const [sent] = await nextReplies(1)
    expect(sent).toMatchObject({ type: 'template', body: { template: { name: 'appointment_reminder' } } })
  })
})
