import { Logger as WorkerLogger, run, type Runner } from 'graphile-worker'
import type { Config } from '../../lib/config.js'
import type { Sql } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { useScrapeSources } from '../../lib/metrics.js'
import { jobQueueStats } from '../../lib/job-queue.js'
import { whatsappBacklog } from '../../domains/whatsapp/queries.js'
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

/**
 * graphile-worker's own lines, through our logger. Its meta carries whole jobs (payload, key, queue name) and raw
 * errors; only ids and counts are passed on, so a job key or payload can never put a person in the log.
 */
export function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const method = level === 'error' ? 'error' : level === 'warning' ? 'warn' : level === 'info' ? 'info' : 'debug'
    log[method]({ worker: pickWorkerScope(scope), ...pickWorkerMeta(meta) }, message)
  })
}

function pickWorkerScope(scope: Record<string, unknown>) {
  const { label, workerId, taskIdentifier, jobId } = scope as { label?: string; workerId?: string; taskIdentifier?: string; jobId?: string }
  return { label, workerId, taskIdentifier, jobId }
}

function pickWorkerMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {}
  const out: Record<string, unknown> = {}
  const job = meta.job as { id?: unknown; task_identifier?: unknown; attempts?: unknown; max_attempts?: unknown } | undefined
  if (job) out.job = { id: job.id, task: job.task_identifier, attempts: job.attempts, maxAttempts: job.max_attempts }
  const err = meta.error ?? meta.err ?? meta.fatalError
  if (err !== undefined) out.err = err
  for (const key of ['duration', 'success', 'failure'] as const) if (meta[key] !== undefined) out[key] = meta[key]
  return out
}

export async function startWorker(options: WorkerOptions): Promise<Runner> {
  const log = options.log
  // /metrics reads the queue and the WhatsApp backlog at scrape time, through the runtime role.
  useScrapeSources({ queue: () => jobQueueStats(options.sql), whatsappBacklog: () => whatsappBacklog(options.sql) })
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
