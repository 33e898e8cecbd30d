import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import type { App } from '../../../../lib/http/create-server.js'

describe('API keys', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  it('creates a read-only key that can read but not write', async () => {
    const created = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(tenant.adminKey), payload: { name: 'dashboard', role: 'read_only' } })
    expect(created.statusCode).toBe(201)
    const key = created.json()
    expect(key).toMatchObject({ name: 'dashboard', role: 'read_only', revokedAt: null })

    const me = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(key.key) })
    expect(me.json().apiKey).toEqual({ id: key.id, role: 'read_only' })

    const before = await db.current.owner`select count(*)::int as n from core.api_keys where tenant_id = ${tenant.id}`
    const write = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(key.key), payload: { name: 'sneaky', role: 'admin' } })
    expect(write.statusCode).toBe(403)
    expect(write.json().error.code).toBe('FORBIDDEN')
    const after = await db.current.owner`select count(*)::int as n from core.api_keys where tenant_id = ${tenant.id}`
    expect(after).toEqual(before)
  })

  it('records when a key was last used', async () => {
    const key = await makeApiKey(db.current.sql, tenant)
    await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(key.key) })
    const [row] = await db.current.owner<{ lastUsedAt: Date | null }[]>`select last_used_at from core.api_keys where id = ${key.id}`
    expect(row!.lastUsedAt).toBeInstanceOf(Date)
  })

  it('revokes a key: it stops working at once, and revoking again is harmless', async () => {
    const key = await makeApiKey(db.current.sql, tenant, 'admin')
    expect((await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(key.key) })).statusCode).toBe(200)
    const revoked = await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.adminKey) })
    expect(revoked.statusCode).toBe(200)
    expect(revoked.json().revokedAt).not.toBeNull()
    const again = await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.adminKey) })
    expect(again.json().revokedAt).toBe(revoked.json().revokedAt)

    const refused = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(key.key) })
    expect(refused.statusCode).toBe(401)
    const list = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(tenant.adminKey) })
    expect(list.json().data.find((k: { id: string }) => k.id === key.id).revokedAt).not.toBeNull()
  })

  describe('errors', () => {
    it.each([
      { name: 'an unknown role', payload: { name: 'x', role: 'owner' }, status: 400, field: 'role' },
      { name: 'an empty name', payload: { name: '  ', role: 'admin' }, status: 400, field: 'name' },
    ])('refuses $name with 400 naming the field', async ({ payload, status, field }) => {
      const res = await app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(tenant.adminKey), payload })
      expect(res.statusCode).toBe(status)
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(field)
    })

    it('answers 400 for a key id that is not a uuid, and 404 for one that does not exist', async () => {
      expect((await app.inject({ method: 'DELETE', url: '/v1/api-keys/nope', headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
      const missing = await app.inject({ method: 'DELETE', url: '/v1/api-keys/6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11', headers: bearer(tenant.adminKey) })
      expect(missing.statusCode).toBe(404)
    })

    it('gives the same 401 for a garbage token, a well-formed unknown key and a revoked key', async () => {
      const key = await makeApiKey(db.current.sql, tenant)
      await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.adminKey) })
      const bodies = []
      for (const token of ['garbage', `wak_abcdefgh_${'A'.repeat(43)}`, key.key]) {
        const res = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(token) })
        expect(res.statusCode).toBe(401)
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/)
        bodies.push(res.json().error.message)
      }
      expect(new Set(bodies).size).toBe(1)
    })
  })

  describe('security: another tenant', () => {
    it("can neither list, revoke nor use this tenant's keys", async () => {
      const other = await makeTenant(db.current.sql)
      const key = await makeApiKey(db.current.sql, tenant)

      const list = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(other.adminKey) })
      expect(list.json().data.map((k: { id: string }) => k.id)).not.toContain(key.id)

      const revoke = await app.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(other.adminKey) })
      expect(revoke.statusCode).toBe(404)
      const [row] = await db.current.owner<{ revokedAt: Date | null }[]>`select revoked_at from core.api_keys where id = ${key.id}`
      expect(row!.revokedAt).toBeNull()

      const me = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(other.adminKey) })
      expect(me.json().tenant.id).toBe(other.id)
    })
  })
})
