/**
 * Shared by every benchmark: a PostgreSQL of its own (embedded in a temp folder unless BENCH_DATABASE_URL is set),
 * migrated; autocannon load against loopback servers, bounded in time; and a table comparing each result with a
 * baseline measured in the same run.
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import { run } from 'graphile-worker'
import type { Config } from '../../lib/config.js'
import type { Logger } from '../../lib/logger.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { workerLogger } from '../../services/workers/worker.js'
import postgres from 'postgres'
import { deriveRuntimeUrl, DEFAULT_RUNTIME_USER, ensureDatabaseExists } from '../../lib/database.js'
import { createSql, type Sql } from '../../lib/db.js'
import { startEmbeddedPostgres } from '../../lib/embedded-postgres.js'
import { migrate } from '../../lib/migrate.js'
import { freePort } from '../../test/free-port.js'

export interface BenchDatabase {
  ownerUrl: string
  runtimeUrl: string
  owner: Sql
  sql: Sql
  close: () => Promise<void>
}

const RUNTIME_PASSWORD = 'bench_runtime_password'

/**
 * `keep`: a folder to keep the database in (an embedded server's data there, or a database named `name` on
 * BENCH_DATABASE_URL), left in place by close(), so a later run with the same folder finds what this one prepared.
 */
export async function startBenchDatabase(options: { poolMax?: number; keep?: { dir: string; name: string } } = {}): Promise<BenchDatabase> {
  let stopServer = async () => {}
  let adminUrl = process.env.BENCH_DATABASE_URL
  let dir: string | undefined
  if (!adminUrl) {
    if (options.keep) {
      await mkdir(options.keep.dir, { recursive: true })
      await chmod(options.keep.dir, 0o755)
    }
    dir = options.keep?.dir ?? await mkdtemp(path.join(tmpdir(), 'wa-bench-pg-'))
    await chmod(dir, 0o755)
    const server = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port: await freePort(), persistent: Boolean(options.keep) })
    adminUrl = server.url('postgres')
    stopServer = server.stop
  }
  const name = options.keep?.name ?? `wa_bench_${randomBytes(4).toString('hex')}`
  await ensureDatabaseExists(adminUrl, name)
  const u = new URL(adminUrl)
  u.pathname = `/${name}`
  const ownerUrl = u.toString()
  await migrate(ownerUrl, { runtimeRole: { user: DEFAULT_RUNTIME_USER, password: RUNTIME_PASSWORD } })
  const runtimeUrl = deriveRuntimeUrl(ownerUrl, DEFAULT_RUNTIME_USER, RUNTIME_PASSWORD)
  const owner = createSql(ownerUrl, { max: 4, quiet: true })
  const sql = createSql(runtimeUrl, { max: options.poolMax ?? 20, quiet: true })
  return {
    ownerUrl, runtimeUrl, owner, sql,
    close: async () => {
      await Promise.all([owner.end({ timeout: 5 }), sql.end({ timeout: 5 })])
      if (options.keep) await stopServer()
      else if (dir) {
        await stopServer()
        await rm(dir, { recursive: true, force: true })
      } else {
        const admin = postgres(adminUrl!, { max: 1, onnotice: () => {} })
        await admin`drop database if exists ${admin(name)} with (force)`
        await admin.end()
      }
    },
  }
}

export interface LoadResult {
  name: string
  requestsPerSecond: number
  p50Ms: number
  p99Ms: number
  total: number
  non2xx: number
  errors: number
}

/** autocannon against a loopback URL for a bounded time. `setupRequest` may give every request its own body. */
export async function loadTest(options: {
  name: string
  url: string
  method?: 'GET' | 'POST' | 'PUT'
  headers?: Record<string, string>
  body?: string
  setupRequest?: (req: { method?: string; path?: string; headers?: Record<string, string>; body?: string }) => { headers?: Record<string, string>; body?: string }
  connections: number
  durationSeconds: number
}): Promise<LoadResult> {
  const target = new URL(options.url)
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) throw new Error(`benchmarks target loopback only, not ${target.hostname}`)
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'POST',
    headers: options.headers,
    body: options.body,
    connections: options.connections,
    duration: Math.min(options.durationSeconds, 120),
    // setupRequest must hand back the whole request: keep autocannon's fields and overlay ours.
    ...(options.setupRequest
      ? { requests: [{ method: options.method ?? 'POST', setupRequest: ((req: Record<string, unknown>) => {
          const own = options.setupRequest!(req as never)
          return { ...req, ...own, headers: { ...(req.headers as object), ...own.headers } }
        }) as never }] }
      : {}),
  })
  return {
    name: options.name,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  }
}

export function printComparison(results: LoadResult[], baselines: string[]): void {
  const rows = results.map((r) => {
    const ratios = baselines.map((b) => {
      const base = results.find((x) => x.name === b)
      return base ? `${(r.requestsPerSecond / base.requestsPerSecond).toFixed(2)}× ${b}` : ''
    })
    return [r.name, r.requestsPerSecond.toFixed(0), r.p50Ms.toFixed(1), r.p99Ms.toFixed(1), String(r.non2xx + r.errors), ratios.filter((x) => x && !x.endsWith(` ${r.name}`)).join(', ')]
  })
  const header = ['target', 'req/s', 'p50 ms', 'p99 ms', 'failed', 'ratio']
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  console.log(line(header))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
}

/**
 * Starts a real worker (the product's task list, as the runtime role) and times it until `remaining()` reports
 * nothing left, then stops it. Bounded: gives up after `timeoutMs`.
 */
export async function runWorkerUntilDrained(options: {
  db: BenchDatabase
  config: Config
  log: Logger
  concurrency: number
  remaining: () => Promise<number>
  timeoutMs?: number
}): Promise<{ seconds: number }> {
  const started = performance.now()
  const runner = await run({
    connectionString: options.db.runtimeUrl,
    concurrency: options.concurrency,
    pollInterval: 100,
    noHandleSignals: true,
    taskList: buildTaskList({ config: options.config, sql: options.db.sql, log: options.log }),
    logger: workerLogger(options.log),
  })
  try {
    while ((await options.remaining()) > 0) {
      if (performance.now() - started > (options.timeoutMs ?? 300_000)) throw new Error('the worker did not drain the backlog in time')
      await new Promise((r) => setTimeout(r, 50))
    }
    return { seconds: (performance.now() - started) / 1000 }
  } finally {
    await runner.stop()
  }
}
