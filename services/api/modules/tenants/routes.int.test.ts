import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, OPERATOR_KEY } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant } from '../../../../test/factories/tenants.js'
import type { App } from '../../../../lib/http/create-server.js'

describe('operator tenant routes', () => {
  const db = useTestDatabase()
  let app: App
  beforeAll(async () => {
    app = await buildTestApi(db.current)
  })
  afterAll(() => app.close())

  const countTenants = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from core.tenants`)[0]!.n

  it('creates a tenant and shows its first admin key exactly once', async () => {
    const res = await app.inject({
      method: 'POST', url: '/v1/tenants', headers: bearer(OPERATOR_KEY),
      payload: { name: 'Clínica Sorriso', slug: 'clinica-sorriso', defaultCountry: 'BR', timezone: 'America/Sao_Paulo' },
    })
    expect(res.statusCode).toBe(201)
    const body = res.json()
    expect(body.tenant).toMatchObject({ name: 'Clínica Sorriso', slug: 'clinica-sorriso', defaultCountry: 'BR', status: 'active' })
    expect(body.apiKey.key).toMatch(/^wak_/)
    expect(body.apiKey.role).toBe('admin')

    // The new key works, and only a hash of it is stored.
    const me = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(body.apiKey.key) })
    expect(me.json().tenant.id).toBe(body.tenant.id)
    const [stored] = await db.current.owner<{ keyHash: Buffer }[]>`select key_hash from core.api_keys where id = ${body.apiKey.id}`
    expect(stored!.keyHash.toString('utf8')).not.toContain(body.apiKey.key)
    const keys = await app.inject({ method: 'GET', url: '/v1/api-keys', headers: bearer(body.apiKey.key) })
    expect(JSON.stringify(keys.json())).not.toContain(body.apiKey.key)

    const audit = await app.inject({ method: 'GET', url: '/v1/audit-log', headers: bearer(body.apiKey.key) })
    expect(audit.json().data.map((e: { action: string }) => e.action)).toEqual(expect.arrayContaining(['tenant.created', 'api_key.created']))
  })

  it('answers 409 for a slug that is taken, and creates nothing', async () => {
    await makeTenant(db.current.sql, { slug: 'taken-slug' })
    const before = await countTenants()
    const res = await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(OPERATOR_KEY), payload: { name: 'Other', slug: 'taken-slug' } })
    expect(res.statusCode).toBe(409)
    expect(res.json().error.code).toBe('CONFLICT')
    expect(await countTenants()).toBe(before)
  })

  it('lists tenants page by page with an opaque cursor', async () => {
    for (let i = 0; i < 3; i++) await makeTenant(db.current.sql)
    const total = await countTenants()
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const res: { statusCode: number; json: () => any } = await app.inject({ method: 'GET', url: `/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: bearer(OPERATOR_KEY) })
      expect(res.statusCode).toBe(200)
      const body: { data: { id: string }[]; nextCursor: string | null } = res.json()
      seen.push(...body.data.map((t) => t.id))
      cursor = body.nextCursor
    } while (cursor)
    expect(seen.length).toBe(total)
    expect(new Set(seen).size).toBe(total)
  })

  describe('refuses bad requests and changes nothing', () => {
    const cases: Array<{ name: string; headers?: Record<string, string>; payload?: string | object; status: number; code: string; check?: (body: any) => void }> = [
      { name: 'no credentials', headers: {}, payload: { name: 'x', slug: 'xx' }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'a wrong operator key', headers: bearer('operator-wrong-key-0123456789abcdef012345'), payload: { name: 'x', slug: 'xx' }, status: 401, code: 'UNAUTHORIZED' },
      { name: 'a malformed Authorization header', headers: { authorization: 'Basic abc' }, payload: { name: 'x', slug: 'xx' }, status: 401, code: 'UNAUTHORIZED' },
      {
        name: 'malformed JSON', headers: { ...bearer(OPERATOR_KEY), 'content-type': 'application/json' }, payload: '{"name": "x", ', status: 400, code: 'BAD_REQUEST',
        check: (b) => expect(b.error.message).toMatch(/JSON/),
      },
      { name: 'a text/plain body', headers: { ...bearer(OPERATOR_KEY), 'content-type': 'text/plain' }, payload: 'name=x', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
      {
        name: 'invalid fields, each named', headers: bearer(OPERATOR_KEY), payload: { name: '', slug: 'Not A Slug', defaultCountry: 'Brazil', timezone: 'Mars/Olympus' }, status: 400, code: 'BAD_REQUEST',
        check: (b) => expect(b.error.details.map((d: { path: string }) => d.path).sort()).toEqual(['defaultCountry', 'name', 'slug', 'timezone']),
      },
      { name: 'a body over the limit', headers: { ...bearer(OPERATOR_KEY), 'content-type': 'application/json' }, payload: JSON.stringify({ name: 'x'.repeat(2_000_000), slug: 'big' }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
    ]
    it.each(cases)('$name → $status', async ({ headers, payload, status, code, check }) => {
      const before = await countTenants()
      const res = await app.inject({ method: 'POST', url: '/v1/tenants', headers: headers ?? {}, payload: payload as never })
      expect(res.statusCode).toBe(status)
      const body = res.json()
      expect(body.error).toMatchObject({ code, requestId: expect.any(String) })
      check?.(body)
      expect(await countTenants()).toBe(before)
    })

    it('refuses a tenant API key on operator routes with 403', async () => {
      const tenant = await makeTenant(db.current.sql)
      const before = await countTenants()
      const create = await app.inject({ method: 'POST', url: '/v1/tenants', headers: bearer(tenant.adminKey), payload: { name: 'x', slug: 'by-tenant' } })
      expect(create.statusCode).toBe(403)
      const list = await app.inject({ method: 'GET', url: '/v1/tenants', headers: bearer(tenant.adminKey) })
      expect(list.statusCode).toBe(403)
      expect(await countTenants()).toBe(before)
    })

    it('refuses the operator key on tenant routes with 403', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/me', headers: bearer(OPERATOR_KEY) })
      expect(res.statusCode).toBe(403)
    })
  })
})
