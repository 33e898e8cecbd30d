import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTemplate, runJobs } from '../../test/factories/conversations-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { count, postDelivery } from '../../test/whatsapp.js'
import * as f from '../whatsapp/webhook/fixtures.js'

/**
 * After erasure the person is suppressed: kept only as keyed hashes, sent no template, not recreated by a form without
 * fresh consent; a WhatsApp message of theirs is their own act and makes a new lead marked as returning.
 */
describe('suppression of erased people', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let form: { submitPath: string }
  const person = { name: 'Quentin Sorrelvane', email: 'quentin.s@example.org', phone: '+55 11 97777-6666', waId: '5511977776666' }

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    other = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    number = await makePhoneNumber(db.current.sql, tenant)
    await makeTemplate(db.current.sql, tenant, number, { name: 'promo', components: [{ type: 'BODY', text: 'News for you.' }] })
    const created = await api.inject({
      method: 'POST', url: '/v1/forms', headers: bearer(tenant.adminKey),
      payload: {
        name: 'Newsletter', allowedOrigins: ['https://clinic.example'],
        fields: [{ name: 'name', label: 'Name', type: 'text' }, { name: 'email', label: 'Email', type: 'email' }, { name: 'phone', label: 'Phone', type: 'phone' }],
        consent: { required: false, text: 'Send me news', policyVersion: 'v1' },
      },
    })
    form = created.json()

    // The person, on both channels, then erased.
    await submit({ name: person.name, email: person.email, phone: person.phone, consent: true })
    await says('hello')
    const erased = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { email: person.email } })
    await runJobs(db.current, wa.url)
    const view = (await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${erased.json().id}`, headers: bearer(tenant.adminKey) })).json()
    expect(view).toMatchObject({ status: 'completed', receipt: { suppressedKeys: 3 } })
  })
  afterAll(async () => {
    await api?.close()
    await webhooks?.close()
    await wa?.stop()
  })

  async function submit(payload: Record<string, unknown>) {
    const res = await webhooks.inject({ method: 'POST', url: form.submitPath, headers: { origin: 'https://clinic.example' }, payload: { ...payload, started_at: Date.now() - 20_000 } })
    expect(res.statusCode).toBe(201)
    await runJobs(db.current, wa.url)
  }
  async function says(body: string) {
    const res = await postDelivery(webhooks, f.delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, contacts: [{ waId: person.waId, name: person.name }], messages: [f.textMessage({ from: person.waId, body })],
    }))
    expect(res.statusCode).toBe(200)
    await runJobs(db.current, wa.url)
  }
  const suppressions = async (key = tenant.adminKey) => (await api.inject({ method: 'GET', url: '/v1/privacy/suppressions', headers: bearer(key) })).json().data

  it('keeps the erased identity keys only as keyed hashes, with dates', async () => {
    const res = await api.inject({ method: 'GET', url: '/v1/privacy/suppressions', headers: bearer(tenant.adminKey) })
    expect(res.statusCode).toBe(200)
    const list = res.json().data
    expect(list.map((s: { keyKind: string }) => s.keyKind).sort()).toEqual(['email', 'phone', 'wa_id'])
    expect(list.every((s: { keyHash: string; createdAt: string }) => /^[A-Za-z0-9_-]{22}$/.test(s.keyHash) && s.createdAt)).toBe(true)
    expect(res.body).not.toMatch(/quentin|97777|6666/i)
    const rows = await db.current.owner`select * from privacy.suppressions where tenant_id = ${tenant.id}`
    expect(JSON.stringify(rows)).not.toMatch(/quentin|977776666/i)
    // Another tenant sees none of them.
    expect(await suppressions(other.adminKey)).toEqual([])
  })

  it('drops a form submission for the person without fresh consent, keeping only a count', async () => {
    await submit({ name: person.name, email: person.email })
    expect(await count(db.current, 'marketing.leads', `tenant_id = '${tenant.id}'`)).toBe(0)
    expect(await count(db.current, 'marketing.form_submission_inbox')).toBe(0)
    expect(await count(db.current, 'marketing.form_submissions', `tenant_id = '${tenant.id}'`)).toBe(0)
    const email = (await suppressions()).find((s: { keyKind: string }) => s.keyKind === 'email')
    expect(email).toMatchObject({ blockedSubmissions: 1, lastBlockedAt: expect.any(String) })
  })

  it('stores a submission with fresh consent as a new lead, marked as returning after erasure', async () => {
    await submit({ name: person.name, email: person.email, consent: true })
    const leads = await db.current.owner<{ email: string; returningAfterErasureAt: Date | null }[]>`
      select email, returning_after_erasure_at from marketing.leads where tenant_id = ${tenant.id}`
    expect(leads).toEqual([{ email: person.email, returningAfterErasureAt: expect.any(Date) }])
  })

  it('makes a new lead, marked as returning, when the person writes on WhatsApp again', async () => {
    await says('me again')
    const [lead] = await db.current.owner<{ id: string; returningAfterErasureAt: Date | null }[]>`
      select id, returning_after_erasure_at from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${person.waId}`
    expect(lead!.returningAfterErasureAt).toBeInstanceOf(Date)
  })

  it('sends them no template (a clear reason on the message) but answers them inside the window they opened', async () => {
    const [lead] = await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${person.waId}`
    const sent = () => wa.sent.filter((m) => m.to === person.waId)
    const before = sent().length
    const template = await api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tenant.adminKey), payload: { type: 'template', leadId: lead!.id, template: { name: 'promo', language: 'en_US' } } })
    expect(template.statusCode).toBe(202)
    await runJobs(db.current, wa.url)
    const [refused] = await db.current.owner<{ state: string; failureReason: string }[]>`select state, failure_reason from whatsapp.outbound_sends where message_id = ${template.json().id}`
    expect(refused).toMatchObject({ state: 'failed', failureReason: expect.stringMatching(/erased and is suppressed/) })
    expect(sent().length).toBe(before)

    const reply = await api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tenant.adminKey), payload: { type: 'text', leadId: lead!.id, text: 'Welcome back' } })
    expect(reply.statusCode).toBe(202)
    await runJobs(db.current, wa.url)
    expect(sent().map((m) => m.type)).toEqual(['text'])
  })

  it('lets the tenant lift suppressions (audited); templates go out again', async () => {
    const list = await suppressions()
    const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
    expect((await api.inject({ method: 'DELETE', url: `/v1/privacy/suppressions/${list[0].id}`, headers: bearer(readOnly.key) })).statusCode).toBe(403)
    expect((await api.inject({ method: 'DELETE', url: `/v1/privacy/suppressions/${list[0].id}`, headers: bearer(other.adminKey) })).statusCode).toBe(404)
    expect(await suppressions()).toHaveLength(3)

    for (const s of list) {
      const res = await api.inject({ method: 'DELETE', url: `/v1/privacy/suppressions/${s.id}`, headers: bearer(tenant.adminKey) })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ id: s.id, keyHash: s.keyHash })
    }
    expect(await suppressions()).toEqual([])
    expect((await api.inject({ method: 'DELETE', url: `/v1/privacy/suppressions/${list[0].id}`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    const audit = await db.current.owner<{ actor: string; details: { keyHash: string }; requestId: string }[]>`
      select actor, details, request_id from core.audit_log where tenant_id = ${tenant.id} and action = 'privacy.suppression_lifted'`
    expect(audit.map((a) => a.details.keyHash).sort()).toEqual(list.map((s: { keyHash: string }) => s.keyHash).sort())
    expect(audit.every((a) => a.actor === `api_key:${tenant.adminKeyId}` && a.requestId)).toBe(true)

    const [lead] = await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${person.waId}`
    const template = await api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tenant.adminKey), payload: { type: 'template', leadId: lead!.id, template: { name: 'promo', language: 'en_US' } } })
    await runJobs(db.current, wa.url)
    const [sent] = await db.current.owner<{ state: string }[]>`select state from whatsapp.outbound_sends where message_id = ${template.json().id}`
    expect(sent!.state).toBe('accepted')
  })
})
