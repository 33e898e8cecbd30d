import pg from 'pg'
import { isDatabaseUnavailable } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'

/** node-postgres reports a lost or unreachable server with these messages and no code. */
const PG_CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i
const isConnectionError = (err: unknown) => isDatabaseUnavailable(err) || PG_CONNECTION_MESSAGES.test((err as Error | null)?.message ?? '')

export interface QueuePool {
  pool: pg.Pool
  /** Waiters give up: connect() rejects, query() resolves empty (see below). For a runner being torn down. */
  abandon: () => void
}

/**
 * The pg pool graphile-worker runs on, made to wait out a database outage instead of failing:
 * - an 'error' listener on the pool and on every client, so a connection the server drops is logged and replaced
 *   rather than an unhandled 'error' event that kills the process;
 * - connect() retries while the server is unreachable, so a job that finished during an outage is recorded as done
 *   when the database returns (graphile-worker 0.16 retries ECONNREFUSED nowhere: its worker gives up on the job and
 *   exits, leaving it locked);
 * - query() retries too. graphile-worker calls it only from its cron, whose statements are idempotent (guarded by
 *   known_crontabs.last_execution). A cron query that fails escapes graphile-worker 0.16 as an unhandled rejection
 *   (buildRunner's `cron.promise.finally(...)` is left unhandled) and kills the process, so when the runner is torn
 *   down while cron waits, the query resolves with no rows: that minute's schedule is skipped, nothing crashes.
 * The callback form of connect() (graphile-worker's LISTEN client, which has its own back-off) is left as it is.
 */
export function createQueuePool(options: { connectionString: string; max: number; applicationName: string; log: Logger }): QueuePool {
  const log = options.log
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    application_name: options.applicationName,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  })
  pool.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'job queue connection lost'))
  pool.on('connect', (client) => client.on('error', (err) => log.debug({ err: { message: err.message } }, 'job queue client error')))

  let abandoned = false
  const sleepers = new Set<() => void>()
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        sleepers.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      sleepers.add(wake)
    })

  async function patiently<T>(op: () => Promise<T>, onAbandoned: (err: unknown) => T): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (abandoned) return onAbandoned(new Error('the job queue pool was closed'))
      try {
        return await op()
      } catch (err) {
        if (!isConnectionError(err)) throw err
        if (abandoned) return onAbandoned(err)
        await sleep(Math.min(100 * 2 ** attempt, 2_000))
      }
    }
  }

  const connect = pool.connect.bind(pool)
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<pg.QueryResult>
  pool.connect = ((callback?: Parameters<pg.Pool['connect']>[0]) =>
    callback
      ? connect(callback)
      : patiently(() => connect(), (err) => {
          throw err
        })) as pg.Pool['connect']
  pool.query = ((...args: unknown[]) =>
    typeof args.at(-1) === 'function'
      ? query(...args)
      : patiently(() => query(...args), () => ({ rows: [], rowCount: 0, command: '', oid: 0, fields: [] }) as pg.QueryResult)) as pg.Pool['query']

  return {
    pool,
    abandon: () => {
      abandoned = true
      for (const wake of [...sleepers]) wake()
    },
  }
}
