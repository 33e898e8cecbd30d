import { EventEmitter } from 'node:events'
import { hostname } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Logger as WorkerLogger, run, type Runner, type WorkerEvents } from 'graphile-worker'
import type { Config } from '../../lib/config.js'
import { createSql, isDatabaseUnavailable, type Sql } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import { useScrapeSources } from '../../lib/metrics.js'
import { jobQueueStats } from '../../lib/job-queue.js'
import { whatsappBacklog } from '../../domains/whatsapp/queries.js'
import { rollupHealth } from '../../domains/analytics/rollups.js'
import { crontab } from './crontab.js'
import { recordHeartbeats, unlockJobsOfSilentWorkers } from '../../lib/job-queue.js'
import { createQueuePool, type QueuePool } from './queue-pool.js'
import { armSelfSchedulingJobs, buildTaskList } from './tasks/index.js'

export interface WorkerOptions {
  config: Config
  log: Logger
  /**
   * The runtime role's URL: jobs run under row-level security like everything else. Each runner opens its own pools
   * on it (see Generation), and heartbeats have a connection of their own, so no load elsewhere delays a beat.
   */
  connectionString: string
  concurrency?: number
  pollInterval?: number
  /** A pool /metrics may read the queue and the WhatsApp backlog through at scrape time (the process's own). */
  metricsSql?: Sql
}

export interface WorkerHandle {
  /** Lets running jobs finish, then stops; waits at most ~10 s for a database that does not answer. */
  stop: () => Promise<void>
  /** The graphile-worker worker ids beating now (what they write into jobs.locked_by). */
  workerIds: () => string[]
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

/**
 * One graphile-worker runner with the pools it runs on. A process replaces its generation, without exiting, when the
 * runner can no longer be trusted (fenced, or one of its workers gave up on a job) or ended on its own.
 */
interface Generation {
  id: number
  state: 'starting' | 'running' | 'retiring' | 'fenced'
  queue: QueuePool
  /** The tasks' own pool, so fencing can cut their transactions off without touching anyone else's. */
  sql: Sql
  runner: Runner | null
  workerIds: Set<string>
  stopped?: Promise<void>
}

const PROCESS_LABEL = `${hostname()}:${process.pid}`

/**
 * Runs the job queue in this process and keeps it running through database outages, with heartbeats that let other
 * processes take over the jobs of a worker that died.
 *
 * Heartbeats. Every WORKER_HEARTBEAT_TIMEOUT_MS / 6 this process records a beat for each graphile-worker worker id it
 * runs (ops.worker_heartbeats; a worker beats once before it takes its first job), and hands back the jobs of worker
 * ids, of any process, whose last beat is older than the timeout. A kill -9'd worker's jobs are thus running again
 * about one timeout after its death; a live worker, however slow its job, keeps beating and keeps its jobs.
 *
 * Fencing: a job must never run twice at the same time. Others may take over our jobs once the database has seen no
 * beat from us for the timeout T. So when this process has not completed a beat for T/2 (timed from when the beat was
 * sent, which is no later than the time the database stamped on it), it stops trusting its runner: the runner's pool
 * stops handing out connections (no new jobs), the tasks' pool is destroyed (their open transactions are rolled back
 * by the server, so nothing they did commits), and the runner is stopped. That happens at least T/2 before anyone can
 * unlock those jobs. When beats succeed again a new runner starts, with new worker ids; the old ids' jobs are handed
 * back by the same silent-worker check, here or elsewhere. The process does not exit: during a database outage every
 * worker would otherwise die together. The remaining exposure is a process whose event loop stalls for longer than
 * T/2 (no timer runs to fence it) or a database clock that jumps forward by more than T/2.
 */
class WorkerSupervisor implements WorkerHandle {
  private readonly generations = new Set<Generation>()
  private current: Generation | null = null
  private starting: Promise<void> | null = null
  private nextId = 0
  private lastBeatOk = performance.now()
  private beating = false
  private databaseAway = false
  private stopping = false
  private timer: NodeJS.Timeout | null = null
  private readonly timeoutMs: number
  private readonly log: Logger
  private readonly heartbeatSql: Sql

  constructor(private readonly options: WorkerOptions) {
    this.timeoutMs = options.config.WORKER_HEARTBEAT_TIMEOUT_MS
    this.log = options.log
    // Two, so a beat stuck on a connection the network lost does not hold up the next one.
    this.heartbeatSql = createSql(options.connectionString, { max: 2, applicationName: 'worker-heartbeat' })
  }

