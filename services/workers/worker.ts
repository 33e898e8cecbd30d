import { Logger as WorkerLogger, run, type Runner } from 'graphile-worker'
import type { Config } from '../../lib/config.js'
import type { Sql } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { crontab } from './crontab.js'
import { buildTaskList } from './tasks/index.js'

export interface WorkerOptions {
  config: Config
  sql: Sql
  log: Logger
  /** The runtime role's URL: jobs run under row-level security like everything else. */
  connectionString: string
  concurrency?: number
  pollInterval?: number
}

export function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : level === 'info' ? 'info' : 'debug'
    log[method]({ worker: scope, ...meta }, message)
  })
}

export async function startWorker(options: WorkerOptions): Promise<Runner> {
  const log = options.log
  return run({
    connectionString: options.connectionString,
    concurrency: options.concurrency ?? options.config.WORKER_CONCURRENCY,
    pollInterval: options.pollInterval ?? options.config.WORKER_POLL_INTERVAL_MS,
    // We own SIGINT/SIGTERM: the worker stops as one step of the service's orderly shutdown.
    noHandleSignals: true,
    taskList: buildTaskList({ config: options.config, sql: options.sql, log }),
    crontab: crontab.join('\n'),
    logger: workerLogger(log),
    // Migrations ran already, as the owner; the runtime role only checks that they did.
    schema: 'graphile_worker',
  })
}
