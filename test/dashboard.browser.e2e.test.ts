import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runSeeds } from '../db/seed.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'
import type { App } from '../lib/http/create-server.js'
import { readMigrationFiles } from '../lib/migrate.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { buildApiApp } from '../services/api/app.js'
import { buildWebhooksApp } from '../services/webhooks/app.js'
import { startWorker, type WorkerHandle } from '../services/workers/worker.js'
import { testConfig, testLogger } from './apps.js'
import { useTestDatabase } from './db.js'
import { PLATFORM_APP_SECRET } from './factories/whatsapp.js'
import { ARTIFACTS, describeInChromium, openChromium, type ChromiumSession } from './browser.js'

const DEMO_ADMIN_KEY = 'wak_demo0000_local-development-only-demo-admin-key-00001'
const WABA_ID = '100000000000001'
const PHONE_NUMBER_ID = '100000000000002'

describeInChromium('the admin dashboard in Chromium', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let worker: WorkerHandle | undefined
  let wa: WhatsAppEmulator
  let apiUrl: string
  let webhooksUrl: string
  let browser: ChromiumSession
  let page: Page
  const problems: string[] = []

  /** The API's own answer to a query, as a client other than the page would ask it. */
  const ask = async (body: Record<string, unknown>) => {
    const res = await fetch(`${apiUrl}/v1/analytics/query`, {
      method: 'POST', headers: { authorization: `Bearer ${DEMO_ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    })
    expect(res.status, JSON.stringify(body)).toBe(200)
    return (await res.json()) as { results: { dimensions: (string | null)[]; metrics: (number | null)[] }[]; meta: Record<string, unknown> }
  }
  const valueOf = (selector: string) => page.locator(selector).first().getAttribute('data-value').then((v) => (v === '' || v === null ? null : Number(v)))

  beforeAll(async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const migrations = await readMigrationFiles()
    webhooks = await buildWebhooksApp({ config: testConfig(), sql: db.current.sql, log: testLogger(), migrations })
    webhooksUrl = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    wa = await startWhatsAppEmulator({ webhookUrl: `${webhooksUrl}/webhooks/whatsapp`, appSecret: PLATFORM_APP_SECRET, wabaId: WABA_ID, displayPhoneNumber: '15550001234', statusDelayMs: 10 })
    const config = testConfig({ GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '100' })
    worker = await startWorker({ config, metricsSql: db.current.sql, log: testLogger(), connectionString: db.current.runtimeUrl })
    api = await buildApiApp({ config, sql: db.current.sql, log: testLogger(), migrations })
    apiUrl = await api.listen({ host: '127.0.0.1', port: 0 })

    browser = await openChromium({ profilePrefix: 'dashboard-chromium-', viewport: { width: 1440, height: 1000 } })
    page = browser.page
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
    // The wrong key tried on purpose below is a 401 the browser reports; anything else is a problem.
    page.on('console', (m) => { if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`) })
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await worker?.stop()
    await wa?.stop()
    await api?.close()
    await webhooks?.close()
  })

  it('is served with a strict Content-Security-Policy, no inline script, and asks for a key', async () => {
    const res = await page.goto(`${apiUrl}/dashboard`)
    expect(res?.status()).toBe(200)
    const csp = res?.headers()['content-security-policy'] ?? ''
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("default-src 'none'")
    expect(csp).not.toContain('unsafe-inline')
    expect(await page.locator('script:not([src])').count()).toBe(0)
    await expect.poll(() => page.locator('#signin').isVisible(), { timeout: 10_000 }).toBe(true)
    expect(await page.locator('#app').isVisible()).toBe(false)
  })

  it('refuses a wrong key and keeps a right one in session storage, never in the URL', async () => {
    await page.fill('#api-key', 'wak_nope0000_this-is-not-a-key-of-anybody-at-all-0000')
    await page.click('#signin-submit')
    await expect.poll(() => page.locator('#signin-error').isVisible(), { timeout: 10_000 }).toBe(true)
    await page.fill('#api-key', DEMO_ADMIN_KEY)
    await page.click('#signin-submit')
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 })
    expect(page.url()).toBe(`${apiUrl}/dashboard`)
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('dashboard.apiKey'))).toBe(DEMO_ADMIN_KEY)
    expect(await page.evaluate(() => (globalThis as any).localStorage.length)).toBe(0)
    expect(await page.locator('#tenant-name').textContent()).toBe('Bright Smile Dental (demo)')
  })

  it('shows the same figures as the query API for the last 30 days', async () => {
    const kpis = await ask({ metrics: ['visitors', 'form_conversion_rate', 'delivery_rate', 'read_rate', 'median_first_response_seconds'], dateRange: '30d' })
    const [visitors, formRate, deliveryRate, readRate, firstResponse] = kpis.results[0]!.metrics
    const leads = (await ask({ metrics: ['events'], dateRange: '30d', filters: [['is', 'event:name', ['lead.created']]] })).results[0]!.metrics[0]
    // The seed's month is there: the comparison below is between real numbers, not zeros.
    expect(leads).toBeGreaterThan(300)
    expect(visitors).toBeGreaterThan(1000)
    expect(await valueOf('[data-kpi="leads"] [data-value]')).toBe(leads)
    expect(await valueOf('[data-kpi="visitors"] [data-value]')).toBe(visitors)
    expect(await valueOf('[data-kpi="form_conversion_rate"] [data-value]')).toBe(formRate)
    expect(await valueOf('[data-kpi="delivery_rate"] [data-value]')).toBe(deliveryRate)
    expect(await valueOf('[data-kpi="read_rate"] [data-value]')).toBe(readRate)
    expect(await valueOf('[data-kpi="median_first_response_seconds"] [data-value]')).toBe(firstResponse)
    // What a person reads is the number, formatted.
    expect((await page.locator('[data-kpi="leads"] [data-value]').textContent())?.replace(/,/g, '')).toBe(String(leads))

    // Sources and channels: visitors by their page views', new leads by their lead.created event's.
    for (const [list, dimension] of [['#sources', 'visit:source'], ['#channels', 'visit:channel']] as const) {
      const visitorsBy = await ask({ metrics: ['visitors'], dateRange: '30d', dimensions: [dimension], filters: [['is', 'event:name', ['pageview']]], orderBy: [['visitors', 'desc']], limit: 8 })
      const leadsBy = await ask({ metrics: ['events'], dateRange: '30d', dimensions: [dimension], filters: [['is', 'event:name', ['lead.created']]] })
      expect(visitorsBy.results.length, dimension).toBeGreaterThan(3)
      const expected = visitorsBy.results.map((r) => [
        r.dimensions[0] ?? '', r.metrics[0], leadsBy.results.find((l) => l.dimensions[0] === r.dimensions[0])?.metrics[0] ?? 0,
      ])
      const shown = await page.$$eval(`${list} li[data-key]`, (lis: any[]) => lis.map((li) => [
        li.dataset.key, ...[...li.querySelectorAll('[data-value]')].map((c: any) => Number(c.dataset.value)),
      ]))
      expect(shown, dimension).toEqual(expected)
    }

    const funnelRes = await fetch(`${apiUrl}/v1/analytics/funnels?steps=lead.created,lead.qualified,lead.converted&dateRange=30d&window=30d`, { headers: { authorization: `Bearer ${DEMO_ADMIN_KEY}` } })
    expect(funnelRes.status).toBe(200)
    const funnel = (await funnelRes.json()) as { steps: { name: string; subjects: number }[] }
    expect(funnel.steps[0]!.subjects).toBeGreaterThan(funnel.steps[2]!.subjects)
    const shownFunnel = await page.$$eval('#funnel li', (lis: any[]) => lis.map((li) => [li.dataset.step, Number(li.querySelector('[data-value]').dataset.value)]))
    expect(shownFunnel).toEqual(funnel.steps.map((s) => [s.name, s.subjects]))

    const forms = await ask({ metrics: ['events'], dateRange: '30d', dimensions: ['event:form', 'event:name'], filters: [['is', 'event:name', ['form.viewed', 'form.submitted']]] })
    const rates = await ask({ metrics: ['form_conversion_rate'], dateRange: '30d', dimensions: ['event:form'] })
    const formId = '00000000-0000-4000-8000-0000000000f1'
    const count = (name: string) => forms.results.find((r) => r.dimensions[0] === formId && r.dimensions[1] === name)?.metrics[0]
    const row = `#forms tr[data-form="${formId}"]`
    expect(await valueOf(`${row} [data-metric="views"]`)).toBe(count('form.viewed'))
    expect(await valueOf(`${row} [data-metric="submissions"]`)).toBe(count('form.submitted'))
    expect(await valueOf(`${row} [data-metric="form_conversion_rate"]`)).toBe(rates.results.find((r) => r.dimensions[0] === formId)?.metrics[0])
    expect(await page.locator(`${row} td`).first().textContent()).toBe('Agende sua avaliação (demo)')

    const bot = (await ask({ metrics: ['bot_completion_rate', 'bot_handover_rate'], dateRange: '30d' })).results[0]!.metrics
    expect(bot[0]).toBeGreaterThan(0)
    expect(await valueOf('#bot-stats [data-metric="bot_completion_rate"]')).toBe(bot[0])
    expect(await valueOf('#bot-stats [data-metric="bot_handover_rate"]')).toBe(bot[1])

    const delivery = await ask({ metrics: ['events'], dateRange: '30d', dimensions: ['event:name'], filters: [['is', 'event:name', ['whatsapp.message_sent', 'whatsapp.message_delivered', 'whatsapp.message_read', 'whatsapp.message_failed']]] })
    for (const r of delivery.results) expect(await valueOf(`#delivery-stats [data-event="${r.dimensions[0]}"]`)).toBe(r.metrics[0])
  })

  it('draws its charts', async () => {
    // uPlot draws on canvas: count the pixels that are not blank, in the time series and the delivery chart.
    for (const chart of ['#timeseries', '#delivery']) {
      const painted = await page.$eval(`${chart} canvas`, (canvas: any) => {
        const data: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
        let n = 0
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
        return n
      })
      expect(painted, chart).toBeGreaterThan(2000)
    }
    expect(await page.getAttribute('#timeseries', 'data-points')).toBe('30')
    expect(await page.locator('#sources .bar').count()).toBeGreaterThan(3)
  })

  it('answers a new date range with the API\'s figures for it', async () => {
    await page.click('[data-range="7d"]')
    await page.waitForSelector('[data-range="7d"][aria-pressed="true"]')
    await page.waitForSelector('body[data-state="ready"]')
    const leads = (await ask({ metrics: ['events'], dateRange: '7d', filters: [['is', 'event:name', ['lead.created']]] })).results[0]!.metrics[0]
    expect(leads).toBeGreaterThan(0)
    expect(await valueOf('[data-kpi="leads"] [data-value]')).toBe(leads)
    expect(await page.getAttribute('#timeseries', 'data-points')).toBe('7')
    await page.click('[data-range="30d"]')
    await page.waitForSelector('[data-range="30d"][aria-pressed="true"]')
    await page.waitForSelector('body[data-state="ready"]')
  })

  it('shows a WhatsApp message posted to the webhook in the live feed within a second', async () => {
    await page.waitForSelector('body[data-live="open"]', { timeout: 10_000 })
    const waId = '5511977776666'
    const raw = JSON.stringify(f.delivery({
      wabaId: WABA_ID, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '15550001234',
      messages: [f.textMessage({ from: waId, body: 'Oi! Queria marcar uma avaliação' })], contacts: [{ waId, name: 'Live Test' }],
    }))
    const before = await page.locator('#live li[data-name="whatsapp.message_received"]').count()
    const posted = Date.now()
    const res = await fetch(`${webhooksUrl}/webhooks/whatsapp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) }, body: raw })
    expect(res.status).toBe(200)
    await page.waitForFunction((n) => (globalThis as any).document.querySelectorAll('#live li[data-name="whatsapp.message_received"]').length > n, before, { timeout: 1000, polling: 'raf' })
    const elapsed = Date.now() - posted
    expect(elapsed, `the message reached the feed after ${elapsed} ms`).toBeLessThan(1000)
    await mkdir(ARTIFACTS, { recursive: true })
    await writeFile(path.join(ARTIFACTS, 'dashboard-live.json'), JSON.stringify({ webhookToFeedMs: elapsed }) + '\n')
    expect(await page.locator('#live li').first().textContent()).toContain('WhatsApp message received')

    // The page as a person sees it, with the live event in its feed.
    await page.waitForTimeout(400)
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true })
  })

  it('ran without a script error or a Content-Security-Policy violation', () => {
    expect(problems).toEqual([])
  })

  it('forgets the key on sign-out', async () => {
    await page.click('#signout')
    await expect.poll(() => page.locator('#signin').isVisible(), { timeout: 10_000 }).toBe(true)
    expect(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('dashboard.apiKey'))).toBeNull()
  })
})
