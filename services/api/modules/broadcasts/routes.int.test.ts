import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { withTenant } from '../../../../lib/db.js'
import { broadcastQueueName } from '../../../../domains/campaigns/broadcasts/queries.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTemplate, makeWhatsAppLead } from '../../../../test/factories/conversations-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../../test/factories/whatsapp.js'
import { count } from '../../../../test/whatsapp.js'

describe('/v1/broadcasts', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  const phones: string[] = []

  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR', timezone: 'America/Sao_Paulo' })
    other = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    await makePhoneNumber(db.current.sql, other)
    await makeTemplate(db.current.sql, tenant, number, { name: 'promo', category: 'MARKETING', components: [{ type: 'HEADER', format: 'TEXT', text: 'Hi {{1}}' }, { type: 'BODY', text: 'Dear {{1}}, {{2}} is open.' }] })
    await makeTemplate(db.current.sql, tenant, number, { name: 'pending_one', status: 'PENDING', components: [{ type: 'BODY', text: 'Hi' }] })
    await makeTemplate(db.current.sql, tenant, number, { name: 'paused_one', status: 'PAUSED', components: [{ type: 'BODY', text: 'Hi' }] })
    for (let i = 0; i < 4; i++) {
      const lead = await makeWhatsAppLead(db.current.sql, tenant, { name: i === 3 ? undefined : `Ana ${i}` })
      phones.push(lead.waId)
      await withTenant(db.current.sql, tenant.id, (tx) => tx`update marketing.leads set tags = '{vip}', fields = ${tx.json({ store: 'Centro' })} where id = ${lead.id}`)
    }
  })
  afterAll(() => app.close())

  const body = (over: object = {}) => ({
    name: 'December promo',
    template: { name: 'promo', language: 'en_US' },
    parameters: { header: { field: 'first_name', fallback: 'friend' }, body: [{ field: 'name' }, { field: 'fields.store', fallback: 'our store' }] },
    audience: { type: 'filter', filter: { tags: ['vip'] } },
    ...over,
  })
  const post = (payload: unknown, key = tenant.adminKey) => app.inject({ method: 'POST', url: '/v1/broadcasts', headers: bearer(key), payload: payload as object })
  const act = (id: string, action: string, payload: object = {}, key = tenant.adminKey, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: `/v1/broadcasts/${id}/${action}`, headers: { ...bearer(key), ...headers }, payload })
  const create = async (over: object = {}) => {
    const res = await post(body(over))
    expect(res.statusCode, res.body).toBe(201)
    return res.json()
  }

  describe('happy path', () => {
    it('creates a draft, reads it with its stats, and lists it', async () => {
      const b = await create()
      expect(b).toMatchObject({ status: 'draft', version: 1, allowedTransitions: ['scheduled', 'sending'], template: { name: 'promo', language: 'en_US' }, phoneNumberId: number.id })
      const one = await app.inject({ method: 'GET', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey) })
      expect(one.json().stats).toMatchObject({ recipients: 0 })
      const list = await app.inject({ method: 'GET', url: '/v1/broadcasts?status=draft', headers: bearer(tenant.adminKey) })
      expect(list.json().data.map((x: { id: string }) => x.id)).toContain(b.id)
    })

    it('normalises an uploaded phone list to leads and reports the unknown and invalid entries', async () => {
      const b = await create({ audience: { type: 'list', phones: [`+${phones[0]}`, `(${phones[1]!.slice(2, 4)}) ${phones[1]!.slice(4)}`, '+55 11 91234-0000', 'not a phone'] } })
      expect(b.audience).toMatchObject({ type: 'list', unknownPhones: 1, invalidPhones: 1 })
      expect(b.audience.leadIds).toHaveLength(2)
      expect(b.audienceReport).toEqual({ unknownPhones: [{ index: 2, phone: '+5511912340000' }], invalidPhones: [{ index: 3, phone: 'not a phone' }], unknownLeadIds: [] })
    })

    it('edits a draft with If-Match and refuses a stale version with the current one', async () => {
      const b = await create()
      const ok = await app.inject({ method: 'PATCH', url: `/v1/broadcasts/${b.id}`, headers: { ...bearer(tenant.adminKey), 'if-match': '"1"' }, payload: { name: 'Renamed' } })
      expect(ok.statusCode, ok.body).toBe(200)
      expect(ok.json()).toMatchObject({ name: 'Renamed', version: 2 })
      const stale = await app.inject({ method: 'PATCH', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey), payload: { name: 'Again', version: 1 } })
      expect(stale.statusCode).toBe(409)
      expect(stale.json().error.details).toEqual({ currentVersion: 2 })
    })

    it("schedules in the tenant's timezone, takes the audience snapshot then, and unschedules", async () => {
      const b = await create()
      const res = await act(b.id, 'schedule', { scheduledAt: '2099-12-05T09:00' })
      expect(res.statusCode, res.body).toBe(200)
      // São Paulo is UTC-3.
      expect(res.json()).toMatchObject({ status: 'scheduled', scheduledAt: '2099-12-05T12:00:00.000Z', scheduleTimezone: 'America/Sao_Paulo', stats: { recipients: 4, pending: 3, skipped: 1, skippedBy: { missing_parameter: 1 } } })
      const [job] = await db.current.owner<{ runAt: Date; queueName: string }[]>`select run_at, queue_name from graphile_worker.jobs where key = ${`broadcast:${b.id}`}`
      expect(job!.runAt.toISOString()).toBe('2099-12-05T12:00:00.000Z')
      expect(job!.queueName).toBe(broadcastQueueName(b.id))
      expect(job!.queueName).toMatch(/^broadcast:\d+$/)
      // A lead tagged later does not join a taken snapshot.
      await makeWhatsAppLead(db.current.sql, tenant).then((l) => withTenant(db.current.sql, tenant.id, (tx) => tx`update marketing.leads set tags = '{vip}', name = 'Late', fields = ${tx.json({ store: 'Norte' })} where id = ${l.id}`))
      expect((await app.inject({ method: 'GET', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey) })).json().stats.recipients).toBe(4)
      const back = await act(b.id, 'unschedule')
      expect(back.json()).toMatchObject({ status: 'draft', scheduledAt: null })
      expect(await count(db.current, 'graphile_worker.jobs', `key = 'broadcast:${b.id}'`)).toBe(0)
      expect(await count(db.current, 'campaigns.broadcast_recipients', `broadcast_id = '${b.id}'`)).toBe(0)
    })

    it('starts, pauses, resumes and stops, refusing illegal transitions with the allowed ones', async () => {
      const b = await create()
      expect((await act(b.id, 'start')).json()).toMatchObject({ status: 'sending', allowedTransitions: ['paused', 'completed', 'stopped', 'failed'] })
      expect((await act(b.id, 'pause')).json()).toMatchObject({ status: 'paused', statusReason: 'manual' })
      const again = await act(b.id, 'start')
      expect(again.statusCode).toBe(409)
      expect((await act(b.id, 'resume')).json()).toMatchObject({ status: 'sending' })
      expect((await act(b.id, 'stop')).json()).toMatchObject({ status: 'stopped', allowedTransitions: [] })
      const after = await act(b.id, 'resume')
      expect(after.statusCode).toBe(409)
      expect(after.json().error).toMatchObject({ code: 'CONFLICT', details: { from: 'stopped', to: 'sending', allowed: [] } })
      expect(after.json().error.message).toMatch(/allowed from stopped: none/)
    })

    it('refuses a recipient whose parameter has no value, with the reason, before anything is sent', async () => {
      const b = await create({ parameters: { header: { field: 'first_name' }, body: [{ field: 'name' }, { field: 'fields.store' }] } })
      const started = await act(b.id, 'start')
      // The lead with no name has no value for the header nor the first body variable; everyone else has a store.
      const { stats } = started.json()
      expect(stats).toMatchObject({ skipped: 1, skippedBy: { missing_parameter: 1 } })
      expect(stats.recipients).toBe(stats.pending + stats.queued + 1)
      const list = await app.inject({ method: 'GET', url: `/v1/broadcasts/${b.id}/recipients?status=skipped`, headers: bearer(tenant.adminKey) })
      expect(list.json().data[0].skipDetail).toBe('no value for header (first_name), body {{1}} (name)')
      expect(await count(db.current, 'whatsapp.messages', `lead_id = '${list.json().data[0].leadId}'`)).toBe(0)
      await act(b.id, 'stop')
    })

    it('deletes a draft, not a started one', async () => {
      const b = await create()
      expect((await app.inject({ method: 'DELETE', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey) })).statusCode).toBe(204)
      expect((await app.inject({ method: 'GET', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    })
  })

  describe('errors', () => {
    it.each([
      { name: 'no name', payload: () => body({ name: '' }), status: 400, code: 'BAD_REQUEST' },
      { name: 'an audience of neither kind', payload: () => body({ audience: { type: 'everyone' } }), status: 400, code: 'BAD_REQUEST' },
      { name: 'an empty list', payload: () => body({ audience: { type: 'list', phones: [] } }), status: 400, code: 'BAD_REQUEST' },
      { name: 'an unknown filter key', payload: () => body({ audience: { type: 'filter', filter: { colour: 'red' } } }), status: 400, code: 'BAD_REQUEST' },
      { name: 'a parameter from an unknown field', payload: () => body({ parameters: { body: [{ field: 'salary' }] } }), status: 400, code: 'BAD_REQUEST' },
      { name: 'parameters that do not fit the template', payload: () => body({ parameters: { body: [{ field: 'name' }] } }), status: 400, code: 'BAD_REQUEST' },
      { name: 'a template that does not exist', payload: () => body({ template: { name: 'nope', language: 'en_US' } }), status: 404, code: 'NOT_FOUND' },
      { name: 'a template not approved yet', payload: () => body({ template: { name: 'pending_one', language: 'en_US' }, parameters: {} }), status: 422, code: 'UNPROCESSABLE' },
      { name: 'a paused template', payload: () => body({ template: { name: 'paused_one', language: 'en_US' }, parameters: {} }), status: 422, code: 'UNPROCESSABLE' },
      { name: 'a campaign that does not exist', payload: () => body({ campaignId: '00000000-0000-4000-8000-00000000dead' }), status: 404, code: 'NOT_FOUND' },
      { name: 'a failure threshold over 1', payload: () => body({ failureThreshold: 1.5 }), status: 400, code: 'BAD_REQUEST' },
    ])('refuses $name, and writes nothing', async ({ payload, status, code }) => {
      const before = await count(db.current, 'campaigns.broadcasts')
      const res = await post(payload())
      expect(res.statusCode, res.body).toBe(status)
      expect(res.json().error.code).toBe(code)
      expect(await count(db.current, 'campaigns.broadcasts')).toBe(before)
    })

    it('refuses a schedule in the past, or a malformed one', async () => {
      const b = await create()
      expect((await act(b.id, 'schedule', { scheduledAt: '2001-01-01T09:00' })).statusCode).toBe(400)
      expect((await act(b.id, 'schedule', { scheduledAt: 'tomorrow' })).statusCode).toBe(400)
      expect(await count(db.current, 'campaigns.broadcast_recipients', `broadcast_id = '${b.id}'`)).toBe(0)
    })

    it('refuses to edit a broadcast that is no longer a draft', async () => {
      const b = await create()
      await act(b.id, 'schedule', { scheduledAt: '2099-01-01T00:00:00Z' })
      const res = await app.inject({ method: 'PATCH', url: `/v1/broadcasts/${b.id}`, headers: bearer(tenant.adminKey), payload: { name: 'x' } })
      expect(res.statusCode).toBe(409)
    })

    it('refuses a bad id or cursor with 400', async () => {
      expect((await app.inject({ method: 'GET', url: '/v1/broadcasts/not-a-uuid', headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
      expect((await app.inject({ method: 'GET', url: '/v1/broadcasts?cursor=zzz', headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
    })
  })

  describe('security', () => {
    it("answers 404 for another tenant's broadcast, whatever the action, and changes nothing", async () => {
      const b = await create()
      const url = `/v1/broadcasts/${b.id}`
      for (const req of [
        { method: 'GET' as const, url },
        { method: 'GET' as const, url: `${url}/recipients` },
        { method: 'PATCH' as const, url, payload: { name: 'stolen' } },
        { method: 'DELETE' as const, url },
        ...['start', 'pause', 'resume', 'stop', 'unschedule'].map((a) => ({ method: 'POST' as const, url: `${url}/${a}`, payload: {} })),
        { method: 'POST' as const, url: `${url}/schedule`, payload: { scheduledAt: '2099-01-01T00:00:00Z' } },
      ]) {
        const res = await app.inject({ ...req, headers: bearer(other.adminKey) })
        expect(res.statusCode, `${req.method} ${req.url}`).toBe(404)
      }
      expect((await app.inject({ method: 'GET', url, headers: bearer(tenant.adminKey) })).json()).toMatchObject({ name: 'December promo', status: 'draft', version: 1 })
      expect((await app.inject({ method: 'GET', url: '/v1/broadcasts', headers: bearer(other.adminKey) })).json().data).toEqual([])
    })

    it("cannot target another tenant's leads by id: they are reported unknown", async () => {
      const theirs = await makeWhatsAppLead(db.current.sql, other)
      const res = await post(body({ audience: { type: 'list', leadIds: [theirs.id] } }))
      expect(res.json().audienceReport.unknownLeadIds).toEqual([theirs.id])
      expect(res.json().audience.leadIds).toEqual([])
    })

    it('lets a read-only key read but not write, and refuses no key', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant)
      expect((await app.inject({ method: 'GET', url: '/v1/broadcasts', headers: bearer(readOnly.key) })).statusCode).toBe(200)
      expect((await post(body(), readOnly.key)).statusCode).toBe(403)
      expect((await app.inject({ method: 'GET', url: '/v1/broadcasts' })).statusCode).toBe(401)
    })
  })
})
