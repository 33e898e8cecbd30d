import { randomInt } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestWebhooks, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeForm } from '../../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { drainJobs } from '../../../../test/whatsapp.js'
import type { App } from '../../../../lib/http/create-server.js'
import { createSql } from '../../../../lib/db.js'
import { readMigrationFiles } from '../../../../lib/migrate.js'
import { buildWebhooksApp } from '../../app.js'
import type { FormView } from '../../../../domains/marketing/forms/views.js'

const ORIGIN = 'https://clinic.example'
const REDIS_URL = process.env.TEST_REDIS_URL ?? process.env.REDIS_URL

/** Every field type, consent required, a redirect target: the form a dental clinic would embed. */
const FULL_FORM = {
  name: 'Free check-up',
  fields: [
    { name: 'name', label: 'Name', type: 'text' as const, required: true, maxLength: 40 },
    { name: 'email', label: 'Email', type: 'email' as const },
    { name: 'phone', label: 'WhatsApp', type: 'phone' as const, required: true },
    { name: 'age', label: 'Age', type: 'number' as const, min: 18, max: 120 },
    { name: 'plan', label: 'Plan', type: 'select' as const, options: [{ value: 'basic', label: 'Basic' }, { value: 'premium', label: 'Premium' }] },
    { name: 'interests', label: 'Interests', type: 'select' as const, multiple: true, options: [{ value: 'implants', label: 'Implants' }, { value: 'whitening', label: 'Whitening' }] },
    { name: 'newsletter', label: 'Newsletter', type: 'checkbox' as const },
    { name: 'adult', label: 'I am over 18', type: 'checkbox' as const, required: true },
    { name: 'campaign', label: 'Campaign', type: 'hidden' as const, defaultValue: 'spring' },
  ],
  allowedOrigins: [ORIGIN, 'http://localhost:8080'],
  redirectUrl: 'https://clinic.example/obrigado',
  successMessage: 'Thanks! We will call you.',
  consent: { required: true, text: 'I agree to be contacted on WhatsApp about my appointment.', policyVersion: '2025-01', policyUrl: 'https://clinic.example/privacy' },
  minFillSeconds: 3,
}

const goodAnswers = () => ({
  name: 'Ana Souza',
  email: `ana.${randomInt(1e9)}@example.com`,
  phone: `(11) 9${randomInt(1000, 9999)}-${randomInt(1000, 9999)}`,
  age: 34,
  plan: 'premium',
  interests: ['implants', 'whitening'],
  adult: true,
  consent: true,
  started_at: Date.now() - 30_000,
})

