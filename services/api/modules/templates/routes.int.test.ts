import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import * as f from '../../../../domains/whatsapp/webhook/fixtures.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { runJobs } from '../../../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../../test/factories/whatsapp.js'
import { drainJobs, postDelivery } from '../../../../test/whatsapp.js'

describe('/v1/templates', () => {
  const db = useTestDatabase()
  let app: App
  let webhooks: App
  let tenant: TestTenant
  let number: TestNumber
  // Meta's template endpoint (the Cloud API emulator covers /messages only): records submissions, answers like Meta.
  let graph: Server
  let graphUrl: string
  const submissions: { url: string; body: any; auth: string | undefined }[] = []
  let nextAnswer: { status: number; body: unknown } | null = null

  beforeAll(async () => {
    app = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    graph = createServer((req, res) => {
      let raw = ''
      req.on('data', (c) => (raw += c))
      req.on('end', () => {
        const body = JSON.parse(raw)
        submissions.push({ url: req.url ?? '', body, auth: req.headers.authorization })
        const answer = nextAnswer ?? { status: 200, body: { id: String(f.newTemplateId()), status: 'PENDING', category: body.category } }
        nextAnswer = null
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body))
      })
    })
    await new Promise<void>((r) => graph.listen(0, '127.0.0.1', r))
    graphUrl = `http://127.0.0.1:${(graph.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    await app.close()
    await webhooks.close()
    await new Promise((r) => graph.close(r))
  })

  const create = (payload: unknown, key = tenant.adminKey) => app.inject({ method: 'POST', url: '/v1/templates', headers: bearer(key), payload: payload as object })
  const template = (name: string) => ({
    name, language: 'pt_BR', category: 'UTILITY',
    components: [{ type: 'BODY', text: 'Olá {{1}}, sua consulta é {{2}}.', example: { body_text: [['Ana', 'segunda 10h']] } }, { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Confirmar' }] }],
  })

  it("creates a template, submits it to Meta, and keeps Meta's verdict from the webhooks", async () => {
    const res = await create(template('consulta_lembrete'))
    expect(res.statusCode).toBe(202)
    const created = res.json()
    expect(created).toMatchObject({ name: 'consulta_lembrete', status: 'DRAFT', metaTemplateId: null, wabaId: number.wabaId })

    await runJobs(db.current, graphUrl)
    expect(submissions.at(-1)).toMatchObject({ url: `/v21.0/${number.wabaId}/message_templates`, auth: expect.stringMatching(/^Bearer EAAG/), body: { name: 'consulta_lembrete', language: 'pt_BR', category: 'UTILITY' } })
    const pending = (await app.inject({ method: 'GET', url: `/v1/templates/${created.id}`, headers: bearer(tenant.adminKey) })).json()
    expect(pending).toMatchObject({ status: 'PENDING', metaTemplateId: expect.any(String) })

    const approval = f.managementDelivery(number.wabaId, 'message_template_status_update',
      f.templateStatusUpdate({ templateId: Number(pending.metaTemplateId), name: 'consulta_lembrete', language: 'pt_BR', event: 'APPROVED' }))
    expect((await postDelivery(webhooks, approval)).statusCode).toBe(200)
    await drainJobs(db.current)
    const list = await app.inject({ method: 'GET', url: '/v1/templates', headers: bearer(tenant.adminKey) })
    expect(list.json().data).toEqual([expect.objectContaining({ id: created.id, status: 'APPROVED' })])
  })

  it("records Meta's refusal of a submission as REJECTED with the reason", async () => {
    nextAnswer = { status: 400, body: { error: { message: '(#100) Invalid parameter', code: 100, error_user_msg: 'Template name already exists' } } }
    const created = (await create(template('duplicado'))).json()
    await runJobs(db.current, graphUrl)
    const after = (await app.inject({ method: 'GET', url: `/v1/templates/${created.id}`, headers: bearer(tenant.adminKey) })).json()
    expect(after).toMatchObject({ status: 'REJECTED', rejectionReason: expect.stringContaining('Template name already exists') })
  })

  describe('errors', () => {
    it.each([
      ['an upper-case name', { ...template('x'), name: 'Bad Name' }],
      ['no body', { ...template('no_body'), components: [{ type: 'FOOTER', text: 'bye' }] }],
      ['an unknown category', { ...template('cat'), category: 'SPAM' }],
      ['four buttons of an unknown type', { ...template('btn'), components: [{ type: 'BODY', text: 'hi' }, { type: 'BUTTONS', buttons: [{ type: 'TELEPORT', text: 'x' }] }] }],
    ])('refuses %s with 400', async (_name, payload) => {
      expect((await create(payload)).statusCode).toBe(400)
    })

    it('refuses the same name and language twice with 409', async () => {
      expect((await create(template('twice'))).statusCode).toBe(202)
      expect((await create(template('twice'))).statusCode).toBe(409)
    })
  })

  it("keeps another tenant away from this tenant's templates", async () => {
    const created = (await create(template('private_one'))).json()
    const intruder = await makeTenant(db.current.sql)
    expect((await app.inject({ method: 'GET', url: `/v1/templates/${created.id}`, headers: bearer(intruder.adminKey) })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/v1/templates', headers: bearer(intruder.adminKey) })).json().data).toEqual([])
    expect((await create({ ...template('theirs'), phoneNumberId: number.id }, intruder.adminKey)).statusCode).toBe(404)
  })
})
