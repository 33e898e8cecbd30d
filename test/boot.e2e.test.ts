import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { OPERATOR_KEY } from './apps.js'
import { freePort } from './free-port.js'
import { withDatabase } from './global-setup.js'
import { isReady, startEntry, waitFor, type Started } from './processes.js'

const DEMO_ADMIN_KEY = 'wak_demo0000_local-development-only-demo-admin-key-00001'

describe('npm start, as a new user runs it', () => {
  const running: Started[] = []
  const dirs: string[] = []
  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')))
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  it('boots on an embedded PostgreSQL, answers /readyz on both services, and keeps its data across restarts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'wa-e2e-'))
    await chmod(dir, 0o755)
    dirs.push(dir)
    const env = {
      EMBEDDED_PG_DIR: path.join(dir, 'pg'),
      EMBEDDED_PG_PORT: String(await freePort()),
      API_PORT: String(await freePort()),
      WEBHOOKS_PORT: String(await freePort()),
      // npm start runs the WhatsApp emulator too; keep it off the default port a developer's own npm start may hold.
      WHATSAPP_EMULATOR_PORT: String(await freePort()),
      OPERATOR_API_KEY: OPERATOR_KEY,
      LOG_LEVEL: 'warn',
    }
    const api = `http://127.0.0.1:${env.API_PORT}`
    const webhooks = `http://127.0.0.1:${env.WEBHOOKS_PORT}`

    const first = startEntry('services/start-all.ts', env)
    running.push(first)
    await waitFor(async () => (await isReady(api)) && (await isReady(webhooks)), 60_000, 'both services ready')
    // The services answer before the worker has started; the banner comes once everything has.
    await waitFor(async () => first.output().includes('WhatsApp lead platform is running'), 30_000, 'the start-up banner')

    // The demo seed ran on first boot.
    const me = await fetch(`${api}/v1/me`, { headers: { authorization: `Bearer ${DEMO_ADMIN_KEY}` } })
    expect(((await me.json()) as { tenant: { slug: string } }).tenant.slug).toBe('demo')

    const created = await fetch(`${api}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Persistent Pets', slug: 'persistent-pets' }),
    })
    expect(created.status).toBe(201)
    const { apiKey } = (await created.json()) as { apiKey: { key: string } }

    expect(await first.stop('SIGINT')).toBe(0)
    await expect(fetch(`${api}/healthz`)).rejects.toThrow()
    // The embedded server was stopped with the process, not left behind.
    const probe = postgres(`postgres://postgres:postgres@127.0.0.1:${env.EMBEDDED_PG_PORT}/postgres`, { max: 1, connect_timeout: 2 })
    await expect(probe`select 1`).rejects.toThrow()
    await probe.end()

    const second = startEntry('services/start-all.ts', env)
    running.push(second)
    await waitFor(async () => (await isReady(api)) && (await isReady(webhooks)), 60_000, 'both services ready again')
    const again = await fetch(`${api}/v1/me`, { headers: { authorization: `Bearer ${apiKey.key}` } })
    expect(((await again.json()) as { tenant: { slug: string } }).tenant.slug).toBe('persistent-pets')
    expect(await second.stop('SIGTERM')).toBe(0)
  }, 150_000)

  it('uses the server in DATABASE_URL instead when it is set', async () => {
    const server = inject('testDb')
    const name = `wa_test_e2e_${randomBytes(4).toString('hex')}`
    const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
    await admin`create database ${admin(name)}`
    const apiPort = String(await freePort())
    const proc = startEntry('services/api/main.ts', {
      DATABASE_URL: withDatabase(server.adminUrl, name),
      // Roles are shared by every database on the server; keep the password the other test files use.
      DATABASE_RUNTIME_PASSWORD: server.runtimePassword,
      API_PORT: apiPort,
      LOG_LEVEL: 'warn',
    })
    running.push(proc)
    try {
      await waitFor(() => isReady(`http://127.0.0.1:${apiPort}`), 60_000, 'api ready')
      const db = postgres(withDatabase(server.adminUrl, name), { max: 1 })
      expect((await db`select count(*)::int as n from app_private.schema_migrations`)[0]!.n).toBeGreaterThan(0)
      await db.end()
      expect(await proc.stop()).toBe(0)
    } finally {
      await admin`drop database if exists ${admin(name)} with (force)`
      await admin.end()
    }
  }, 90_000)

  it('stops at once with one line naming a bad variable', async () => {
    const proc = startEntry('services/start-all.ts', { API_PORT: 'eighty' })
    running.push(proc)
    expect(await proc.exited).toBe(78)
    expect(proc.output().trim().split('\n')).toEqual([expect.stringMatching(/^invalid configuration: API_PORT: /)])
  }, 30_000)
})
