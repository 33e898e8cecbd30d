import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { expectErrorShape, portOf, rawExchange } from '../../test/raw-http.js'
import type { App } from '../../lib/http/create-server.js'
import { makeForm } from '../../test/factories/marketing-rows.js'
import { makeTenant } from '../../test/factories/tenants.js'



describe('webhooks edge: slow and broken clients on the ingestion service', () => {
  const db = useTestDatabase()
  const timeouts = { HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' }
  // The trickle would go on for far longer than the bound (timeout + check interval + slack).
  const BOUND_MS = 2500
  const TRICKLE_FOR_MS = 10_000
  let app: App
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current, timeouts)
    await app.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(() => app.close())

  const slowPost = (path: string, contentType: string) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${contentType}\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nContent-Length: 50000\r\n\r\n{"object":"`

  it('answers a Meta delivery whose body trickles in with 408 and closes the connection', async () => {
    const res = await rawExchange(portOf(app), { initial: slowPost('/webhooks/whatsapp', 'application/json'), trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
    expect(res.closedByServer).toBe(true)
    expect(res.elapsedMs).toBeLessThan(BOUND_MS)
    expect(res.status).toBe(408)
    expectErrorShape(res.json, 'REQUEST_TIMEOUT')
  })

  it('answers a form submission whose body trickles in with 408 and closes the connection', async () => {
    const form = await makeForm(db.current.sql, await makeTenant(db.current.sql))
    const res = await rawExchange(portOf(app), { initial: slowPost(`/forms/${form.publicKey}/submissions`, 'application/json'), trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
    expect(res.closedByServer).toBe(true)
    expect(res.elapsedMs).toBeLessThan(BOUND_MS)
    expect(res.status).toBe(408)
    expectErrorShape(res.json, 'REQUEST_TIMEOUT')
  })

  it('answers a client trickling its headers with 408 in the JSON shape', async () => {
    const res = await rawExchange(portOf(app), { initial: 'POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Slow: ', trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
    expect(res.closedByServer).toBe(true)
    expect(res.elapsedMs).toBeLessThan(BOUND_MS)
    expect(res.status).toBe(408)
    expectErrorShape(res.json, 'REQUEST_TIMEOUT')
  })

  it('answers headers beyond the limit with 431 HEADERS_TOO_LARGE in the JSON shape', async () => {
    const res = await rawExchange(portOf(app), { initial: `POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, giveUpMs: 5000 })
    expect(res.status).toBe(431)
    expectErrorShape(res.json, 'HEADERS_TOO_LARGE')
    expect((res.json as { error: { requestId: string } }).error.requestId).toBe(res.headers['x-request-id'])
  })

  it('answers a malformed percent-encoding in the path with 400 in the JSON shape', async () => {
    const res = await app.inject({ method: 'POST', url: '/forms/%zz/submissions', payload: { name: 'x' } })
    expect(res.statusCode).toBe(400)
    expectErrorShape(res.json(), 'BAD_REQUEST')
    expect(res.json().error.requestId).toBe(res.headers['x-request-id'])
  })

  it('does not let a trickling delivery hold up shutdown', async () => {
    const closing = await buildTestWebhooks(db.current, timeouts)
    await closing.listen({ host: '127.0.0.1', port: 0 })
    const trickler = rawExchange(portOf(closing), { initial: slowPost('/webhooks/whatsapp', 'application/json'), trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
    await new Promise((r) => setTimeout(r, 150))
    const started = Date.now()
    await closing.close()
    expect(Date.now() - started).toBeLessThan(BOUND_MS)
    expect((await trickler).closedByServer).toBe(true)
  })
})
