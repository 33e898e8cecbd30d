import http from 'node:http'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, OPERATOR_KEY, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { expectErrorShape, portOf, rawExchange } from '../../test/raw-http.js'
import { withTenant, type Sql } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { encodeCursor } from '../../lib/pagination.js'
import { createHttpServer } from '../../lib/http/create-server.js'

const inventedKey = (i: number) => `wak_${String(i).padStart(8, '0')}_${'x'.repeat(32)}`

/** The runtime pool, counting the statements it is asked to run: proves which requests reach the database. */
function countingSql(sql: Sql): { sql: Sql; count: () => number } {
  let calls = 0
  const proxy = new Proxy(sql, { apply: (target, self, args) => { calls++; return Reflect.apply(target as never, self, args) } })
  return { sql: proxy, count: () => calls }
}


describe('API edge: what an attacker or a broken client can do before a route runs', () => {
  const db = useTestDatabase()

  describe('failed authentications are limited per client address', () => {
    it('answers 429 with Retry-After once an address has presented too many wrong keys, without looking the key up', async () => {
      const counted = countingSql(db.current.sql)
      const app = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '5' }, { sql: counted.sql })
      try {
        const statuses: number[] = []
        for (let i = 0; i < 5; i++) statuses.push((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)) })).statusCode)
        expect(statuses).toEqual([401, 401, 401, 401, 401])

        const lookupsBefore = counted.count()
        for (let i = 5; i < 25; i++) {
          const res = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)) })
          expect(res.statusCode).toBe(429)
          expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
          expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60)
          expect(expectErrorShape(res.json(), 'RATE_LIMITED').requestId).toBe(res.headers['x-request-id'])
        }
        expect(counted.count()).toBe(lookupsBefore)
      } finally {
        await app.close()
      }
    })

    it('blocks the guessing address even when it finally presents a real key, and nobody else', async () => {
      const tenant = await makeTenant(db.current.sql)
      const app = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' })
      try {
        for (let i = 0; i < 3; i++) await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)), remoteAddress: '198.51.100.7' })
        expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey), remoteAddress: '198.51.100.7' })).statusCode).toBe(429)
        expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey), remoteAddress: '198.51.100.8' })).statusCode).toBe(200)
      } finally {
        await app.close()
      }
    })

    it('counts only failures: an address using its valid key all day is never limited', async () => {
      const tenant = await makeTenant(db.current.sql)
      const app = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '2' })
      try {
        for (let i = 0; i < 6; i++) expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
        expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(1)) })).statusCode).toBe(401)
        expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
      } finally {
        await app.close()
      }
    })

    it('takes the client address from X-Forwarded-For only when TRUST_PROXY says so', async () => {
      const trusting = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: 'true' })
      const untrusting = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '2' })
      try {
        const from = (app: App, client: string, i: number) =>
          app.inject({ method: 'GET', url: '/v1/me', headers: { ...bearer(inventedKey(i)), 'x-forwarded-for': client } }).then((r) => r.statusCode)
        // Behind a trusted proxy, each client has its own budget.
        expect([await from(trusting, '203.0.113.1', 1), await from(trusting, '203.0.113.1', 2), await from(trusting, '203.0.113.1', 3)]).toEqual([401, 401, 429])
        expect(await from(trusting, '203.0.113.2', 4)).toBe(401)
        // Without one, a forged header is not a fresh budget: the socket address is what counts.
        expect([await from(untrusting, '203.0.113.1', 1), await from(untrusting, '203.0.113.2', 2), await from(untrusting, '203.0.113.3', 3)]).toEqual([401, 401, 429])
      } finally {
        await Promise.all([trusting.close(), untrusting.close()])
      }
    })

    it('counts an IPv6 client per /64, so rotating addresses inside its prefix does not reset the budget', async () => {
      const app = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '2' })
      try {
        const from = (ip: string, i: number) => app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)), remoteAddress: ip }).then((r) => r.statusCode)
        expect([await from('2001:db8:1:2::1', 1), await from('2001:db8:1:2:aaaa::9', 2), await from('2001:db8:1:2:ffff:ffff:ffff:ffff', 3)]).toEqual([401, 401, 429])
        expect(await from('2001:db8:1:3::1', 4)).toBe(401)
      } finally {
        await app.close()
      }
    })

    it('keeps answering (and limiting, per process) when Redis is down: never a 500, never a hang', async () => {
      // A real client pointed at a port nobody listens on.
      const redis = new Redis('redis://127.0.0.1:1', { connectTimeout: 200, maxRetriesPerRequest: 1, lazyConnect: false, retryStrategy: () => 200 })
      redis.on('error', () => {})
      const app = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '2' }, { redis })
      try {
        const statuses: number[] = []
        for (let i = 0; i < 4; i++) statuses.push((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)), remoteAddress: '192.0.2.50' })).statusCode)
        // The global rate limit may also count through Redis; what matters here is the authentication answer.
        expect(statuses.slice(0, 2)).toEqual([401, 401])
        expect(statuses.slice(2)).toEqual([429, 429])
        const tenant = await makeTenant(db.current.sql)
        expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
      } finally {
        await app.close()
        redis.disconnect()
      }
    })

    describe.skipIf(!process.env.TEST_REDIS_URL)('with Redis (TEST_REDIS_URL)', () => {
      it('shares the failure counters between API instances', async () => {
        const redis = new Redis(process.env.TEST_REDIS_URL!)
        const ip = `192.0.2.${Math.floor(Math.random() * 200) + 10}`
        await redis.del(`wa-api-authfail:${ip}`)
        const a = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' }, { redis })
        const b = await buildTestApi(db.current, { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' }, { redis })
        try {
          const hit = (app: App, i: number) => app.inject({ method: 'GET', url: '/v1/me', headers: bearer(inventedKey(i)), remoteAddress: ip }).then((r) => r.statusCode)
          expect([await hit(a, 1), await hit(b, 2), await hit(a, 3), await hit(b, 4)]).toEqual([401, 401, 401, 429])
          expect(await redis.pttl(`wa-api-authfail:${ip}`)).toBeGreaterThan(0)
        } finally {
          await Promise.all([a.close(), b.close()])
          await redis.del(`wa-api-authfail:${ip}`)
          redis.disconnect()
        }
      })
    })
  })

  describe('the rate limit cannot be bypassed by respelling the credential', () => {
    it('answers 429 to every spelling of a key whose budget one spelling used up', async () => {
      const tenant = await makeTenant(db.current.sql)
      const app = await buildTestApi(db.current, { API_RATE_LIMIT_PER_MINUTE: '3' })
      try {
        for (let i = 0; i < 3; i++) expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
        const spellings = [`Bearer ${tenant.adminKey}`, `bearer ${tenant.adminKey}`, `BEARER ${tenant.adminKey}`, `Bearer   ${tenant.adminKey}`,
          `Bearer\t${tenant.adminKey}`, `bEaReR ${tenant.adminKey}   `, `  Bearer ${tenant.adminKey}`]
        for (const authorization of spellings) {
          const res = await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization } })
          expect({ authorization, status: res.statusCode }).toEqual({ authorization, status: 429 })
        }
      } finally {
        await app.close()
      }
    })

    it('still accepts every spelling of a valid key while there is budget', async () => {
      const tenant = await makeTenant(db.current.sql)
      const app = await buildTestApi(db.current)
      try {
        for (const authorization of [`bearer ${tenant.adminKey}`, `BEARER \t ${tenant.adminKey}  `]) {
          expect((await app.inject({ method: 'GET', url: '/v1/me', headers: { authorization } })).statusCode).toBe(200)
        }
      } finally {
        await app.close()
      }
    })
  })

  describe('one error shape for what goes wrong before a route', () => {
    let app: App
    let tenant: TestTenant
    let leadId: string
    beforeAll(async () => {
      app = await buildTestApi(db.current)
      await app.listen({ host: '127.0.0.1', port: 0 })
      tenant = await makeTenant(db.current.sql)
      leadId = await withTenant(db.current.sql, tenant.id, async (tx) => (await makeLead(tx, tenant.id, { name: 'Edge Case', email: 'edge@example.com', source: 'web_form' })).id)
    })
    afterAll(() => app.close())

    it('answers headers beyond the limit with 431 HEADERS_TOO_LARGE in the JSON shape', async () => {
      const res = await rawExchange(portOf(app), { initial: `GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, giveUpMs: 5000 })
      expect(res.status).toBe(431)
      expect(res.headers['content-type']).toMatch(/^application\/json/)
      expect(expectErrorShape(res.json, 'HEADERS_TOO_LARGE').requestId).toBe(res.headers['x-request-id'])
    })

    it('answers bytes that are not HTTP with 400 in the JSON shape', async () => {
      const res = await rawExchange(portOf(app), { initial: 'HELLO THERE\r\n\r\n', giveUpMs: 5000 })
      expect(res.status).toBe(400)
      expectErrorShape(res.json, 'BAD_REQUEST')
    })

    it('answers a malformed percent-encoding in the path with 400 in the JSON shape', async () => {
      for (const url of ['/v1/leads/%zz', '/v1/leads/%zz/timeline']) {
        const res = await app.inject({ method: 'GET', url, headers: bearer(tenant.adminKey) })
        expect(res.statusCode).toBe(400)
        expect(expectErrorShape(res.json(), 'BAD_REQUEST').requestId).toBe(res.headers['x-request-id'])
      }
      // Over a real socket too: the same answer a client gets.
      const raw = await rawExchange(portOf(app), { initial: 'GET /v1/leads/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', giveUpMs: 5000 })
      expect(raw.status).toBe(400)
      expectErrorShape(raw.json, 'BAD_REQUEST')
    })

    const forged = [
      ['not base64 JSON at all', 'garbage!!'],
      ['a time that is not a time', encodeCursor({ at: 'yesterday', id: '1' })],
      ['a 31st of February', encodeCursor({ at: '2025-02-31 10:00:00+00', id: '00000000-0000-4000-8000-000000000000' })],
      ['an id beyond bigint', encodeCursor({ at: '2025-03-01 10:00:00+00', id: '99999999999999999999' })],
      ['an id that is no id', encodeCursor({ at: '2025-03-01 10:00:00+00', id: "1' or '1'='1" })],
      ['an array', encodeCursor([1, 2])],
    ] as const
    it.each(forged)('refuses a forged cursor (%s) on every lead listing with 400 naming cursor', async (_story, cursor) => {
      for (const path of ['/v1/leads', `/v1/leads/${leadId}/timeline`, `/v1/leads/${leadId}/messages`, '/v1/leads/merges']) {
        const res = await app.inject({ method: 'GET', url: `${path}?cursor=${encodeURIComponent(cursor)}`, headers: bearer(tenant.adminKey) })
        expect({ path, status: res.statusCode }).toEqual({ path, status: 400 })
        expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: 'querystring', path: 'cursor' }] })
      }
    })

    const forgedTimes = [
      ['a time that is not a time', { updatedAt: 'yesterday', createdAt: 'yesterday', at: 'yesterday', id: '00000000-0000-4000-8000-000000000000' }],
      ['a 31st of February', { updatedAt: '2025-02-31 10:00:00+00', createdAt: '2025-02-31 10:00:00+00', at: '2025-02-31 10:00:00+00', id: '00000000-0000-4000-8000-000000000000' }],
      ['an id that is no uuid', { updatedAt: '2025-03-01 10:00:00+00', createdAt: '2025-03-01 10:00:00+00', at: '2025-03-01 10:00:00+00', id: '1' }],
    ] as const
    it.each(forgedTimes)('refuses a forged cursor (%s) on conversations, messages and forms with 400 naming cursor', async (_story, value) => {
      for (const path of ['/v1/conversations', '/v1/messages', '/v1/forms']) {
        const res = await app.inject({ method: 'GET', url: `${path}?cursor=${encodeCursor(value)}`, headers: bearer(tenant.adminKey) })
        expect({ path, status: res.statusCode }).toEqual({ path, status: 400 })
        expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: 'querystring', path: 'cursor' }] })
      }
    })

    it('still pages with the cursors it hands out', async () => {
      await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: 'Second', email: 'second@example.com', source: 'web_form' }))
      const first = await app.inject({ method: 'GET', url: '/v1/leads?limit=1', headers: bearer(tenant.adminKey) })
      const next = await app.inject({ method: 'GET', url: `/v1/leads?limit=1&cursor=${first.json().nextCursor}`, headers: bearer(tenant.adminKey) })
      expect(next.statusCode).toBe(200)
      expect(next.json().data).toHaveLength(1)
      expect(next.json().data[0].id).not.toBe(first.json().data[0].id)
    })

    it('refuses an operator replay of an id too large for its column with 400, and pages of deliveries likewise', async () => {
      for (const url of ['/v1/ops/whatsapp/deliveries/99999999999999999999/replay', '/v1/ops/whatsapp/deliveries/9223372036854775808/replay']) {
        const res = await app.inject({ method: 'POST', url, headers: bearer(OPERATOR_KEY) })
        expect(res.statusCode).toBe(400)
        expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: 'params', path: 'deliveryId' }] })
      }
      const largest = await app.inject({ method: 'POST', url: '/v1/ops/whatsapp/deliveries/9223372036854775807/replay', headers: bearer(OPERATOR_KEY) })
      expect(largest.statusCode).toBe(404)
      const page = await app.inject({ method: 'GET', url: '/v1/ops/whatsapp/deliveries?before=99999999999999999999', headers: bearer(OPERATOR_KEY) })
      expect(page.statusCode).toBe(400)
    })

    it('keeps refusing a form inbox replay of a malformed or oversized id with 400 (its params are a uuid)', async () => {
      for (const id of ['99999999999999999999', 'not-a-uuid']) {
        const res = await app.inject({ method: 'POST', url: `/v1/forms/inbox/${id}/replay`, headers: bearer(tenant.adminKey) })
        expect(res.statusCode).toBe(400)
        expectErrorShape({ error: { ...res.json().error, details: undefined } }, 'BAD_REQUEST')
      }
    })
  })

  it('answers 400, not 500, when the database refuses a value validation let through (defence in depth)', async () => {
    const config = testConfig()
    const app = createHttpServer({ logger: testLogger(), bodyLimit: 1024, trustProxy: false, timeouts: config })
    app.get('/cast/:value', async (req) => db.current.sql`select ${(req.params as { value: string }).value}::bigint as n`)
    try {
      for (const value of ['99999999999999999999', 'twelve']) {
        const res = await app.inject({ method: 'GET', url: `/cast/${value}` })
        expect(res.statusCode).toBe(400)
        expectErrorShape(res.json(), 'BAD_REQUEST')
      }
    } finally {
      await app.close()
    }
  })

  describe('slow clients are cut off within a bounded time', () => {
    // Short timeouts so the test is quick; the trickle would go on for far longer than the bound.
    const timeouts = { HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' }
    const BOUND_MS = 2500
    const TRICKLE_FOR_MS = 10_000
    let app: App
    beforeAll(async () => {
      app = await buildTestApi(db.current, timeouts)
      await app.listen({ host: '127.0.0.1', port: 0 })
    })
    afterAll(() => app.close())

    it('answers a client trickling its headers with 408 in the JSON shape and closes the connection', async () => {
      const res = await rawExchange(portOf(app), { initial: 'GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: ', trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
      expect(res.closedByServer).toBe(true)
      expect(res.elapsedMs).toBeLessThan(BOUND_MS)
      expect(res.status).toBe(408)
      expectErrorShape(res.json, 'REQUEST_TIMEOUT')
    })

    it('answers a client trickling its body with 408 and closes the connection', async () => {
      const res = await rawExchange(portOf(app), {
        initial: `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR_KEY}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"name":"`,
        trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS,
      })
      expect(res.closedByServer).toBe(true)
      expect(res.elapsedMs).toBeLessThan(BOUND_MS)
      expect(res.status).toBe(408)
      expectErrorShape(res.json, 'REQUEST_TIMEOUT')
    })

    it('closes a connection that never sends anything', async () => {
      const res = await rawExchange(portOf(app), { initial: '', giveUpMs: TRICKLE_FOR_MS })
      expect(res.closedByServer).toBe(true)
      expect(res.elapsedMs).toBeLessThan(BOUND_MS)
    })

    it('does not let a keep-alive connection whose response ends during shutdown hold it up', async () => {
      const config = testConfig(timeouts)
      const server = createHttpServer({ logger: testLogger(), bodyLimit: 1024, trustProxy: false, timeouts: config })
      server.get('/slow', async () => { await new Promise((r) => setTimeout(r, 300)); return { ok: true } })
      await server.listen({ host: '127.0.0.1', port: 0 })
      const agent = new http.Agent({ keepAlive: true })
      try {
        const answered = new Promise<number>((resolve, reject) => {
          http.get({ host: '127.0.0.1', port: portOf(server), path: '/slow', agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode!)) }).on('error', reject)
        })
        await new Promise((r) => setTimeout(r, 100))
        const started = Date.now()
        await server.close()
        // Before: close() waited for the client's keep-alive connection, HTTP_KEEP_ALIVE_TIMEOUT_MS (72 s).
        expect(Date.now() - started).toBeLessThan(BOUND_MS)
        expect(await answered).toBe(200)
      } finally {
        agent.destroy()
      }
    })

    it('does not let a trickling client hold up shutdown', async () => {
      const closing = await buildTestApi(db.current, timeouts)
      await closing.listen({ host: '127.0.0.1', port: 0 })
      const port = portOf(closing)
      const body = rawExchange(port, {
        initial: `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${OPERATOR_KEY}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{"name":"`,
        trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS,
      })
      const headers = rawExchange(port, { initial: 'GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Slow: ', trickle: 'a', everyMs: 100, giveUpMs: TRICKLE_FOR_MS })
      // Both are mid-request when shutdown starts.
      await new Promise((r) => setTimeout(r, 150))
      const started = Date.now()
      await closing.close()
      expect(Date.now() - started).toBeLessThan(BOUND_MS)
      const [b, h] = await Promise.all([body, headers])
      expect(b.closedByServer && h.closedByServer).toBe(true)
    })
  })
})
