import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testLogger } from '../test/apps.js'
import { useTestDatabase } from '../test/db.js'
import { createSql, type Sql } from './db.js'
import { NotifiedCache } from './notified-cache.js'

/** Polls until `check` holds (a NOTIFY is asynchronous); fails after `ms`. A generous bound, not a timing assertion. */
async function eventually(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

const deferred = <T>() => {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((r) => { resolve = r })
  return { promise, resolve }
}

/**
 * The NOTIFY-invalidated cache under the API key and experiment definition caches, against a real PostgreSQL: its own
 * pool and LISTEN, notifications sent by another connection, the listening backend killed to lose notifications.
 */
describe('a cache invalidated by NOTIFY', () => {
  const db = useTestDatabase()
  const channel = 'notified_cache_test'
  let sql: Sql
  const caches: NotifiedCache<string, string>[] = []
  beforeAll(() => {
    sql = createSql(db.current.runtimeUrl, { max: 3, quiet: true })
  })
  afterAll(async () => {
    for (const c of caches) await c.close()
    await sql.end({ timeout: 5 })
  })

  // Keys are `<tenant>:<name>`; the loader counts its calls and answers `<key>@<call>`.
  async function makeCache(ttlMs = 120_000, maxEntries = 100) {
    const cache = new NotifiedCache<string, string>(sql, testLogger(), {
      channel, ttlMs, maxEntries, listenFailedMessage: 'test cache: cannot listen',
      tenantOf: (key) => key.split(':')[0]!,
      tenantOfKey: (key) => key.split(':')[0]!,
    })
    caches.push(cache)
    await cache.start()
    return cache
  }
  let calls = 0
  const load = (key: string) => async () => `${key}@${++calls}`
  const notify = (payload: string) => db.current.owner`select pg_notify(${channel}, ${payload})`

  it('holds a value until a NOTIFY names its tenant, and everything on a NOTIFY that names none', async () => {
    const cache = await makeCache()
    const [t1, t2] = [randomUUID(), randomUUID()]
    const first = await cache.get(`${t1}:a`, load(`${t1}:a`))
    const other = await cache.get(`${t2}:a`, load(`${t2}:a`))
    expect(await cache.get(`${t1}:a`, load(`${t1}:a`))).toBe(first)
    expect(cache.size).toBe(2)

    await notify(t1)
    await eventually(() => cache.size === 1)
    expect(await cache.get(`${t1}:a`, load(`${t1}:a`))).not.toBe(first)
    expect(await cache.get(`${t2}:a`, load(`${t2}:a`))).toBe(other)

    await notify('everything')
    await eventually(() => cache.size === 0)
    expect(await cache.get(`${t2}:a`, load(`${t2}:a`))).not.toBe(other)
  })

  it('stores nothing before its LISTEN is up, and drops everything when the LISTEN is established again', async () => {
    const tenant = randomUUID()
    const idle = new NotifiedCache<string, string>(sql, testLogger(), {
      channel, ttlMs: 120_000, maxEntries: 10, listenFailedMessage: 'test cache: cannot listen', tenantOf: (key) => key.split(':')[0]!,
    })
    caches.push(idle)
    await idle.get(`${tenant}:a`, load(`${tenant}:a`))
    expect(idle.size).toBe(0)

    const cache = await makeCache()
    const held = await cache.get(`${tenant}:a`, load(`${tenant}:a`))
    expect(cache.size).toBe(1)
    // The listening connection dies, and a change is announced while it is down: that NOTIFY reaches nobody. When
    // postgres.js has listened again on a new connection, the entry is gone all the same.
    const listeners = () => db.current.owner<{ pid: number }[]>`
      select pid from pg_stat_activity where datname = current_database() and query ilike ${`listen%${channel}%`}`
    const before = (await listeners()).map((r) => r.pid)
    expect(before.length).toBeGreaterThan(0)
    await db.current.owner`select pg_terminate_backend(pid) from unnest(${before}::int[]) pid`
    await notify(tenant)
    await eventually(async () => (await listeners()).some((r) => !before.includes(r.pid)))
    await eventually(() => cache.size === 0)
    expect(await cache.get(`${tenant}:a`, load(`${tenant}:a`))).not.toBe(held)
    expect(cache.size).toBe(1)
  })

  it('trusts an entry no longer than its TTL, notified or not', async () => {
    const cache = await makeCache(150)
    const tenant = randomUUID()
    const held = await cache.get(`${tenant}:a`, load(`${tenant}:a`))
    expect(await cache.get(`${tenant}:a`, load(`${tenant}:a`))).toBe(held)
    await new Promise((r) => setTimeout(r, 200))
    expect(await cache.get(`${tenant}:a`, load(`${tenant}:a`))).not.toBe(held)
  })

  it('shares one load among concurrent misses of a key', async () => {
    const cache = await makeCache()
    const key = `${randomUUID()}:a`
    const gate = deferred<string>()
    let loads = 0
    const loader = () => { loads++; return gate.promise }
    const answers = Promise.all(Array.from({ length: 20 }, () => cache.get(key, loader)))
    gate.resolve('one')
    expect(await answers).toEqual(Array.from({ length: 20 }, () => 'one'))
    expect(loads).toBe(1)
    expect(await cache.get(key, loader)).toBe('one')
    expect(loads).toBe(1)
  })

  it('does not store a load that an invalidation overtook, whether local or by NOTIFY', async () => {
    const cache = await makeCache()
    const tenant = randomUUID()
    const key = `${tenant}:a`

    // Locally (the process that committed the change).
    const stale = deferred<string>()
    const first = cache.get(key, () => stale.promise)
    cache.forgetTenant(tenant)
    stale.resolve('stale')
    expect(await first).toBe('stale')
    expect(cache.size).toBe(0)
    expect(await cache.get(key, async () => 'fresh')).toBe('fresh')
    expect(cache.size).toBe(1)

    // By NOTIFY from elsewhere, while the load is in flight: the next caller does not join the overtaken load.
    cache.forgetAll()
    const slow = deferred<string>()
    const inFlight = cache.get(key, () => slow.promise)
    await notify(tenant)
    let overtaken = false
    await eventually(async () => {
      const answer = await Promise.race([cache.get(key, async () => 'after'), new Promise((r) => setTimeout(() => r('joined'), 10))])
      overtaken = answer === 'after'
      return overtaken
    })
    slow.resolve('before')
    expect(await inFlight).toBe('before')
    expect(await cache.get(key, async () => 'unused')).toBe('after')
  })

  it('keeps at most maxEntries, dropping the oldest first', async () => {
    const cache = await makeCache(120_000, 3)
    const tenant = randomUUID()
    for (const name of ['a', 'b', 'c', 'd']) await cache.get(`${tenant}:${name}`, load(`${tenant}:${name}`))
    expect(cache.size).toBe(3)
    expect(await cache.get(`${tenant}:a`, async () => 'reloaded')).toBe('reloaded')
  })
})
