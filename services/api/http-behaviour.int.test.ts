import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, OPERATOR_KEY, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant } from '../../test/factories/tenants.js'
import { createSql } from '../../lib/db.js'
import { readMigrationFiles } from '../../lib/migrate.js'
import type { App } from '../../lib/http/create-server.js'
import { buildApiApp } from './app.js'

describe('API service behaviour shared by every route', () => {
  const db = useTestDatabase()
  let app: App
  beforeAll(async () => {
    app = await buildTestApi(db.current)
  })
  afterAll(() => app.close())

  it('answers unknown routes with a JSON 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/nothing-here?x=1' })
    expect(res.statusCode).toBe(404)
    expect(res.json().error).toMatchObject({ code: 'NOT_FOUND', message: 'no route GET /v1/nothing-here' })
  })

  it('echoes a caller-supplied request id, and makes one otherwise', async () => {
    const given = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'trace-1234abcd' } })
    expect(given.headers['x-request-id']).toBe('trace-1234abcd')
    const made = await app.inject({ method: 'GET', url: '/v1/me' })
    expect(made.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(made.json().error.requestId).toBe(made.headers['x-request-id'])
  })

  it('serves an OpenAPI document generated from the route schemas, and a docs page', async () => {
    const doc = await app.inject({ method: 'GET', url: '/openapi.json' })
    expect(doc.statusCode).toBe(200)
    const spec = doc.json()
    expect(spec.openapi).toMatch(/^3\./)
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/tenants/', '/v1/me/', '/v1/api-keys/', '/v1/api-keys/{keyId}']))
    expect(spec.paths['/v1/tenants/'].post.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['name', 'slug']))
    const docs = await app.inject({ method: 'GET', url: '/docs/' })
    expect(docs.statusCode).toBe(200)
    expect(docs.headers['content-type']).toMatch(/html/)
  })

  it('is alive and ready when the database answers and migrations are current', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' })
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
  })

  it('is not ready while a migration file on disk is not applied', async () => {
    const migrations = [...(await readMigrationFiles()), { name: '9999_add_future_thing.sql', checksum: 'x', text: '' }]
    const future = await buildApiApp({ config: testConfig(), sql: db.current.sql, log: testLogger(), migrations })
    const res = await future.inject({ method: 'GET', url: '/readyz' })
    expect(res.statusCode).toBe(503)
    expect(res.json()).toEqual({ status: 'migrations_pending', pending: ['9999_add_future_thing.sql'] })
    await future.close()
  })

  it('answers 503 with Retry-After, not 500, when the database is unreachable', async () => {
    const dead = createSql('postgres://app_runtime:x@127.0.0.1:1/nowhere', { max: 1 })
    const down = await buildApiApp({ config: testConfig(), sql: dead, log: testLogger(), migrations: await readMigrationFiles() })
    const tenant = await makeTenant(db.current.sql)
    const res = await down.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBe('5')
    expect(res.json().error.code).toBe('UNAVAILABLE')
    expect((await down.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503)
    await down.close()
    await dead.end()
  })

  it('rate limits per credential with 429 and Retry-After', async () => {
    const limited = await buildTestApi(db.current, { API_RATE_LIMIT_PER_MINUTE: '3' })
    const tenant = await makeTenant(db.current.sql)
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await limited.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })).statusCode)
    expect(statuses).toEqual([200, 200, 200, 429])
    const res = await limited.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })
    expect(res.json().error.code).toBe('RATE_LIMITED')
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0)
    // Another credential has its own budget.
    expect((await limited.inject({ method: 'GET', url: '/v1/tenants', headers: bearer(OPERATOR_KEY) })).statusCode).toBe(200)
    await limited.close()
  })
})
