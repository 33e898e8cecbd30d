import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { withTenant } from '../lib/db.js'
import type { App } from '../lib/http/create-server.js'
import { startAiEmulator, type AiEmulator } from '../ops/emulators/ai-provider.js'
import { HEALTH_DEFINITION } from '../domains/assessments/sample-definitions.js'
import { startWorker, type WorkerHandle } from '../services/workers/worker.js'
import { buildTestWebhooks, testConfig, testLogger } from './apps.js'
import { ARTIFACTS, describeInChromium, openChromium, type ChromiumSession } from './browser.js'
import { useTestDatabase } from './db.js'
import { makePartner, makePartnerLink } from './factories/assessment-partners-rows.js'
import { HEALTHY_ANSWERS, makeAssessment } from './factories/assessments-rows.js'
import { makeTenant } from './factories/tenants.js'
import { freePort } from './free-port.js'

const LINK_CODE = 'ana-page'
const AI_KEY = 'sk-assessment-page'
// A phone: the page is laid out for one column first.
const PHONE = { width: 390, height: 844 }
// What a person waits for (a saved answer, the next question): generous, for a machine shared by many test runs.
const WAIT = { timeout: 20_000, interval: 100 }
// Headless Chromium says HeadlessChrome, which the link's bot filter rightly refuses to attribute: a person's phone.
const PHONE_BROWSER = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36'

type Option = { id: string; label: string }
const QUESTIONS = new Map(HEALTH_DEFINITION.questions.map((q) => [q.id, q]))
const labelOf = (questionId: string, optionId: string) => QUESTIONS.get(questionId)!.options!.find((o: Option) => o.id === optionId)!.label

/**
 * Issue 14's web questionnaire as a person meets it: a partner's link opened on a phone, every question answered by
 * clicking and typing (one by keyboard alone), a reload halfway that resumes the same session at the same question,
 * the result and its AI analysis (the emulator, through the worker's job) shown as the API reports them, and the
 * click and the session attributed to the link.
 */