describe('public form submissions', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let form: FormView
  beforeAll(async () => {
    // Every request here comes from 127.0.0.1; the limits have tests of their own below.
    app = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000' })
    tenant = await makeTenant(db.current.sql)
    form = await makeForm(db.current.sql, tenant, FULL_FORM)
  })
  afterAll(() => app.close())

  const count = async (table: string) =>
    (await db.current.owner<{ n: number }[]>`select count(*)::int as n from ${db.current.owner.unsafe(table)} where tenant_id = ${tenant.id}`)[0]!.n
  /** What submissions left behind once the worker has run: the answer comes before processing. */
  const stored = async () => {
    await drainJobs(db.current)
    return { submissions: await count('marketing.form_submissions'), leads: await count('marketing.leads'), consents: await count('marketing.consents'), inbox: await count('marketing.form_submission_inbox') }
  }
  const postJson = (payload: unknown, headers: Record<string, string> = {}, key = form.publicKey) =>
    app.inject({ method: 'POST', url: `/forms/${key}/submissions`, headers: { origin: ORIGIN, ...headers }, payload: payload as object })
  const postForm = (body: string, headers: Record<string, string> = {}, key = form.publicKey) =>
    app.inject({
      method: 'POST', url: `/forms/${key}/submissions`, payload: body,
      headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,application/xhtml+xml,*/*;q=0.8', ...headers },
    })

  it('stores a JSON submission with its lead, consent, UTM tags and pages, under the id the 201 named', async () => {
    const answers = { ...goodAnswers(), phone: '(11) 98765-4321', utm_source: 'instagram', utm_campaign: 'spring', page_url: 'https://clinic.example/promo?x=1', referrer: 'https://l.instagram.com/' }
    const res = await postJson(answers, { 'user-agent': 'Mozilla/5.0 (test)' })
    expect(res.statusCode).toBe(201)
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
    const body = res.json()
    expect(body).toEqual({ status: 'accepted', submissionId: expect.any(String), message: FULL_FORM.successMessage, redirectUrl: FULL_FORM.redirectUrl })
    // Committed to the inbox before the answer; applied by the worker.
    const [waiting] = await db.current.owner`select form_id, host(ip) as ip, user_agent, request_id, status from marketing.form_submission_inbox where id = ${body.submissionId}`
    expect(waiting).toEqual({ formId: form.id, ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (test)', requestId: res.headers['x-request-id'], status: 'received' })
    await drainJobs(db.current)
    expect(await db.current.owner`select 1 from marketing.form_submission_inbox where id = ${body.submissionId}`).toHaveLength(0)

    const [row] = await db.current.owner`
      select s.answers, s.utm, s.page_url, s.referrer, host(s.ip) as ip, s.user_agent, l.name, l.email, l.phone_e164, l.phone_key, l.source, l.fields
        from marketing.form_submissions s join marketing.leads l on l.id = s.lead_id where s.id = ${body.submissionId}`
    expect(row).toMatchObject({
      answers: { name: 'Ana Souza', email: answers.email, phone: '+5511987654321', age: 34, plan: 'premium', interests: ['implants', 'whitening'], newsletter: false, adult: true, campaign: 'spring' },
      utm: { utm_source: 'instagram', utm_campaign: 'spring' },
      pageUrl: 'https://clinic.example/promo?x=1', referrer: 'https://l.instagram.com/', ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (test)',
      name: 'Ana Souza', email: answers.email, phoneE164: '+5511987654321', phoneKey: '+5511987654321', source: 'web_form',
      fields: { age: 34, plan: 'premium', interests: ['implants', 'whitening'], newsletter: false, adult: true, campaign: 'spring' },
    })
    const [consent] = await db.current.owner`
      select granted, purpose, policy_version, policy_url, host(ip) as ip, user_agent, channel, occurred_at from marketing.consents where submission_id = ${body.submissionId}`
    expect(consent).toMatchObject({
      granted: true, purpose: FULL_FORM.consent.text, policyVersion: '2025-01', policyUrl: 'https://clinic.example/privacy', ip: '127.0.0.1', userAgent: 'Mozilla/5.0 (test)', channel: 'web_form',
    })
    const [interaction] = await db.current.owner`select type, channel, actor from marketing.lead_interactions where dedupe_key = ${`form:sub:${body.submissionId}`}`
    expect(interaction).toEqual({ type: 'form_submitted', channel: 'web', actor: 'lead' })
  })

  it('accepts a plain HTML form post (urlencoded, repeated keys) and redirects it with 303 to the thank-you page', async () => {
    const before = await stored()
    const a = goodAnswers()
    const body = new URLSearchParams({ name: a.name, email: a.email, phone: a.phone, age: '41', plan: 'basic', adult: 'on', consent: 'on', newsletter: 'on' })
    body.append('interests[]', 'implants')
    body.append('interests[]', 'whitening')
    const res = await postForm(body.toString(), { referer: 'https://clinic.example/landing?utm_source=google&utm_medium=cpc' })
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(FULL_FORM.redirectUrl)
    expect(await stored()).toEqual({ ...before, submissions: before.submissions + 1, leads: before.leads + 1, consents: before.consents + 1, inbox: 0 })
    const [row] = await db.current.owner`select answers, utm, page_url from marketing.form_submissions where tenant_id = ${tenant.id} order by submitted_at desc limit 1`
    // No script on the page: the landing page and its UTM tags come from the Referer.
    expect(row).toMatchObject({ answers: { age: 41, plan: 'basic', interests: ['implants', 'whitening'], newsletter: true, adult: true }, utm: { utm_source: 'google', utm_medium: 'cpc' }, pageUrl: 'https://clinic.example/landing?utm_source=google&utm_medium=cpc' })
  })

  it('answers a script that posts urlencoded but asks for JSON with JSON', async () => {
    const a = goodAnswers()
    const res = await postForm(new URLSearchParams({ name: a.name, phone: a.phone, adult: 'yes', consent: 'true' }).toString(), { accept: 'application/json' })
    expect(res.statusCode).toBe(201)
    expect(res.json().status).toBe('accepted')
  })

  it('without a redirect target, redirects to a thank-you page that shows the message escaped', async () => {
    const plain = await makeForm(db.current.sql, tenant, { successMessage: 'Obrigado <b>& até logo</b>' })
    const res = await postForm('name=Bia&email=bia%40example.com', {}, plain.publicKey)
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe('./thanks')
    const page = await app.inject({ method: 'GET', url: `/forms/${plain.publicKey}/thanks` })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    expect(page.body).toContain('Obrigado &lt;b&gt;&amp; até logo&lt;/b&gt;')
  })

  describe('validation against the form', () => {
    it.each<[string, Record<string, unknown>, string, RegExp]>([
      ['a missing required text', { name: '' }, 'name', /required/],
      ['a text over its limit', { name: 'x'.repeat(41) }, 'name', /at most 40/],
      ['an invalid email', { email: 'ana@' }, 'email', /email/],
      ['an invalid phone', { phone: '123' }, 'phone', /phone/],
      ['a number below its minimum', { age: 12 }, 'age', /at least 18/],
      ['a number that is not one', { age: '0x20' }, 'age', /number/],
      ['a select value not among the options', { plan: 'gold' }, 'plan', /options/],
      ['a multiple select value not among the options', { interests: ['implants', 'botox'] }, 'interests', /options/],
      ['a checkbox that is neither checked nor unchecked', { newsletter: 'maybe' }, 'newsletter', /checked/],
      ['a required checkbox left unchecked', { adult: false }, 'adult', /must be checked/],
      ['a hidden value over the limit', { campaign: 'x'.repeat(1001) }, 'campaign', /at most/],
      ['no consent', { consent: false }, 'consent', /consent/],
    ])('refuses %s with 400 naming the field, storing nothing', async (_story, change, field, message) => {
      const before = await stored()
      const res = await postJson({ ...goodAnswers(), ...change })
      expect(res.statusCode).toBe(400)
      const { error } = res.json()
      expect(error.code).toBe('BAD_REQUEST')
      expect(error.details).toEqual([{ in: 'body', path: field, message: expect.stringMatching(message) }])
      // The browser must be able to read the errors to show them next to the inputs.
      expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
      expect(await stored()).toEqual(before)
    })

    it('names every bad field at once, in form order', async () => {
      const res = await postJson({ name: '', email: 'nope', phone: 'nope', age: 7, plan: 'gold', started_at: Date.now() - 10_000 })
      expect(res.statusCode).toBe(400)
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toEqual(['name', 'email', 'phone', 'age', 'plan', 'adult', 'consent'])
      expect(res.json().error.message).toBe('invalid body.name, body.email, body.phone, body.age, body.plan, body.adult, body.consent')
    })

    it('refuses a JSON body that is not an object', async () => {
      const res = await postJson([1, 2])
      expect(res.statusCode).toBe(400)
    })
  })

  describe('bots', () => {
    it.each<[string, Record<string, unknown>]>([
      ['fill the honeypot', { website: 'http://spam.example' }],
      // A getter: the half second must be measured from the post, not from when this table was built.
      ['submit faster than a person can', { get started_at() { return Date.now() - 500 } }],
      ['fill the honeypot with otherwise invalid answers', { website: 'x', email: 'nope', name: '' }],
    ])('are answered like people when they %s, and nothing is stored', async (_story, change) => {
      const before = await stored()
      const json = await postJson({ ...goodAnswers(), ...change })
      expect(json.statusCode).toBe(201)
      expect(json.json()).toMatchObject({ status: 'accepted', submissionId: expect.any(String) })
      const html = await postForm(new URLSearchParams(Object.entries({ ...goodAnswers(), ...change }).map(([k, v]): [string, string] => [k, String(v)])).toString())
      expect(html.statusCode).toBe(303)
      expect(await stored()).toEqual(before)
    })
  })

  describe('CORS', () => {
    const preflight = (origin: string | undefined, key = form.publicKey) =>
      app.inject({
        method: 'OPTIONS', url: `/forms/${key}/submissions`,
        headers: { ...(origin ? { origin } : {}), 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      })

    it('allows a preflight from a listed origin', async () => {
      const res = await preflight('http://localhost:8080')
      expect(res.statusCode).toBe(204)
      expect(res.headers).toMatchObject({
        'access-control-allow-origin': 'http://localhost:8080', 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'content-type, accept', vary: 'Origin',
      })
    })

    it('refuses a preflight and a post from any other origin, storing nothing', async () => {
      const pre = await preflight('https://evil.example')
      expect(pre.statusCode).toBe(403)
      expect(pre.headers['access-control-allow-origin']).toBeUndefined()
      const before = await stored()
      for (const origin of ['https://evil.example', 'https://clinic.example.evil.com', 'null', 'http://clinic.example']) {
        const res = await postJson(goodAnswers(), { origin })
        expect(res.statusCode, origin).toBe(403)
        expect(res.headers['access-control-allow-origin']).toBeUndefined()
      }
      expect(await stored()).toEqual(before)
    })

    it('accepts a server-side post without an Origin header (not a browser)', async () => {
      const res = await app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload: goodAnswers() })
      expect(res.statusCode).toBe(201)
      expect(res.headers['access-control-allow-origin']).toBeUndefined()
    })
  })

  describe('bad input stores nothing', () => {
    it.each<[string, number, string, () => Promise<{ statusCode: number; json: () => { error: { code: string } } }>]>([
      ['an unknown form key', 404, 'NOT_FOUND', () => postJson(goodAnswers(), {}, `wf_${'0'.repeat(32)}`)],
      ['a malformed form key', 404, 'NOT_FOUND', () => postJson(goodAnswers(), {}, 'not-a-key')],
      ['an oversized body', 413, 'PAYLOAD_TOO_LARGE', () => postJson({ ...goodAnswers(), filler: 'x'.repeat(70_000) })],
      ['a text/plain body', 415, 'UNSUPPORTED_MEDIA_TYPE', () => app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers: { origin: ORIGIN, 'content-type': 'text/plain' }, payload: 'name=x' })],
      ['a multipart body', 415, 'UNSUPPORTED_MEDIA_TYPE', () => app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers: { origin: ORIGIN, 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x--' })],
      ['malformed JSON', 400, 'BAD_REQUEST', () => app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers: { origin: ORIGIN, 'content-type': 'application/json' }, payload: '{"name":' })],
    ])('answers %s with %i', async (_story, status, code, send) => {
      const before = await stored()
      const res = await send()
      expect(res.statusCode).toBe(status)
      expect(res.json().error.code).toBe(code)
      expect(await stored()).toEqual(before)
    })

    it('answers 503 with Retry-After, never 201, when the submission cannot be committed', async () => {
      const dead = createSql('postgres://app_runtime:x@127.0.0.1:1/nowhere', { max: 1 })
      const down = await buildWebhooksApp({ config: testConfig(), sql: dead, log: testLogger(), migrations: await readMigrationFiles() })
      try {
        const before = await stored()
        // The live app reads the form (cached for 2 s per process), so the dead one gets as far as the inbox.
        expect((await postJson(goodAnswers())).statusCode).toBe(201)
        const res = await down.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers: { origin: ORIGIN }, payload: goodAnswers() })
        expect(res.statusCode).toBe(503)
        expect(res.json().error.code).toBe('UNAVAILABLE')
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
        // Only the live app's submission was stored.
        expect(await stored()).toEqual({ ...before, submissions: before.submissions + 1, leads: before.leads + 1, consents: before.consents + 1 })
      } finally {
        await down.close()
        await dead.end()
      }
    })

    it('answers 410 for an archived form', async () => {
      const archived = await makeForm(db.current.sql, tenant)
      await db.current.owner`update marketing.forms set status = 'archived', archived_at = now() where id = ${archived.id}`
      const before = await stored()
      const res = await postJson(goodAnswers(), {}, archived.publicKey)
      expect(res.statusCode).toBe(410)
      expect(res.json().error.code).toBe('GONE')
      expect(await stored()).toEqual(before)
    })
  })
})

describe('form rate limits', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
  })
  const submit = (app: App, form: FormView, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers, payload: { name: 'Ana', email: `a${randomInt(1e9)}@example.com` } })

  it('limits each client IP, with 429 and Retry-After, and ignores X-Forwarded-For unless proxies are trusted', async () => {
    const app = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '3' })
    try {
      const form = await makeForm(db.current.sql, tenant)
      const statuses = []
      // A spoofed X-Forwarded-For per request must not buy a fresh budget.
      for (let i = 0; i < 5; i++) statuses.push((await submit(app, form, { 'x-forwarded-for': `198.51.100.${i}` })).statusCode)
      expect(statuses).toEqual([201, 201, 201, 429, 429])
      const limited = await submit(app, form)
      expect(limited.json().error.code).toBe('RATE_LIMITED')
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0)
      await drainJobs(db.current)
      const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submissions where form_id = ${form.id}`
      expect(row!.n).toBe(3)
    } finally {
      await app.close()
    }
  })

  it('limits each form across IPs', async () => {
    const app = await buildTestWebhooks(db.current, { TRUST_PROXY: 'true', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '2' })
    try {
      const form = await makeForm(db.current.sql, tenant)
      const other = await makeForm(db.current.sql, tenant)
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await submit(app, form, { 'x-forwarded-for': `203.0.113.${i}` })).statusCode)
      expect(statuses).toEqual([201, 201, 429])
      expect((await submit(app, other, { 'x-forwarded-for': '203.0.113.9' })).statusCode).toBe(201)
    } finally {
      await app.close()
    }
  })

  it.runIf(REDIS_URL)('shares the limits between two instances through Redis (needs REDIS_URL or TEST_REDIS_URL)', async () => {
    const redisA = new Redis(REDIS_URL!)
    const redisB = new Redis(REDIS_URL!)
    const config = { TRUST_PROXY: 'true', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '3' }
    const a = await buildTestWebhooks(db.current, config, { redis: redisA })
    const b = await buildTestWebhooks(db.current, config, { redis: redisB })
    try {
      // A fresh form key and fresh client IPs: counters from other runs sharing this Redis cannot interfere.
      const form = await makeForm(db.current.sql, tenant)
      const ip = () => ({ 'x-forwarded-for': `10.${randomInt(256)}.${randomInt(256)}.${randomInt(256)}` })
      const statuses = [(await submit(a, form, ip())).statusCode, (await submit(b, form, ip())).statusCode, (await submit(a, form, ip())).statusCode]
      expect(statuses).toEqual([201, 201, 201])
      const fourth = await submit(b, form, ip())
      expect(fourth.statusCode).toBe(429)
      expect(fourth.headers['retry-after']).toBeDefined()
    } finally {
      await Promise.all([a.close(), b.close()])
      await Promise.all([redisA.quit(), redisB.quit()])
    }
  })
})
