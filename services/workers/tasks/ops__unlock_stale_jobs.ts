import type { Task } from 'graphile-worker'
import { unlockStaleJobs } from '../../../lib/job-queue.js'
import type { TaskDeps } from './task-deps.js'

/** No task of ours runs for long; a job locked for this long by a worker that does not beat belongs to a dead worker. */
export const STALE_LOCK_MINUTES = 10

/**
 * Cross-tenant, operator-level: the last resort for workers that never beat (see services/workers/worker.ts: a
 * worker that beats and then dies has its jobs handed back within the heartbeat timeout). graphile-worker would do so
 * only after its 4-hour lock expiry; our tasks are idempotent, so rerunning one early is safe.
 */
export const unlockStaleJobsTask = (deps: TaskDeps): Task => async (_payload, helpers) => {
  const workers = await unlockStaleJobs(deps.sql, STALE_LOCK_MINUTES, deps.config.WORKER_HEARTBEAT_TIMEOUT_MS)
  if (workers.length === 0) return
  helpers.logger.warn(`unlocked jobs of ${workers.length} stale worker(s): ${workers.join(', ')}`)
}