  async start(): Promise<void> {
    try {
      await this.startGeneration({ rethrow: true })
    } catch (err) {
      // The database answered the boot (migrations ran) and went away while the runner started: like any outage
      // later on, the job queue starts once beats succeed again, and the process does not exit. Anything else (a
      // bad schema, a bug) fails the start.
      if (!isDatabaseUnavailable(err)) {
        await this.heartbeatSql.end({ timeout: 1 })
        throw err
      }
      this.log.warn({ errCode: (err as { code?: string }).code }, 'the database went away while the job queue was starting; it starts when the database answers')
      this.databaseAway = true
    }
    this.timer = setInterval(() => void this.tick(), Math.max(100, Math.floor(this.timeoutMs / 6)))
  }

  workerIds(): string[] {
    const ids: string[] = []
    for (const g of this.generations) if (g.state !== 'fenced') ids.push(...g.workerIds)
    return ids
  }

  async stop(): Promise<void> {
    this.stopping = true
    if (this.timer) clearInterval(this.timer)
    await this.starting?.catch(() => {})
    // A database that does not answer would keep running jobs (and so the stop) waiting for a connection forever:
    // give them 10 s to record their outcome, or 1 s when the database is already gone (nothing can be recorded
    // then; their jobs come back once our worker ids fall silent).
    const answering = this.databaseAway ? false : await withTimeout(this.heartbeatSql`select 1`.execute(), 1_000).then(() => true, () => false)
    const giveUpAfterMs = answering ? 10_000 : 1_000
    await Promise.all([...this.generations].map((g) => this.retire(g, null, { giveUpAfterMs })))
    await this.heartbeatSql.end({ timeout: 1 })
  }

