import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { startWorker, type WorkerHandle } from '../../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, OPERATOR_KEY, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { PLATFORM_APP_SECRET } from '../../test/factories/whatsapp.js'
import { count } from '../../test/whatsapp.js'
import { signMetaBody } from '../whatsapp/signature.js'
import * as f from '../whatsapp/webhook/fixtures.js'

const TOKEN = 'EAAGood-system-user-token-0123456789'
const PHONE_NUMBER_ID = '109000000000001'
const WABA_ID = '209000000000001'
const DISPLAY = '+351 910 000 001'

/**
 * A business onboards itself, end to end: the public routes of the webhooks service, Meta's Graph API on the
 * emulator (the token and ids checked, the app subscribed), a signed inbound WhatsApp message completing
 * test_message through the real webhook path and worker, the bot it published answering, and go_live's key working.
 */
describe('onboarding a business from sign-up to a live bot', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let wa: WhatsAppEmulator
  let worker: WorkerHandle
  let base: string
  let token: string

  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    base = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    wa = await startWhatsAppEmulator({
      webhookUrl: `${base}/webhooks/whatsapp`, appSecret: PLATFORM_APP_SECRET, accessTokens: [TOKEN], statusDelayMs: 10,
      phoneNumbers: [{ id: PHONE_NUMBER_ID, wabaId: WABA_ID, displayPhoneNumber: DISPLAY, verifiedName: 'Clínica Sorriso', messagingLimit: 'TIER_2K' }],
    })
    await webhooks.close()
    // The same service, now knowing where the Graph API is.
    webhooks = await buildTestWebhooks(db.current, { GRAPH_API_BASE_URL: wa.url })
    base = await webhooks.listen({ host: '127.0.0.1', port: Number(new URL(base).port) })
    worker = await startWorker({ config: testConfig({ GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '200' }), log: testLogger(), connectionString: db.current.runtimeUrl })
    api = await buildTestApi(db.current)
  })
  afterAll(async () => {
    await worker?.stop()
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    return { status: res.status, json: (await res.json()) as any }
  }
  const save = (step: string, fields: Record<string, unknown>, t = token) => call('PATCH', `/onboarding/sessions/${t}/steps/${step}`, { fields })

  it('starts a session with a resume link whose token is stored only as a hash', async () => {
    const res = await call('POST', '/onboarding/sessions', { businessName: 'Clínica Sorriso' })
    expect(res.status).toBe(201)
    token = res.json.link.token
    expect(token).toMatch(/^obt_[A-Za-z0-9_-]{43}$/)
    expect(res.json.link.resumeUrl).toBe(`http://127.0.0.1:3001/onboarding#token=${token}`)
    expect(res.json.session).toMatchObject({ status: 'in_progress', currentStep: 'business_info', tenantId: null })
    expect(await count(db.current, 'onboarding.sessions', `token_hash = sha256('${token}'::bytea)`)).toBe(1)
    const [hit] = await db.current.owner.unsafe(`select count(*)::int as n from onboarding.sessions where fields::text like '%${token}%' or token_hash::text like '%${token}%'`)
    expect(hit!.n).toBe(0)
  })

  it('saves fields partially, weights progress by required fields, and refuses a step out of order naming the one first', async () => {
    const partial = await save('business_info', { country: 'PT', timezone: 'Europe/Lisbon' })
    expect(partial.status).toBe(200)
    const step = partial.json.session.steps[0]
    expect(step.missing.sort()).toEqual(['contactEmail', 'contactPhone', 'industry'])
    // 3 of 6 business_info fields, out of 6 + 4 + 2 + 1 + 1 = 14 required-field units.
    expect(partial.json.session.progress).toBeCloseTo((3 / 14) * 100, 1)
    const early = await save('bot_setup', { starterFlow: 'qualification' })
    expect(early.status).toBe(409)
    expect(early.json.error.message).toMatch(/business_info/)
    const bad = await save('business_info', { contactEmail: 'not-an-email', timezone: 'Mars/Olympus' })
    expect(bad.status).toBe(400)
    expect(bad.json.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['fields.contactEmail', 'fields.timezone'])
    // The bad save changed nothing.
    expect((await call('GET', `/onboarding/sessions/${token}`)).json.steps[0].fields.timezone).toBe('Europe/Lisbon')
  })

  it('creates the tenant, pending, when business_info is complete', async () => {
    const res = await save('business_info', { industry: 'dental', contactEmail: 'owner@sorriso.example', contactPhone: '+351910000009' })
    expect(res.status).toBe(200)
    expect(res.json.session.currentStep).toBe('whatsapp_connect')
    const tenantId = res.json.session.tenantId
    const [tenant] = await db.current.owner`select status, name, timezone, default_country from core.tenants where id = ${tenantId}`
    expect(tenant).toMatchObject({ status: 'pending', name: 'Clínica Sorriso', timezone: 'Europe/Lisbon', defaultCountry: 'PT' })
  })

  it("turns Meta's refusals into field errors (422 with Meta's code) and registers nothing", async () => {
    const wrongToken = await save('whatsapp_connect', { phoneNumberId: PHONE_NUMBER_ID, wabaId: WABA_ID, accessToken: 'EAAExpired-token-0000000000000', appMode: 'platform' })
    expect(wrongToken.status).toBe(422)
    expect(wrongToken.json.error.details[0]).toMatchObject({ path: 'fields.accessToken', metaCode: 190 })
    const unknownNumber = await save('whatsapp_connect', { phoneNumberId: '109999999999999', accessToken: TOKEN })
    expect(unknownNumber.status).toBe(422)
    expect(unknownNumber.json.error.details[0]).toMatchObject({ path: 'fields.phoneNumberId', metaCode: 100 })
    expect(await count(db.current, 'whatsapp.phone_numbers')).toBe(0)
    expect(wa.subscriptions).toEqual([])
  })

  it('checks the token with Meta, subscribes the app and registers the number when whatsapp_connect is complete', async () => {
    const res = await save('whatsapp_connect', { phoneNumberId: PHONE_NUMBER_ID })
    expect(res.status).toBe(200)
    expect(res.json.session.currentStep).toBe('bot_setup')
    expect(wa.subscriptions).toEqual([WABA_ID])
    const [number] = await db.current.owner`select display_phone_number, verified_name, app_mode, messaging_limit from whatsapp.phone_numbers where phone_number_id = ${PHONE_NUMBER_ID}`
    // The messaging limit tier is asked from Meta with the profile, not left to a later webhook.
    expect(number).toMatchObject({ displayPhoneNumber: DISPLAY, verifiedName: 'Clínica Sorriso', appMode: 'platform', messagingLimit: 'TIER_2K' })
    // The token is sealed and never shown back.
    expect(JSON.stringify(res.json)).not.toContain(TOKEN)
  })

  it('publishes the starter flow with the business name and services', async () => {
    const res = await save('bot_setup', { starterFlow: 'qualification', services: ['Implants', 'Whitening'] })
    expect(res.status).toBe(200)
    expect(res.json.session.currentStep).toBe('test_message')
    expect(await count(db.current, 'conversations.flows', `published_version is not null and name like 'Clínica Sorriso%'`)).toBe(1)
    expect((await save('test_message', {})).status).toBe(409)
  })

  it('completes test_message when the first WhatsApp message arrives, and the bot answers it', async () => {
    const raw = JSON.stringify(f.delivery({ wabaId: WABA_ID, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '351910000001', messages: [f.textMessage({ from: '351910000009', body: 'Olá, é um teste' })], contacts: [{ waId: '351910000009', name: 'Owner' }] }))
    const posted = await fetch(`${base}/webhooks/whatsapp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) }, body: raw })
    expect(posted.status).toBe(200)
    const greeting = await wa.waitForSent((m) => m.to === '351910000009', 10_000)
    expect(JSON.stringify(greeting.body)).toContain('Clínica Sorriso')
    const deadline = Date.now() + 5_000
    let view = (await call('GET', `/onboarding/sessions/${token}`)).json
    while (view.currentStep !== 'go_live' && Date.now() < deadline) {
      await sleep(50)
      view = (await call('GET', `/onboarding/sessions/${token}`)).json
    }
    expect(view.currentStep).toBe('go_live')
    expect(view.steps.find((s: { name: string }) => s.name === 'test_message').status).toBe('completed')
  })

  it('goes live: the tenant is active and its first admin key is shown once and works', async () => {
    const res = await save('go_live', { confirm: true })
    expect(res.status).toBe(200)
    expect(res.json.session).toMatchObject({ status: 'completed', currentStep: null, progress: 100 })
    const key = res.json.apiKey.key
    const me = await api.inject({ method: 'GET', url: '/v1/me', headers: bearer(key) })
    expect(me.statusCode).toBe(200)
    const again = await call('GET', `/onboarding/sessions/${token}`)
    expect(JSON.stringify(again.json)).not.toContain(key)
    expect((await save('go_live', { confirm: true })).status).toBe(409)
    // Every step activity is an event of the tenant, once; the ones from before the tenant existed included.
    const tenantId = res.json.session.tenantId
    const events = await db.current.owner<{ name: string; n: number }[]>`
      select name, count(*)::int as n from analytics.events where tenant_id = ${tenantId} and source = 'onboarding' group by name`
    const byName = Object.fromEntries(events.map((e) => [e.name, e.n]))
    expect(byName).toMatchObject({ 'onboarding.started': 1, 'onboarding.step_completed': 5, 'onboarding.completed': 1 })
    expect(byName['onboarding.step_invalid']).toBeGreaterThanOrEqual(3)
    const activities = (await db.current.owner<{ n: number }[]>`select count(*)::int as n from onboarding.step_activities where tenant_id = ${tenantId}`)[0]!.n
    expect(events.reduce((sum, e) => sum + e.n, 0)).toBe(activities)
  })

  it('answers the same 404 for an unknown, malformed or rotated token', async () => {
    const started = await call('POST', '/onboarding/sessions', {})
    const first = started.json.link.token
    const rotated = await call('POST', `/onboarding/sessions/${first}/link`)
    expect(rotated.status).toBe(201)
    const answers = await Promise.all([first, 'obt_' + 'x'.repeat(43), 'nope'].map((t) => call('GET', `/onboarding/sessions/${t}`)))
    expect(answers.map((a) => a.status)).toEqual([404, 404, 404])
    expect(new Set(answers.map((a) => a.json.error.message)).size).toBe(1)
    expect((await call('GET', `/onboarding/sessions/${rotated.json.token}`)).status).toBe(200)
  })

  it('refuses a filled honeypot, and a phone number id another tenant holds (409) without half-creating anything', async () => {
    expect((await call('POST', '/onboarding/sessions', { website: 'http://spam.example' })).status).toBe(400)
    const other = (await call('POST', '/onboarding/sessions', {})).json.link.token
    await save('business_info', { businessName: 'Other Clinic', country: 'PT', timezone: 'UTC', industry: 'dental', contactEmail: 'b@example.com', contactPhone: '+351910000010' }, other)
    const taken = await save('whatsapp_connect', { phoneNumberId: PHONE_NUMBER_ID, wabaId: WABA_ID, accessToken: TOKEN, appMode: 'platform' }, other)
    expect(taken.status).toBe(409)
    expect(await count(db.current, 'whatsapp.phone_numbers')).toBe(1)
    expect((await call('GET', `/onboarding/sessions/${other}`)).json.currentStep).toBe('whatsapp_connect')
  })

  it('reports the funnel to operators: started, reached and completed per step', async () => {
    const res = await api.inject({ method: 'GET', url: '/v1/ops/onboarding/funnel', headers: bearer(OPERATOR_KEY) })
    expect(res.statusCode).toBe(200)
    const funnel = res.json()
    expect(funnel).toMatchObject({ started: 3, completed: 1, inProgress: 2, abandoned: 0 })
    const byStep = Object.fromEntries(funnel.steps.map((s: { step: string }) => [s.step, s]))
    expect(byStep.business_info).toMatchObject({ reached: 3, completed: 2, dropOff: 1 })
    expect(byStep.whatsapp_connect).toMatchObject({ reached: 2, completed: 1 })
    expect(byStep.go_live).toMatchObject({ reached: 1, completed: 1 })
    expect(byStep.bot_setup.medianSeconds).toBeGreaterThanOrEqual(0)
    expect((await api.inject({ method: 'GET', url: '/v1/ops/onboarding/funnel', headers: bearer('wak_xxxxxxxx_' + 'y'.repeat(43)) })).statusCode).toBe(401)
  })
})
