import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { botQueueName } from '../../../../domains/conversations/queries.js'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeWhatsAppLead } from '../../../../test/factories/conversations-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber } from '../../../../test/factories/whatsapp.js'

describe('/v1/conversations', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let conversationId: string
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    const number = await makePhoneNumber(db.current.sql, tenant)
    const lead = await makeWhatsAppLead(db.current.sql, tenant, { number, lastInboundAt: new Date(), name: 'Ana' })
    conversationId = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const [c] = await tx<{ id: string }[]>`
        insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id, inbound_count)
        values (${tenant.id}, ${lead.id}, ${number.id}, ${lead.waId}, 1) returning id`
      return c!.id
    })
  })
  afterAll(() => app.close())

  const call = (method: 'GET' | 'POST', url: string, payload?: unknown, key = tenant.adminKey) =>
    app.inject({ method, url, headers: bearer(key), ...(payload !== undefined ? { payload: payload as object } : {}) })

  it('lists conversations with the lead, and hands one over and back', async () => {
    const list = await call('GET', '/v1/conversations')
    expect(list.json().data).toEqual([expect.objectContaining({ id: conversationId, mode: 'bot', lead: expect.objectContaining({ name: 'Ana', status: 'new' }) })])

    const handed = await call('POST', `/v1/conversations/${conversationId}/handover`, { note: 'VIP, I will answer' })
    expect(handed.statusCode).toBe(200)
    expect(handed.json()).toMatchObject({ mode: 'handed_over', handoverNote: 'VIP, I will answer', handedOverBy: expect.stringMatching(/^api_key:/) })
    expect((await call('GET', '/v1/conversations?mode=handed_over')).json().data).toHaveLength(1)

    const released = await call('POST', `/v1/conversations/${conversationId}/release`)
    expect(released.statusCode).toBe(202)
    const [job] = await db.current.owner`select task_identifier from graphile_worker.jobs where queue_name = ${botQueueName(conversationId)}`
    expect(job).toMatchObject({ taskIdentifier: 'conversations__run_bot' })
    const events = await call('GET', `/v1/conversations/${conversationId}/events`)
    expect(events.json().data).toEqual([expect.objectContaining({ kind: 'release', status: 'pending' })])
  })

  describe('errors', () => {
    it('refuses to release a conversation nobody took over', async () => {
      const other = await makeTenant(db.current.sql)
      const number = await makePhoneNumber(db.current.sql, other)
      const lead = await makeWhatsAppLead(db.current.sql, other, { number, lastInboundAt: new Date() })
      const id = await withTenant(db.current.sql, other.id, async (tx) =>
        (await tx<{ id: string }[]>`insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id) values (${other.id}, ${lead.id}, ${number.id}, ${lead.waId}) returning id`)[0]!.id)
      const res = await call('POST', `/v1/conversations/${id}/release`, undefined, other.adminKey)
      expect(res.statusCode).toBe(409)
    })

    it.each([
      ['GET', '/v1/conversations/00000000-0000-4000-8000-00000000dead', 404],
      ['POST', '/v1/conversations/00000000-0000-4000-8000-00000000dead/handover', 404],
      ['POST', '/v1/conversations/00000000-0000-4000-8000-00000000dead/release', 404],
      ['GET', '/v1/conversations/nope', 400],
    ] as const)('%s %s answers %d', async (method, url, status) => {
      expect((await call(method, url)).statusCode).toBe(status)
    })

    it('refuses a handover note over 500 characters, and a read-only key', async () => {
      expect((await call('POST', `/v1/conversations/${conversationId}/handover`, { note: 'x'.repeat(501) })).statusCode).toBe(400)
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await call('POST', `/v1/conversations/${conversationId}/handover`, {}, reader.key)).statusCode).toBe(403)
    })
  })

  it("keeps another tenant away from this tenant's conversations", async () => {
    const intruder = await makeTenant(db.current.sql)
    expect((await call('GET', `/v1/conversations/${conversationId}`, undefined, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('POST', `/v1/conversations/${conversationId}/handover`, {}, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('POST', `/v1/conversations/${conversationId}/release`, undefined, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('GET', `/v1/conversations/${conversationId}/events`, undefined, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('GET', '/v1/conversations', undefined, intruder.adminKey)).json().data).toEqual([])
  })
})
