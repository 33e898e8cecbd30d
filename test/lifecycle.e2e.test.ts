import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { OPERATOR_KEY } from './apps.js'
import { freePort } from './free-port.js'
import { isReady, ROOT, waitFor } from './processes.js'

const leaders: number[] = []

interface Product {
  pid: number
  output: () => string
  exited: Promise<number | null>
}

/**
 * Starts `npm start`'s entry point the way a terminal does: as the leader of its own process group, so that a signal
 * sent to the group (what Ctrl-C does) reaches it and everything it started in that group.
 */
function startInTerminal(env: Record<string, string>, command: string[] = [process.execPath, '--import', 'tsx', 'services/start-all.ts']): Product {
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  leaders.push(child.pid!)
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))))
  return { pid: child.pid!, output: () => out, exited }
}

const pressCtrlC = (p: Product) => process.kill(-p.pid, 'SIGINT')

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('error', () => resolve(false))
  })
}

/** Live (non-zombie) processes whose command line names the data folder: the postmaster and its children. */
async function postgresProcessesOf(dataDir: string): Promise<number[]> {
  const found: number[] = []
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')
    if (cmdline.includes(dataDir)) found.push(Number(entry))
  }
  return found
}

describe('Ctrl-C and kill -9 on npm start, as a terminal delivers them', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const pid of leaders) {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    }
    // A failed run may leave its server behind: it is in a session of its own, out of reach of the group kill.
    for (const dir of dirs) {
      const pid = Number.parseInt((await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]!, 10)
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }
    }
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })))
  })

  async function environment() {
    const dir = await mkdtemp(path.join(tmpdir(), 'wa-lifecycle-'))
    // mkdtemp makes a 0700 folder; keep this test about signals, not about private folders (see embedded-postgres tests).
    await chmod(dir, 0o755)
    dirs.push(dir)
    const ports = { pg: await freePort(), api: await freePort(), webhooks: await freePort(), emulator: await freePort() }
    const env = {
      EMBEDDED_PG_DIR: path.join(dir, 'pg'),
      EMBEDDED_PG_PORT: String(ports.pg),
      API_PORT: String(ports.api),
      WEBHOOKS_PORT: String(ports.webhooks),
      WHATSAPP_EMULATOR_PORT: String(ports.emulator),
      OPERATOR_API_KEY: OPERATOR_KEY,
      LOG_LEVEL: 'info',
    }
    return { dir, ports, env, dataDir: env.EMBEDDED_PG_DIR }
  }

  async function startReady(env: Record<string, string>, ports: { api: number; webhooks: number }, command?: string[]): Promise<Product> {
    const product = startInTerminal(env, command)
    await waitFor(
      async () => (await isReady(`http://127.0.0.1:${ports.api}`)) && (await isReady(`http://127.0.0.1:${ports.webhooks}`)),
      90_000,
      'both services ready',
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${product.output()}`)
    })
    return product
  }

  it('shuts down in order and exits 0 on every Ctrl-C, with nothing left listening', async () => {
    const { ports, env, dataDir } = await environment()
    for (let run = 1; run <= 4; run++) {
      // The first Ctrl-C lands while the product is still starting (its database is up, its servers not yet).
      const product = run === 1 ? startInTerminal(env) : await startReady(env, ports)
      if (run === 1) await waitFor(() => isListening(ports.pg), 60_000, 'the embedded PostgreSQL to listen')
      // Requests in flight while the signal lands: the worker and the pools are busy, not idle.
      const traffic = Array.from({ length: 20 }, () => fetch(`http://127.0.0.1:${ports.api}/readyz`).catch(() => null))
      pressCtrlC(product)
      const code = await product.exited
      await Promise.all(traffic)
      const output = product.output()
      expect(output, `run ${run}`).not.toMatch(/Unhandled|failed to stop cleanly|terminating connection due to administrator command/)
      expect({ run, code, output: code === 0 ? '' : output }).toEqual({ run, code: 0, output: '' })
      expect(output).toMatch(/"msg":"database stopped"/)
      for (const port of [ports.api, ports.webhooks, ports.emulator, ports.pg]) expect({ run, port, listening: await isListening(port) }).toEqual({ run, port, listening: false })
      expect(await postgresProcessesOf(dataDir)).toEqual([])
    }
  }, 300_000)

  it('exits 0 through npm start too, whose npm, shell and tsx share the group and relay the signal', async () => {
    const { ports, env } = await environment()
    const product = await startReady(env, ports, ['npm', 'start', '--silent'])
    pressCtrlC(product)
    const code = await product.exited
    expect(product.output()).not.toMatch(/Unhandled|second signal/)
    expect({ code, output: code === 0 ? '' : product.output() }).toEqual({ code: 0, output: '' })
    expect(product.output()).toMatch(/"msg":"database stopped"/)
    for (const port of Object.values(ports)) expect({ port, listening: await isListening(port) }).toEqual({ port, listening: false })
  }, 120_000)

  it('exits 0 on Ctrl-C also when the database received a signal first and is already gone', async () => {
    const { ports, env, dataDir } = await environment()
    const product = await startReady(env, ports)
    const postmaster = Number.parseInt((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]!, 10)
    process.kill(postmaster, 'SIGINT') // as a terminal did when the server shared our process group
    await waitFor(async () => !(await isListening(ports.pg)), 30_000, 'the database to stop')
    await new Promise((r) => setTimeout(r, 500)) // let the services notice
    // The services may have stopped on their own already (their database is gone); then the keypress finds no group,
    // and what counts is the same: exit 0, nothing unhandled, nothing listening.
    try {
      pressCtrlC(product)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err
    }
    const code = await product.exited
    expect(product.output()).not.toMatch(/Unhandled/)
    expect({ code, output: code === 0 ? '' : product.output() }).toEqual({ code: 0, output: '' })
    for (const port of [ports.api, ports.webhooks, ports.emulator]) expect({ port, listening: await isListening(port) }).toEqual({ port, listening: false })
  }, 120_000)

  it('after a kill -9 takes over the PostgreSQL left running, and its own Ctrl-C stops it', async () => {
    const { ports, env, dataDir } = await environment()
    const killed = await startReady(env, ports)
    process.kill(killed.pid, 'SIGKILL') // the product only: the database it started is left behind, as after a crash
    await killed.exited
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true)
    expect(await isListening(ports.pg)).toBe(true)

    const next = await startReady(env, ports)
    expect(next.output()).toMatch(/left running by a previous run/)
    pressCtrlC(next)
    expect(await next.exited).toBe(0)
    expect(next.output()).not.toMatch(/Unhandled/)
    expect(await isListening(ports.pg)).toBe(false)
    expect(await postgresProcessesOf(dataDir)).toEqual([])
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false)
  }, 240_000)
})
