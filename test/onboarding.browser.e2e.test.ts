import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'
import type { App } from '../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { startWorker, type WorkerHandle } from '../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig, testLogger } from './apps.js'
import { useTestDatabase } from './db.js'
import { PLATFORM_APP_SECRET } from './factories/whatsapp.js'
import { ARTIFACTS, describeInChromium, openChromium, type ChromiumSession } from './browser.js'

const TOKEN = 'EAABrowser-system-user-token-000000001'
const PHONE_NUMBER_ID = '119000000000001'
const WABA_ID = '219000000000001'
const OWNER_PHONE = '351920000001'

describeInChromium('the onboarding page in Chromium', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let wa: WhatsAppEmulator
  let worker: WorkerHandle
  let base: string
  let browser: ChromiumSession
  let page: Page
  const problems: string[] = []

  beforeAll(async () => {
    wa = await startWhatsAppEmulator({
      appSecret: PLATFORM_APP_SECRET, accessTokens: [TOKEN], statusDelayMs: 10,
      phoneNumbers: [{ id: PHONE_NUMBER_ID, wabaId: WABA_ID, displayPhoneNumber: '+351 920 000 000', verifiedName: 'Padaria Central' }],
    })
    webhooks = await buildTestWebhooks(db.current, { GRAPH_API_BASE_URL: wa.url })
    base = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    worker = await startWorker({ config: testConfig({ GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '200' }), log: testLogger(), connectionString: db.current.runtimeUrl })
    api = await buildTestApi(db.current)
    browser = await openChromium({ profilePrefix: 'onboarding-chromium-', viewport: { width: 1280, height: 1000 } })
    page = browser.page
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
    // 400/422 answers to the wrong inputs typed on purpose are reported by the browser; other errors are problems.
    page.on('console', (m) => { if (m.type() === 'error' && !/status of (400|422)/.test(m.text())) problems.push(`console: ${m.text()}`) })
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await worker?.stop()
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  const submit = async (formId: string) => page.locator(`#${formId} button[type=submit]`).click()
  const currentStep = () => page.locator('#steps li.current').getAttribute('data-step')

  it('takes a business from sign-up to a live bot, with inline errors, a resume link and the key shown once', async () => {
    await page.goto(`${base}/onboarding`)
    await page.fill('#start-form [name=businessName]', 'Padaria Central')
    await page.fill('#start-form [name=contactEmail]', 'dona@padaria.example')
    await page.click('#start-form button[type=submit]')
    await page.waitForSelector('#form-business_info')

    // An invalid field is reported beside it; nothing moves on.
    await page.selectOption('#form-business_info [name=industry]', 'retail')
    await page.fill('#form-business_info [name=country]', 'PT')
    await page.fill('#form-business_info [name=timezone]', 'Europe/Lisbon')
    await page.fill('#form-business_info [name=contactEmail]', 'not an email')
    await page.fill('#form-business_info [name=contactPhone]', `+${OWNER_PHONE}`)
    await submit('form-business_info')
    await expect.poll(() => page.locator('[data-error=contactEmail]').textContent(), { timeout: 10_000 }).not.toBe('')
    expect(await currentStep()).toBe('business_info')
    await page.fill('#form-business_info [name=contactEmail]', 'dona@padaria.example')
    await submit('form-business_info')
    await page.waitForSelector('#form-whatsapp_connect')
    expect(Number(await page.locator('#progress-text').getAttribute('data-value'))).toBeCloseTo((6 / 14) * 100, 1)

    // Resume on another device: a fresh context opening the copied link lands on the same step.
    const link = await page.inputValue('#resume-link')
    expect(link).toMatch(/\/onboarding#token=obt_/)
    const other = await browser.context.browser()?.newContext() ?? null
    const second = other ? await other.newPage() : await browser.context.newPage()
    await second.goto(link)
    await second.waitForSelector('#form-whatsapp_connect')
    expect(second.url()).not.toContain('token=')
    await second.close()
    await other?.close()

    // Meta refuses the token: the explanation appears under the token field.
    await page.fill('#form-whatsapp_connect [name=phoneNumberId]', PHONE_NUMBER_ID)
    await page.fill('#form-whatsapp_connect [name=wabaId]', WABA_ID)
    await page.fill('#form-whatsapp_connect [name=accessToken]', 'EAAWrong-token-00000000000000000')
    await submit('form-whatsapp_connect')
    await expect.poll(() => page.locator('[data-error=accessToken]').textContent(), { timeout: 10_000 }).toMatch(/code 190/)
    await page.fill('#form-whatsapp_connect [name=accessToken]', TOKEN)
    await submit('form-whatsapp_connect')
    await page.waitForSelector('#form-bot_setup')
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: path.join(ARTIFACTS, 'onboarding-steps.png'), fullPage: true })

    await page.fill('#form-bot_setup [name=services]', 'Bread orders\nCakes\nCatering')
    await submit('form-bot_setup')
    await page.waitForSelector('.waiting')

    // The business sends its test message: the page moves on by itself, and the new bot answers.
    const raw = JSON.stringify(f.delivery({ wabaId: WABA_ID, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '351920000000', messages: [f.textMessage({ from: OWNER_PHONE, body: 'teste' })], contacts: [{ waId: OWNER_PHONE, name: 'Dona' }] }))
    const posted = await fetch(`${base}/webhooks/whatsapp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) }, body: raw })
    expect(posted.status).toBe(200)
    await page.waitForSelector('#form-go_live', { timeout: 15_000 })
    const greeting = await wa.waitForSent((m) => m.to === OWNER_PHONE, 10_000)
    expect(JSON.stringify(greeting.body)).toContain('Padaria Central')

    await page.check('#form-go_live [name=confirm]')
    await submit('form-go_live')
    await page.waitForSelector('#done:not([hidden])')
    const key = await page.inputValue('#api-key')
    expect(key).toMatch(/^wak_/)
    expect((await api.inject({ method: 'GET', url: '/v1/me', headers: bearer(key) })).statusCode).toBe(200)
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: path.join(ARTIFACTS, 'onboarding.png'), fullPage: true })
    // Reloading never shows the key again.
    await page.reload()
    expect(await page.locator('body').textContent()).not.toContain(key)
    expect(problems).toEqual([])
  }, 90_000)
})
