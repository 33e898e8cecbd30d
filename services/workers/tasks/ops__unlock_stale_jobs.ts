import type { Task } from 'graphile-worker'
import type { TaskDeps } from './task-deps.js'

/** No task of ours runs for long; a job locked for this long belongs to a worker that died (kill -9, OOM, lost host). */
export const STALE_LOCK_MINUTES = 10

/**
 * Cross-tenant, operator-level: hands the jobs of dead workers back to the queue. graphile-worker would do so
 * only after its 4-hour lock expiry; our tasks are idempotent, so rerunning one early is safe.
 */
export const unlockStaleJobsTask = (_deps: TaskDeps): Task => async (_payload, helpers) => {
  const rows = await helpers.query<{ lockedBy: string }>(
    `select distinct locked_by as "lockedBy" from graphile_worker.jobs
      where locked_at < now() - make_interval(mins => $1) and locked_by is not null`,
    [STALE_LOCK_MINUTES],
  )
  const workers = rows.rows.map((r) => r.lockedBy)
  if (workers.length === 0) return
  await helpers.query('select graphile_worker.force_unlock_workers($1::text[])', [workers])
  helpers.logger.warn(`unlocked jobs of ${workers.length} stale worker(s): ${workers.join(', ')}`)
}
