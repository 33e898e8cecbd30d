import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeApiKey, makeTenant } from '../../../test/factories/tenants.js'
import { createSql, type Sql } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import { ApiKeyCache } from '../../../domains/tenancy/key-cache.js'
import { generateApiKey } from '../../../domains/tenancy/service.js'

// Long enough that nothing below passes because an entry merely expired: what ends trust is the invalidation.
const LONG_TTL_MS = 120_000

/** Polls until `check` holds (a NOTIFY is asynchronous); fails after `ms`. Not a timing assertion: the bound is generous. */
async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('API key cache', () => {
  const db = useTestDatabase()
  // Two API processes on one database: each its own pool (as separate processes have), its own cache and its own LISTEN.
  const instances: { sql: Sql; keys: ApiKeyCache; app: App }[] = []
  const startInstance = async (ttlMs = LONG_TTL_MS, overrides: Record<string, string> = {}) => {
    const sql = createSql(db.current.runtimeUrl, { max: 3, quiet: true })
    const keys = new ApiKeyCache(sql, testLogger(), { ttlMs })
    await keys.start()
    const app = await buildTestApi(db.current, overrides, { sql, apiKeys: keys })
    instances.push({ sql, keys, app })
    return { app, keys }
  }
  let a: App
  let b: App
  beforeAll(async () => {
    a = (await startInstance()).app
    b = (await startInstance()).app
  })
  afterAll(async () => {
    for (const i of instances) {
      await i.app.close()
      await i.keys.close()
      await i.sql.end({ timeout: 5 })
    }
  })

  const me = (app: App, key: string) => app.inject({ method: 'GET', url: '/v1/me', headers: bearer(key) }).then((r) => r.statusCode)
  // Behind every trigger's back (the owner may switch them off for its session): what the cache alone decides.
  const silently = (fn: (tx: Sql) => Promise<unknown>) =>
    db.current.owner.begin(async (tx) => {
      await tx`set local session_replication_role = replica`
      await fn(tx as unknown as Sql)
    })

  it('answers a key it has seen without looking it up again, for at most its TTL', async () => {
    const tenant = await makeTenant(db.current.sql)
    const short = await startInstance(400)
    const key = await makeApiKey(db.current.sql, tenant)
    expect(await me(a, key.key)).toBe(200)
    expect(await me(short.app, key.key)).toBe(200)
    expect(short.keys.size).toBe(1)
    // Revoked with no NOTIFY: only a cache answers 200 now.
    await silently((tx) => tx`update core.api_keys set revoked_at = now() where id = ${key.id}`)
    expect(await me(a, key.key)).toBe(200)
    expect(await me(short.app, key.key)).toBe(200)
    // The TTL bounds how long a missed notification could keep a key trusted.
    await eventually(async () => (await me(short.app, key.key)) === 401)
  })

  it('refuses a key revoked through this process on the very next request', async () => {
    const tenant = await makeTenant(db.current.sql)
    const key = await makeApiKey(db.current.sql, tenant, 'admin')
    expect(await me(a, key.key)).toBe(200)
    expect(await me(a, key.key)).toBe(200)
    const revoked = await a.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.adminKey) })
    expect(revoked.statusCode).toBe(200)
    expect(await me(a, key.key)).toBe(401)
    // The tenant's other keys are looked up afresh, and still work.
    expect(await me(a, tenant.adminKey)).toBe(200)
  })

  it('refuses it in another process once the NOTIFY arrives', async () => {
    const tenant = await makeTenant(db.current.sql)
    const key = await makeApiKey(db.current.sql, tenant, 'admin')
    const other = await makeApiKey(db.current.sql, tenant, 'admin')
    expect(await me(b, key.key)).toBe(200)
    expect(await me(b, other.key)).toBe(200)
    // b trusts both from memory now (the previous test shows a cached key survives a silent revoke).
    await silently((tx) => tx`update core.api_keys set revoked_at = now() where id = ${other.id}`)
    expect(await me(b, other.key)).toBe(200)

    const revoked = await a.inject({ method: 'DELETE', url: `/v1/api-keys/${key.id}`, headers: bearer(tenant.adminKey) })
    expect(revoked.statusCode).toBe(200)
    expect(await me(a, key.key)).toBe(401)
    await eventually(async () => (await me(b, key.key)) === 401)
    // The notification dropped the tenant's keys: the silently revoked one is looked up again and refused too.
    expect(await me(b, other.key)).toBe(401)
  })

  it('drops a key whose role changed, a suspended tenant and a deleted tenant, whoever changed them', async () => {
    const tenant = await makeTenant(db.current.sql)
    const key = await makeApiKey(db.current.sql, tenant, 'admin')
    const write = (app: App) => app.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(key.key), payload: { name: 'x', role: 'read_only' } }).then((r) => r.statusCode)
    expect(await write(a)).toBe(201)
    expect(await write(b)).toBe(201)

    await db.current.owner`update core.api_keys set role = 'read_only' where id = ${key.id}`
    await eventually(async () => (await write(a)) === 403 && (await write(b)) === 403)
    expect(await me(a, key.key)).toBe(200)
    expect(await me(b, key.key)).toBe(200)

    await db.current.owner`update core.tenants set status = 'suspended' where id = ${tenant.id}`
    await eventually(async () => (await me(a, key.key)) === 401 && (await me(b, key.key)) === 401)
    await db.current.owner`update core.tenants set status = 'active' where id = ${tenant.id}`
    await eventually(async () => (await me(a, key.key)) === 200 && (await me(b, key.key)) === 200)

    await db.current.owner`delete from core.tenants where id = ${tenant.id}`
    await eventually(async () => (await me(a, key.key)) === 401 && (await me(b, key.key)) === 401)
  })

  it('never holds a wrong key: each try is counted by the failure limiter, and a key accepted later works at once', async () => {
    const tenant = await makeTenant(db.current.sql)
    const limited = await startInstance(LONG_TTL_MS, { AUTH_FAILURE_LIMIT_PER_MINUTE: '3' })
    const guess = generateApiKey()
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push(await me(limited.app, guess.key))
    expect(statuses).toEqual([401, 401, 401, 429])
    expect(limited.keys.size).toBe(0)

    // Not cached as unknown either: once the key exists, its first request is accepted.
    const fresh = generateApiKey()
    expect(await me(a, fresh.key)).toBe(401)
    await db.current.owner`
      insert into core.api_keys (tenant_id, name, role, prefix, key_hash, created_by)
      values (${tenant.id}, 'late', 'read_only', ${fresh.prefix}, ${fresh.hash}, 'test')`
    expect(await me(a, fresh.key)).toBe(200)
  })

  it('looks every key up when its TTL is 0', async () => {
    const tenant = await makeTenant(db.current.sql)
    const off = await startInstance(0)
    const key = await makeApiKey(db.current.sql, tenant)
    expect(await me(off.app, key.key)).toBe(200)
    expect(off.keys.size).toBe(0)
    await silently((tx) => tx`update core.api_keys set revoked_at = now() where id = ${key.id}`)
    expect(await me(off.app, key.key)).toBe(401)
  })
})
