import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { sendJobKey, sendQueueName } from '../../../../domains/whatsapp/outbound/queries.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTemplate, makeWhatsAppLead, type TestLead } from '../../../../test/factories/conversations-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../../test/factories/whatsapp.js'

describe('POST/GET /v1/messages', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let number: TestNumber
  let open: TestLead
  let closed: TestLead
  let neverWrote: TestLead
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    open = await makeWhatsAppLead(db.current.sql, tenant, { number, lastInboundAt: new Date(Date.now() - 3600_000) })
    closed = await makeWhatsAppLead(db.current.sql, tenant, { number, lastInboundAt: new Date(Date.now() - 25 * 3600_000) })
    neverWrote = await makeWhatsAppLead(db.current.sql, tenant)
    await makeTemplate(db.current.sql, tenant, number)
    await makeTemplate(db.current.sql, tenant, number, { name: 'big_promo', category: 'MARKETING', components: [{ type: 'BODY', text: 'Promo!' }] })
    await makeTemplate(db.current.sql, tenant, number, { name: 'pending_one', status: 'PENDING', components: [{ type: 'BODY', text: 'Hi' }] })
  })
  afterAll(() => app.close())

  const post = (payload: unknown, key = tenant.adminKey) => app.inject({ method: 'POST', url: '/v1/messages', headers: bearer(key), payload: payload as object })
  const reminder = (to: TestLead) => ({
    type: 'template', leadId: to.id,
    template: {
      name: 'appointment_reminder', language: 'en_US',
      components: [
        { type: 'body', parameters: [{ type: 'text', text: 'Ana' }, { type: 'text', text: 'Monday 10:00' }] },
        { type: 'button', subType: 'url', index: 1, parameters: [{ type: 'text', text: 'abc123' }] },
      ],
    },
  })

  const withComponents = (components: unknown[]) => ({ ...reminder(open), template: { ...reminder(open).template, components } })

  it('queues a text inside the 24-hour window, with its job, and lists it with its status', async () => {
    const res = await post({ type: 'text', leadId: open.id, text: 'Your visit is confirmed for Monday.' })
    expect(res.statusCode).toBe(202)
    const message = res.json()
    expect(message).toMatchObject({ leadId: open.id, phoneNumberId: number.id, waId: open.waId, type: 'text', source: 'api', sendState: 'queued', status: 'pending', wamid: null, content: { body: 'Your visit is confirmed for Monday.' } })
    const [job] = await db.current.owner`select task_identifier, queue_name from graphile_worker.jobs where key = ${sendJobKey(number.id, open.waId)}`
    expect(job).toMatchObject({ taskIdentifier: 'whatsapp__send_message', queueName: sendQueueName(number.id, open.waId) })

    const list = await app.inject({ method: 'GET', url: `/v1/messages?leadId=${open.id}`, headers: bearer(tenant.adminKey) })
    expect(list.json().data.map((m: { id: string }) => m.id)).toContain(message.id)
    const one = await app.inject({ method: 'GET', url: `/v1/messages/${message.id}`, headers: bearer(tenant.adminKey) })
    expect(one.json()).toMatchObject({ id: message.id, statusHistory: [] })
  })

  it('refuses free text when the window has closed, saying why and what to do instead', async () => {
    const res = await post({ type: 'text', leadId: closed.id, text: 'Hello again!' })
    expect(res.statusCode).toBe(422)
    const { error } = res.json()
    expect(error.code).toBe('UNPROCESSABLE')
    expect(error.message).toMatch(/24-hour customer service window .* closed .* send an approved template instead/)
    expect(error.details).toMatchObject({ reason: 'service_window_closed', lastInboundAt: expect.any(String), windowClosedAt: expect.any(String) })
    const never = await post({ type: 'text', leadId: neverWrote.id, text: 'Hello!' })
    expect(never.statusCode).toBe(422)
    expect(never.json().error.details.lastInboundAt).toBeNull()
    expect(Number((await db.current.owner`select count(*)::int as n from whatsapp.messages where lead_id in (${closed.id}, ${neverWrote.id})`)[0]!.n)).toBe(0)
  })

  it('sends an approved template outside the window, with parameters that fit it', async () => {
    const res = await post(reminder(closed))
    expect(res.statusCode).toBe(202)
    expect(res.json()).toMatchObject({ type: 'template', content: { name: 'appointment_reminder', language: { code: 'en_US' } } })
  })

  it('pages through outbound messages with a cursor', async () => {
    for (let i = 0; i < 3; i++) await post({ type: 'text', leadId: open.id, text: `page ${i}` })
    const first = await app.inject({ method: 'GET', url: '/v1/messages?limit=2', headers: bearer(tenant.adminKey) })
    expect(first.json().data).toHaveLength(2)
    const second = await app.inject({ method: 'GET', url: `/v1/messages?limit=2&cursor=${first.json().nextCursor}`, headers: bearer(tenant.adminKey) })
    const ids = [...first.json().data, ...second.json().data].map((m: { id: string }) => m.id)
    expect(new Set(ids).size).toBe(ids.length)
  })

  describe('errors', () => {
    it.each([
      { name: 'no text', payload: () => ({ type: 'text', leadId: open.id }), status: 400, code: 'BAD_REQUEST' },
      { name: 'text over 4096 characters', payload: () => ({ type: 'text', leadId: open.id, text: 'x'.repeat(4097) }), status: 400, code: 'BAD_REQUEST' },
      { name: 'an unknown type', payload: () => ({ type: 'video', leadId: open.id }), status: 400, code: 'BAD_REQUEST' },
      { name: 'a lead that does not exist', payload: () => ({ type: 'text', leadId: '00000000-0000-4000-8000-00000000dead', text: 'hi' }), status: 404, code: 'NOT_FOUND' },
      { name: 'a template that does not exist', payload: () => ({ ...reminder(open), template: { name: 'nope', language: 'en_US' } }), status: 404, code: 'NOT_FOUND' },
      { name: 'a template not approved yet', payload: () => ({ type: 'template', leadId: open.id, template: { name: 'pending_one', language: 'en_US' } }), status: 422, code: 'UNPROCESSABLE' },
      { name: 'too few body parameters', payload: () => withComponents([{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }, reminder(open).template.components[1]]), status: 400, code: 'BAD_REQUEST' },
      { name: 'a missing URL button parameter', payload: () => withComponents([reminder(open).template.components[0]]), status: 400, code: 'BAD_REQUEST' },
      { name: 'a header parameter the template does not take', payload: () => withComponents([{ type: 'header', parameters: [{ type: 'text', text: 'x' }] }, ...reminder(open).template.components]), status: 400, code: 'BAD_REQUEST' },
    ])('refuses $name', async ({ payload, status, code }) => {
      const res = await post(payload())
      expect(res.statusCode).toBe(status)
      expect(res.json().error.code).toBe(code)
    })

    it('refuses a marketing template to a lead who opted out', async () => {
      const optedOut = await makeWhatsAppLead(db.current.sql, tenant, { number, lastInboundAt: new Date(), optedOutAt: new Date() })
      const res = await post({ type: 'template', leadId: optedOut.id, template: { name: 'big_promo', language: 'en_US' } })
      expect(res.statusCode).toBe(422)
      expect(res.json().error.message).toMatch(/opted out of marketing/)
      expect((await post({ type: 'template', leadId: optedOut.id, template: reminder(optedOut).template })).statusCode).toBe(202)
    })

    it('refuses a number whose token Meta rejected', async () => {
      const other = await makePhoneNumber(db.current.sql, tenant)
      await db.current.owner`update whatsapp.phone_numbers set token_invalid_at = now() where id = ${other.id}`
      const res = await post({ type: 'template', leadId: open.id, phoneNumberId: other.id, template: reminder(open).template })
      expect(res.statusCode).toBe(422)
      expect(res.json().error.message).toMatch(/access token/)
    })

    it('lets a read-only key list but not send', async () => {
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await post({ type: 'text', leadId: open.id, text: 'hi' }, reader.key)).statusCode).toBe(403)
      expect((await app.inject({ method: 'GET', url: '/v1/messages', headers: bearer(reader.key) })).statusCode).toBe(200)
    })
  })

  describe('security', () => {
    it("keeps another tenant away from this tenant's leads and messages", async () => {
      const intruder = await makeTenant(db.current.sql)
      await makePhoneNumber(db.current.sql, intruder)
      const mine = (await post({ type: 'text', leadId: open.id, text: 'private' })).json()

      const send = await post({ type: 'text', leadId: open.id, text: 'from another tenant' }, intruder.adminKey)
      expect(send.statusCode).toBe(404)
      const read = await app.inject({ method: 'GET', url: `/v1/messages/${mine.id}`, headers: bearer(intruder.adminKey) })
      expect(read.statusCode).toBe(404)
      const list = await app.inject({ method: 'GET', url: '/v1/messages', headers: bearer(intruder.adminKey) })
      expect(list.json().data).toEqual([])
      const sendFromMyNumber = await post({ type: 'template', leadId: open.id, phoneNumberId: number.id, template: reminder(open).template }, intruder.adminKey)
      expect(sendFromMyNumber.statusCode).toBe(404)
    })

    it('answers 401 without a key', async () => {
      expect((await app.inject({ method: 'POST', url: '/v1/messages', payload: { type: 'text', leadId: open.id, text: 'x' } })).statusCode).toBe(401)
    })
  })
})