describeInChromium('the assessment page in Chromium', () => {
  const db = useTestDatabase()
  let webhooks: App
  let worker: WorkerHandle
  let ai: AiEmulator
  let base: string
  let browser: ChromiumSession
  let page: Page
  let assessment: { id: string; publicKey: string }
  let draftKey: string
  let tenantId: string
  let partnerId: string
  let linkId: string
  const problems: string[] = []

  beforeAll(async () => {
    const tenant = await makeTenant(db.current.sql)
    tenantId = tenant.id
    assessment = await makeAssessment(db.current.sql, tenant, { key: 'health_check', name: 'Health check' })
    draftKey = (await makeAssessment(db.current.sql, tenant, { key: 'not_yet', draft: true })).publicKey
    ;({ partnerId, linkId } = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const partner = await makePartner(tx, tenant.id, { code: 'ana' })
      const link = await makePartnerLink(tx, tenant.id, partner.id, assessment.id, { code: LINK_CODE })
      return { partnerId: partner.id, linkId: link.id }
    }))
    ai = await startAiEmulator({ apiKeys: [AI_KEY] })
    // The redirect of /l/<code> must come back to this server: its public URL is known before it listens.
    const port = await freePort()
    base = `http://127.0.0.1:${port}`
    webhooks = await buildTestWebhooks(db.current, { ASSESSMENTS_PUBLIC_URL: base })
    await webhooks.listen({ host: '127.0.0.1', port })
    worker = await startWorker({
      config: testConfig({ AI_BASE_URL: ai.baseUrl, AI_API_KEY: AI_KEY, WORKER_POLL_INTERVAL_MS: '200' }),
      log: testLogger(), connectionString: db.current.runtimeUrl,
    })
    browser = await openChromium({ profilePrefix: 'assessment-chromium-', viewport: PHONE, userAgent: PHONE_BROWSER })
    page = browser.page
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`))
    // The wrong answers typed on purpose are 400s the browser reports, the unpublished assessment's start a 404;
    // anything else (a CSP or Trusted Types violation, a script error) is a problem.
    page.on('console', (m) => { if (m.type() === 'error' && !/status of (400|404)/.test(m.text())) problems.push(`console: ${m.text()}`) })
  }, 90_000)
  afterAll(async () => {
    await browser?.close()
    await worker?.stop()
    await ai?.stop()
    await webhooks?.close()
  })

  const tokenInPage = () => page.evaluate((key) => (globalThis as any).sessionStorage.getItem(`assessment.token.${key}`) as string | null, assessment.publicKey)
  /** The API's own answer for the session, as a client other than the page would ask it. */
  const apiState = async (token: string) => {
    const res = await fetch(`${base}/assessments/sessions/${token}`)
    expect(res.status).toBe(200)
    return (await res.json()) as { sessionId: string; progress: number; answered: number; total: number; status: string; question: { id: string } | null; result: Record<string, any> | null }
  }
  const shownQuestion = () => page.locator('#question-body').getAttribute('data-question')
  const focused = () => page.evaluate(() => {
    const active = (globalThis as any).document.activeElement
    return { id: (active?.id ?? null) as string | null, text: (active?.textContent?.trim() ?? '') as string }
  })
  const questionError = () => page.locator('#question-error').textContent()
  // Nothing wider than the phone: no sideways scrolling on any screen.
  const fitsThePhone = () => page.evaluate((width) => (globalThis as any).document.documentElement.scrollWidth <= width, PHONE.width)

  /** Waits until the page shows question `id` (after an answer, a back or a reload), with the focus on its heading. */
  async function expectQuestion(id: string) {
    await expect.poll(shownQuestion, WAIT).toBe(id)
    await expect.poll(focused, WAIT).toEqual({ id: 'question-title', text: expect.stringContaining(QUESTIONS.get(id)!.text) })
  }

  /** Answers the question on screen the way a person does: clicking options, typing numbers and text. */
  async function answerOnPage(id: string) {
    const q = QUESTIONS.get(id)!
    const value = HEALTHY_ANSWERS[id]
    switch (q.type) {
      case 'single_choice':
        await page.getByRole('radio', { name: labelOf(id, value as string), exact: true }).click()
        break
      case 'scale':
        await page.getByRole('radio', { name: String(value), exact: true }).click()
        break
      case 'multiple_choice':
        for (const optionId of value as string[]) await page.getByRole('checkbox', { name: labelOf(id, optionId), exact: true }).click()
        break
      case 'yes_no':
        await page.getByRole('radio', { name: value ? 'Yes' : 'No', exact: true }).click()
        break
      case 'number':
      case 'text':
        await page.getByLabel(q.text).fill('')
        await page.getByLabel(q.text).pressSequentially(String(value))
        break
    }
    await page.getByRole('button', { name: /^(Next|Finish)$/ }).click()
  }

  it('takes the health check from a partner link to the result and its analysis, resuming after a reload', { timeout: 150_000 }, async () => {
    // The partner's link: the click is recorded and the browser lands on the page with the link's code.
    const landing = await page.goto(`${base}/l/${LINK_CODE}`)
    expect(landing?.status()).toBe(200)
    expect(page.url()).toBe(`${base}/assessments/${assessment.publicKey}/start?link=${LINK_CODE}`)
    const csp = landing?.headers()['content-security-policy'] ?? ''
    expect(csp).toContain("require-trusted-types-for 'script'")
    expect(await page.locator('script:not([src])').count()).toBe(0)
    const visitor = (await browser.context.cookies(base)).find((c) => c.name === 'wa_lv')
    expect(visitor?.httpOnly).toBe(true)

    // Nothing starts until the person asks.
    await page.getByRole('heading', { name: 'Before you start' }).waitFor()
    expect(await tokenInPage()).toBeNull()
    await page.getByRole('button', { name: 'Start' }).click()
    await expectQuestion('sleep_hours')
    expect(await page.locator('h1').textContent()).toBe('Health check')
    const token = (await tokenInPage())!
    expect(token).toMatch(/^ast_/)
    const { sessionId } = await apiState(token)

    // A required question left empty: the API's message beside it, on the same question.
    await page.getByRole('button', { name: 'Next' }).click()
    await expect.poll(questionError, WAIT).toBe('This question needs an answer')
    expect(await page.locator('input[name="answer-sleep_hours"][aria-invalid=true]').count()).toBe(4)
    expect(await shownQuestion()).toBe('sleep_hours')

    const answered: string[] = []
    let state = await apiState(token)
    while (state.question) {
      const id = state.question.id
      expect(await page.locator('#progress-text').textContent()).toBe(`Question ${state.answered + 1} of ${state.total}`)
      expect(Number(await page.locator('#progress-text').getAttribute('data-value'))).toBe(state.progress)
      expect(await fitsThePhone(), id).toBe(true)

      if (id === 'smoker') {
        // By keyboard alone: from the focused heading, Tab into the choices, arrow to "No", Tab past Back to Next.
        await page.keyboard.press('Tab')
        await page.keyboard.press('ArrowDown')
        expect(await page.getByRole('radio', { name: 'No', exact: true }).isChecked()).toBe(true)
        await page.keyboard.press('Tab')
        await page.keyboard.press('Tab')
        expect((await focused()).text).toBe('Next')
        await page.keyboard.press('Enter')
      } else if (id === 'weight_kg') {
        // Out of range: the API's 400 beside the question; then a decimal comma, as a person in Europe types it.
        await page.getByLabel(QUESTIONS.get(id)!.text).pressSequentially('500')
        await page.getByRole('button', { name: 'Next' }).click()
        await expect.poll(questionError, WAIT).toBe('At most 250')
        expect(await page.getByLabel(QUESTIONS.get(id)!.text).getAttribute('aria-invalid')).toBe('true')
        await page.getByLabel(QUESTIONS.get(id)!.text).fill('')
        await page.getByLabel(QUESTIONS.get(id)!.text).pressSequentially('72,5')
        await page.getByRole('button', { name: 'Next' }).click()
      } else {
        await answerOnPage(id)
      }
      answered.push(id)
      // The page has moved on (to the next question, or to the profile) before the API is asked.
      await expect.poll(async () => (await page.locator('#question-view').isHidden()) || (await shownQuestion()) !== id, WAIT).toBe(true)
      const next = await apiState(token)
      expect(next.answered).toBeGreaterThan(state.answered)
      state = next
      if (state.question) await expectQuestion(state.question.id)

      if (id === 'exercise_days') {
        // Back: the previous question again, its answer kept; then on.
        await page.getByRole('button', { name: 'Back' }).click()
        await expectQuestion('exercise_days')
        expect(await page.getByRole('radio', { name: labelOf('exercise_days', 'd3_4'), exact: true }).isChecked()).toBe(true)
        expect(await page.locator('#progress-text').textContent()).toBe(`Changing an answer · ${state.answered} of ${state.total} done`)
        await page.getByRole('button', { name: 'Next' }).click()
        await expectQuestion('activities')
      }
      if (id === 'alcohol') {
        // Halfway, a reload: the same session at the same question, and the token still nowhere in the address.
        const before = await apiState(token)
        await mkdir(ARTIFACTS, { recursive: true })
        await page.screenshot({ path: path.join(ARTIFACTS, 'assessment-question.png'), fullPage: true })
        await page.reload()
        await expectQuestion(before.question!.id)
        expect(await tokenInPage()).toBe(token)
        expect((await apiState(token)).sessionId).toBe(sessionId)
        expect(await page.locator('#progress-text').textContent()).toBe(`Question ${before.answered + 1} of ${before.total}`)
      }
      expect(page.url()).not.toContain('ast_')
    }
    // Every question the page showed, in the definition's order (the smoker's follow-up stays hidden for a non-smoker).
    expect(answered).toEqual(HEALTH_DEFINITION.questions.map((q) => q.id).filter((id) => id !== 'cigarettes'))

    // The profile the result waits for: an empty field is caught on the page, an out-of-range one by the API.
    await expect.poll(focused, WAIT).toEqual({ id: 'profile-title', text: 'Almost done: about you' })
    await page.getByRole('button', { name: 'See my result' }).click()
    await expect.poll(() => page.locator('[data-error=age]').textContent(), WAIT).toBe('Age is needed for your result.')
    await page.getByLabel('Age').pressSequentially('12')
    await page.getByRole('button', { name: 'See my result' }).click()
    await expect.poll(() => page.locator('[data-error=age]').textContent(), WAIT).toBe('Between 16 and 110')
    await page.getByLabel('Age').fill('41')
    await page.getByRole('button', { name: 'See my result' }).click()
    await expect.poll(focused, WAIT).toEqual({ id: 'result-title', text: 'Your result' })

    // The result shown is the API's result for this session.
    const done = await apiState(token)
    expect(done.status).toBe('completed')
    const result = done.result!
    expect(Number(await page.locator('#total-score').getAttribute('data-value'))).toBe(result.totalScore)
    expect(await page.locator('#band').getAttribute('data-value')).toBe(result.band)
    expect(await page.locator('#band').textContent()).toBe(result.bandLabel)
    const categories = await page.locator('#categories li').evaluateAll((lis) => Object.fromEntries(lis.map((li: any) => [li.dataset.category, Number(li.dataset.value)])))
    expect(categories).toEqual(result.categoryScores)
    expect(await page.locator('#recommendations li').allTextContents()).toEqual(result.recommendations)
    const formulas = await page.locator('#formulas dd').evaluateAll((dds) => Object.fromEntries(dds.map((dd: any) => [dd.dataset.formula, Number(dd.dataset.value)])))
    expect(formulas).toEqual(result.formulaValues)
    expect(result.formulaValues.bmi).toBe(22.9)

    // The analysis appears by itself once the worker's job has run (the page polls with the token).
    await page.locator('#analysis[data-status=ready]').waitFor({ timeout: 90_000 })
    const analysis = (await (await fetch(`${base}/assessments/sessions/${token}/analysis`)).json()) as { status: string; analysis: { narrative: string; recommendations: string[]; source: string } }
    expect(analysis).toMatchObject({ status: 'ready', analysis: { source: 'provider' } })
    expect((await page.locator('#analysis-text p').allTextContents()).join('\n\n')).toBe(analysis.analysis.narrative.split(/\n\s*\n/).map((p: string) => p.trim()).filter(Boolean).join('\n\n'))
    expect(await page.locator('#analysis-recommendations li').allTextContents()).toEqual(analysis.analysis.recommendations)
    expect(await fitsThePhone()).toBe(true)
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: path.join(ARTIFACTS, 'assessment.png'), fullPage: true })

    // Reloading the finished session shows the same result again.
    await page.reload()
    await expect.poll(() => page.locator('#total-score').getAttribute('data-value'), WAIT).toBe(String(result.totalScore))

    // The click and the session were attributed to the partner's link.
    const [click] = await db.current.owner<{ outcome: string; visitorId: string }[]>`select outcome, visitor_id from assessments.link_clicks where link_id = ${linkId}`
    expect(click).toEqual({ outcome: 'web', visitorId: visitor!.value })
    const [session] = await db.current.owner<{ linkId: string; partnerId: string; channel: string }[]>`select link_id, partner_id, channel from assessments.sessions where id = ${sessionId}`
    expect(session).toEqual({ linkId, partnerId, channel: 'web' })
    const [attribution] = await db.current.owner<{ firstLinkId: string; lastLinkId: string; lastChannel: string }[]>`
      select first_link_id, last_link_id, last_channel from assessments.attributions where visitor_id = ${visitor!.value}`
    expect(attribution).toEqual({ firstLinkId: linkId, lastLinkId: linkId, lastChannel: 'web' })
    const events = await db.current.owner<{ name: string }[]>`
      select name from analytics.events where tenant_id = ${tenantId} and properties->>'linkId' = ${linkId} and name like 'link.%' order by name`
    expect(events.map((e) => e.name)).toEqual(['link.clicked', 'link.completed', 'link.started'])

    // "Take it again" forgets the finished session on this device and waits for a new Start.
    await page.getByRole('button', { name: 'Take it again' }).click()
    await expect.poll(focused, WAIT).toEqual({ id: 'intro-title', text: 'Before you start' })
    expect(await tokenInPage()).toBeNull()
    expect(problems).toEqual([])
  })

  it('says clearly that an unpublished assessment is not available, and keeps no session', async () => {
    await page.goto(`${base}/assessments/${draftKey}/start`)
    await page.getByRole('button', { name: 'Start' }).click()
    await expect.poll(focused, WAIT).toEqual({ id: 'gone-title', text: 'This assessment is not available' })
    expect(await page.locator('#gone').isVisible()).toBe(true)
    expect(await page.evaluate((key) => (globalThis as any).sessionStorage.getItem(`assessment.token.${key}`), draftKey)).toBeNull()
    expect(problems).toEqual([])
  })
})
