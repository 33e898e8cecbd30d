import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestWebhooks, testConfig, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, PLATFORM_APP_SECRET } from '../../../../test/factories/whatsapp.js'
import { count, postDelivery } from '../../../../test/whatsapp.js'
import { createSql } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { readMigrationFiles } from '../../../../lib/migrate.js'
import { delivery, textMessage } from '../../../../domains/whatsapp/webhook/fixtures.js'
import { signMetaBody } from '../../../../domains/whatsapp/signature.js'
import { buildWebhooksApp } from '../../app.js'

describe('WhatsApp webhook ingestion', () => {
  const db = useTestDatabase()
  let app: App
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
  })
  afterAll(() => app.close())
  const deliveries = () => count(db.current, 'whatsapp.webhook_deliveries')

  describe("Meta's subscription handshake", () => {
    const handshake = (query: string) => app.inject({ method: 'GET', url: `/webhooks/whatsapp?${query}` })

    it('echoes exactly the challenge for the platform verify token', async () => {
      const res = await handshake('hub.mode=subscribe&hub.verify_token=dev-meta-verify-token&hub.challenge=1158201444')
      expect(res.statusCode).toBe(200)
      expect(res.body).toBe('1158201444')
      expect(res.headers['content-type']).toMatch(/^text\/plain/)
    })

    it("accepts a tenant's own app verify token", async () => {
      const tenant = await makeTenant(db.current.sql)
      await makePhoneNumber(db.current.sql, tenant, { app: { mode: 'own', appSecret: 'tenant-own-app-secret-0001', verifyToken: 'tenant-own-verify-token-01' } })
      const res = await handshake('hub.mode=subscribe&hub.verify_token=tenant-own-verify-token-01&hub.challenge=abc')
      expect([res.statusCode, res.body]).toEqual([200, 'abc'])
    })

    it.each([
      ['a wrong token', 'hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1'],
      ['another mode', 'hub.mode=unsubscribe&hub.verify_token=dev-meta-verify-token&hub.challenge=1'],
      ['no token', 'hub.mode=subscribe&hub.challenge=1'],
      ['no challenge', 'hub.mode=subscribe&hub.verify_token=dev-meta-verify-token'],
    ])('refuses %s with 403', async (_name, query) => {
      expect((await handshake(query)).statusCode).toBe(403)
    })
  })

  describe('signatures', () => {
    it('stores a delivery signed with the platform app secret and answers 200 after commit', async () => {
      const before = await deliveries()
      const res = await postDelivery(app, delivery({ messages: [textMessage({ from: '5511987654321', body: 'oi' })] }))
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ received: true, duplicate: false })
      expect(await deliveries()).toBe(before + 1)
      // The job that will process it committed with it.
      expect(await count(db.current, 'graphile_worker.jobs', `task_identifier = 'whatsapp__process_deliveries'`)).toBeGreaterThan(0)
    })

    it('verifies the exact bytes Meta sent, escaped non-ASCII included', async () => {
      const raw = JSON.stringify(delivery({ messages: [textMessage({ from: '5511987654321', body: 'olá 😀 ação' })] })).replace(
        /[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
      expect(raw).toContain('\\u00e1')
      const res = await postDelivery(app, null, { raw })
      expect(res.statusCode).toBe(200)
      const [row] = await db.current.owner<{ text: string }[]>`select payload #>> '{entry,0,changes,0,value,messages,0,text,body}' as text from whatsapp.webhook_deliveries where id = ${res.json().deliveryId}`
      expect(row!.text).toBe('olá 😀 ação')
    })

    it("accepts a tenant's own app secret for its number", async () => {
      const tenant = await makeTenant(db.current.sql)
      const number = await makePhoneNumber(db.current.sql, tenant, { app: { mode: 'own', appSecret: 'tenant-own-app-secret-0002', verifyToken: 'tenant-own-verify-token-02' } })
      const body = delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [textMessage({ from: '5511987654321', body: 'hi' })] })
      expect((await postDelivery(app, body, { secret: 'tenant-own-app-secret-0002' })).statusCode).toBe(200)
      // ...but not for a number it does not own.
      const other = delivery({ messages: [textMessage({ from: '5511987654321', body: 'hi' })] })
      expect((await postDelivery(app, other, { secret: 'tenant-own-app-secret-0002' })).statusCode).toBe(401)
    })

    it.each([
      ['a wrong secret', { secret: 'not-the-secret' }],
      ['a missing header', { headers: { 'x-hub-signature-256': '' } }],
      ['a malformed header', { headers: { 'x-hub-signature-256': 'sha1=abc' } }],
    ])('refuses %s with 401 and stores nothing', async (_name, options) => {
      const before = await deliveries()
      const body = delivery({ messages: [textMessage({ from: '5511987654321', body: 'x' })] })
      const res = await postDelivery(app, body, options)
      expect(res.statusCode).toBe(401)
      expect(res.json().error.code).toBe('UNAUTHORIZED')
      expect(await deliveries()).toBe(before)
    })

    it('refuses a body with one byte changed after signing', async () => {
      const before = await deliveries()
      const raw = JSON.stringify(delivery({ messages: [textMessage({ from: '5511987654321', body: 'pay 100' })] }))
      const res = await app.inject({
        method: 'POST', url: '/webhooks/whatsapp',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) },
        payload: raw.replace('pay 100', 'pay 900'),
      })
      expect(res.statusCode).toBe(401)
      expect(await deliveries()).toBe(before)
    })
  })

  describe('bad input changes nothing', () => {
    // Meta retries anything but a 200 for days: a signed body that can never be applied is acknowledged and kept raw.
    const keptRaw = (sha: string) => db.current.owner<{ reason: string }[]>`
      select reason from whatsapp.unparseable_deliveries where body_sha256 = decode(${sha}, 'hex')`
    it('acknowledges signed malformed JSON and keeps its bytes for operators, naming the parse error', async () => {
      const before = await deliveries()
      const raw = `{"object":"whatsapp_business_account","entry":[${Date.now()}`
      const res = await postDelivery(app, null, { raw })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ received: true, unparseable: true })
      expect(await deliveries()).toBe(before)
      const [kept] = await keptRaw(createHash('sha256').update(raw).digest('hex'))
      expect(kept!.reason).toMatch(/^not valid JSON: /)
    })

    it('acknowledges signed JSON that is not a WhatsApp delivery and keeps it raw, applying nothing', async () => {
      const before = await deliveries()
      const body = { object: 'page', entry: [], at: Date.now() }
      const res = await postDelivery(app, body)
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ received: true, unparseable: true })
      expect(await deliveries()).toBe(before)
      const [kept] = await keptRaw(createHash('sha256').update(JSON.stringify(body)).digest('hex'))
      expect(kept!.reason).toMatch(/^not a WhatsApp Business Account delivery: object /)
    })

    it('still answers 401 for an unsigned malformed body, storing nothing', async () => {
      const res = await app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: { 'content-type': 'application/json', 'x-hub-signature-256': 'sha256=' + '0'.repeat(64) }, payload: '{"object":' })
      expect(res.statusCode).toBe(401)
    })

    it('answers 413 for a body over 3 MB', async () => {
      const before = await deliveries()
      const huge = delivery({ messages: [textMessage({ from: '5511987654321', body: 'x'.repeat(3_200_000) })] })
      expect((await postDelivery(app, huge)).statusCode).toBe(413)
      expect(await deliveries()).toBe(before)
    })

    it('answers 415 for another content type', async () => {
      const res = await app.inject({ method: 'POST', url: '/webhooks/whatsapp', headers: { 'content-type': 'text/plain', 'x-hub-signature-256': 'sha256=00' }, payload: 'hello' })
      expect(res.statusCode).toBe(415)
    })
  })

  it('stores the same delivery posted 5 times at once as one row, and acknowledges every post', async () => {
    const before = await deliveries()
    const body = delivery({ messages: [textMessage({ from: '5511987654321', body: 'again and again' })] })
    const results = await Promise.all(Array.from({ length: 5 }, () => postDelivery(app, body)))
    expect(results.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200])
    const bodies = results.map((r) => r.json())
    expect(new Set(bodies.map((b) => b.deliveryId)).size).toBe(1)
    expect(bodies.filter((b) => !b.duplicate)).toHaveLength(1)
    expect(await deliveries()).toBe(before + 1)
  })

  it('documents its public routes in an OpenAPI document built from the same schemas', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' })
    expect(res.statusCode).toBe(200)
    expect(Object.keys(res.json().paths)).toEqual(expect.arrayContaining(['/webhooks/whatsapp/', '/forms/{publicKey}/submissions']))
  })

  it('answers 503, never 200, when the database cannot take the delivery', async () => {
    const dead = createSql('postgres://app_runtime:x@127.0.0.1:1/nowhere', { max: 1 })
    const down = await buildWebhooksApp({ config: testConfig(), sql: dead, log: testLogger(), migrations: await readMigrationFiles() })
    const res = await postDelivery(down, delivery({ messages: [textMessage({ from: '5511987654321', body: 'lost?' })] }))
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBeDefined()
    await down.close()
    await dead.end()
  })
})
