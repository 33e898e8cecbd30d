import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import type { App } from '../../../../lib/http/create-server.js'

describe('site keys API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())
  const create = (payload: unknown, key = tenant.adminKey) => app.inject({ method: 'POST', url: '/v1/site-keys', headers: bearer(key), payload: payload as object })
  const list = (key = tenant.adminKey, query = '') => app.inject({ method: 'GET', url: `/v1/site-keys${query}`, headers: bearer(key) })

  it('creates a site key with a public ws_ key and canonical origins, lists it, and archives it', async () => {
    const res = await create({ name: 'Clinic website', allowedOrigins: ['https://Clinic.Example:443', 'http://localhost:8080'] })
    expect(res.statusCode).toBe(201)
    const key = res.json()
    expect(key).toMatchObject({
      name: 'Clinic website', status: 'active', allowedOrigins: ['https://clinic.example', 'http://localhost:8080'],
      publicKey: expect.stringMatching(/^ws_[0-9a-f]{32}$/), archivedAt: null,
    })
    expect((await list()).json().data.map((k: { id: string }) => k.id)).toEqual([key.id])

    const archived = await app.inject({ method: 'DELETE', url: `/v1/site-keys/${key.id}`, headers: bearer(tenant.adminKey) })
    expect(archived.statusCode).toBe(200)
    expect(archived.json()).toMatchObject({ status: 'archived', archivedAt: expect.any(String) })
    expect((await list()).json().data).toEqual([])
    expect((await list(tenant.adminKey, '?includeArchived=true')).json().data.map((k: { id: string }) => k.id)).toEqual([key.id])
    const audit = await db.current.owner<{ action: string; actor: string }[]>`
      select action, actor from core.audit_log where tenant_id = ${tenant.id} and target_id = ${key.id} order by id`
    expect(audit).toEqual([
      { action: 'site_key.created', actor: expect.stringMatching(/^api_key:/) },
      { action: 'site_key.archived', actor: expect.stringMatching(/^api_key:/) },
    ])
  })

  it.each<[string, unknown]>([
    ['no origins', { name: 'Site', allowedOrigins: [] }],
    ['an origin with a path', { name: 'Site', allowedOrigins: ['https://clinic.example/page'] }],
    ['a non-http origin', { name: 'Site', allowedOrigins: ['ftp://clinic.example'] }],
    ['no name', { allowedOrigins: ['https://clinic.example'] }],
  ])('refuses %s with 400 and stores nothing', async (_, body) => {
    const res = await create(body, other.adminKey)
    expect(res.statusCode).toBe(400)
    expect((await list(other.adminKey, '?includeArchived=true')).json().data).toEqual([])
  })

  describe('security', () => {
    it('lets a read-only key list but not create or archive', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await list(readOnly.key)).statusCode).toBe(200)
      expect((await create({ name: 'Site', allowedOrigins: ['https://clinic.example'] }, readOnly.key)).statusCode).toBe(403)
    })

    it("neither lists nor archives another tenant's site key", async () => {
      const mine = (await create({ name: 'Mine', allowedOrigins: ['https://clinic.example'] })).json()
      expect((await list(other.adminKey, '?includeArchived=true')).json().data.map((k: { id: string }) => k.id)).not.toContain(mine.id)
      const res = await app.inject({ method: 'DELETE', url: `/v1/site-keys/${mine.id}`, headers: bearer(other.adminKey) })
      expect(res.statusCode).toBe(404)
      expect((await list()).json().data.find((k: { id: string }) => k.id === mine.id)).toMatchObject({ status: 'active' })
    })
  })
})