  private async tick(): Promise<void> {
    if (this.stopping) return
    const silentMs = performance.now() - this.lastBeatOk
    if (silentMs > this.timeoutMs / 2) {
      for (const g of this.generations) if (g.state !== 'fenced') this.fence(g, silentMs)
    }
    if (this.beating) return
    this.beating = true
    const sentAt = performance.now()
    try {
      await withTimeout(recordHeartbeats(this.heartbeatSql, this.workerIds(), PROCESS_LABEL), this.timeoutMs / 3)
      this.lastBeatOk = sentAt
      if (this.databaseAway) this.log.info('database answering again; job queue resuming')
      this.databaseAway = false
    } catch (err) {
      if (!this.databaseAway) this.log.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'worker heartbeat failed; retrying')
      this.databaseAway = true
      return
    } finally {
      this.beating = false
    }
    if (this.stopping) return
    if (!this.current && !this.starting) void this.startGeneration({ rethrow: false })
    try {
      const dead = await unlockJobsOfSilentWorkers(this.heartbeatSql, this.timeoutMs)
      if (dead.length > 0) this.log.warn({ workerIds: dead }, `handed back the jobs of ${dead.length} worker(s) that stopped beating`)
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'could not check for silent workers; will retry')
    }
  }

  private startGeneration({ rethrow }: { rethrow: boolean }): Promise<void> {
    const { config, connectionString, log } = this.options
    const concurrency = this.options.concurrency ?? config.WORKER_CONCURRENCY
    const g: Generation = {
      id: ++this.nextId,
      state: 'starting',
      // Each worker holds one connection at a time; the LISTEN client, cron and a spare need three more.
      queue: createQueuePool({ connectionString, max: concurrency + 3, applicationName: 'worker-queue', log }),
      sql: createSql(connectionString, { max: concurrency + 2, applicationName: 'worker' }),
      runner: null,
      workerIds: new Set(),
    }
    this.generations.add(g)
    this.current = g
    const events = new EventEmitter() as WorkerEvents
    // graphile-worker 0.16: a worker that cannot record a job's outcome gives up and exits for good; the runner goes
    // on with fewer workers. Replace the whole runner instead; the job it held is handed back once its id is silent.
    events.on('worker:fatalError', ({ worker }) => {
      if (g.state !== 'running') return
      log.warn({ workerId: worker.workerId }, 'a worker could not record a job outcome; replacing the runner')
      void this.retire(g, 'a worker gave up')
    })
    const starting = (async () => {
      try {
        const runner = await run({
          pgPool: g.queue.pool,
          concurrency,
          pollInterval: this.options.pollInterval ?? config.WORKER_POLL_INTERVAL_MS,
          // We own SIGINT/SIGTERM: the worker stops as one step of the service's orderly shutdown.
          noHandleSignals: true,
          taskList: buildTaskList({ config, sql: g.sql, log }),
          crontab: crontab.join('\n'),
          logger: workerLogger(log),
          // Migrations ran already, as the owner; the runtime role only checks that they did.
          schema: 'graphile_worker',
          events,
          preset: { plugins: [this.heartbeatPlugin(g)] },
        })
        g.runner = runner
        runner.promise.then(
          () => this.ended(g, null),
          (err: unknown) => this.ended(g, err),
        )
        if (g.state === 'starting') g.state = 'running'
        else void this.retire(g, null) // fenced or stopped while starting
        // Not awaited: a database that went away again must not hold up the runner's start.
        void armSelfSchedulingJobs({ config, sql: g.sql, log }).catch((err: unknown) => log.warn({ err }, 'could not arm the self-scheduling jobs; the crontab will'))
      } catch (err) {
        log.error({ err }, 'the job queue runner could not start; retrying when the database answers')
        this.generations.delete(g)
        if (this.current === g) this.current = null
        g.queue.abandon()
        await Promise.allSettled([g.queue.pool.end(), g.sql.end({ timeout: 1 })])
        if (rethrow) throw err
      } finally {
        this.starting = null
      }
    })()
    this.starting = starting
    return starting
  }

  /** Registers each worker id and beats for it before the worker takes its first job. */
  private heartbeatPlugin(g: Generation): GraphileConfig.Plugin {
    return {
      name: 'WorkerHeartbeatPlugin',
      version: '1.0.0',
      worker: {
        hooks: {
          startWorker: async (_ctx, event) => {
            const id = event.worker.workerId
            g.workerIds.add(id)
            for (let attempt = 0; ; attempt++) {
              // Throwing here keeps the worker from taking a job; graphile-worker retries or stops it.
              if (g.state === 'fenced' || g.state === 'retiring' || this.stopping) throw new Error('the job queue runner is stopping')
              try {
                await recordHeartbeats(this.heartbeatSql, [id], PROCESS_LABEL)
                return
              } catch {
                await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** attempt, 2_000)))
              }
            }
          },
          // A stopped worker holds no job, or holds one it failed to hand back: either way it stops beating, and
          // its row ages into the silent-worker check.
          stopWorker: (_ctx, event) => {
            g.workerIds.delete(event.worker.workerId)
          },
        },
      },
    }
  }

  /** See the class comment: cut the runner off from the database before anyone may take over its jobs. */
  private fence(g: Generation, silentMs: number): void {
    this.log.error({ generation: g.id, silentMs: Math.round(silentMs) }, 'no heartbeat recorded for half the timeout; stopping this runner so its jobs can be taken over safely')
    g.state = 'fenced'
    if (this.current === g) this.current = null
    g.queue.abandon()
    void g.sql.end({ timeout: 0 })
    void this.retire(g, null)
  }

  /**
   * Stops a runner gracefully (running jobs finish, waiting for the database if it is away: if it stays away, the
   * fence cuts them off) unless it was fenced, then closes its pools.
   */
  private retire(g: Generation, reason: string | null, options: { giveUpAfterMs?: number } = {}): Promise<void> {
    if (g.state !== 'fenced') g.state = 'retiring'
    if (this.current === g) this.current = null
    if (reason) this.log.info({ generation: g.id, reason }, 'retiring the job queue runner')
    if (!g.runner) return Promise.resolve() // still starting: startGeneration retires it when run() returns
    if (options.giveUpAfterMs !== undefined) setTimeout(() => g.queue.abandon(), options.giveUpAfterMs).unref()
    g.stopped ??= (async () => {
      try {
        await g.runner!.stop()
      } catch (err) {
        if (!/already stopped/.test((err as Error).message)) this.log.warn({ err }, 'job queue runner did not stop cleanly')
      }
      g.queue.abandon()
      await Promise.allSettled([g.queue.pool.end(), g.sql.end({ timeout: 5 })])
      this.generations.delete(g)
    })()
    return g.stopped
  }

  /** The runner ended by itself (its cron or worker pool stopped): replace it at the next successful beat. */
  private ended(g: Generation, err: unknown): void {
    if (g.state === 'running' && !this.stopping) {
      this.log.error({ err, generation: g.id }, 'the job queue runner stopped unexpectedly; starting a new one')
      void this.retire(g, null)
    }
  }
}

/** Starts the job queue (see WorkerSupervisor); resolves once the first runner is running. */
export async function startWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const metricsSql = options.metricsSql
  if (metricsSql) {
    useScrapeSources({
      queue: () => jobQueueStats(metricsSql),
      whatsappBacklog: () => whatsappBacklog(metricsSql),
      analyticsRollup: () => rollupHealth(metricsSql, options.config.ANALYTICS_RECONCILE_WINDOW_MINUTES),
    })
  }
  const supervisor = new WorkerSupervisor(options)
  await supervisor.start()
  return supervisor
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)
    }),
  ])
}
