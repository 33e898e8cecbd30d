import type { Queryable, Sql } from './db.js'
import type { QueueStat } from './metrics.js'

/**
 * The queue as /metrics shows it, read at scrape time through graphile-worker's public `jobs` view (the runtime role
 * may read it). One pass over the jobs table: it holds only unfinished jobs, so it stays small when all is well and
 * the scrape costs most exactly when the queue is what someone is looking at.
 */
export const jobQueueStats = (sql: Queryable) =>
  sql<QueueStat[]>`
    select task_identifier as task, state, count(*)::int as jobs,
           coalesce(extract(epoch from now() - min(run_at) filter (where state = 'ready')), 0)::float8 as oldest_age_seconds
      from (select task_identifier, run_at,
                   case when attempts >= max_attempts then 'failed'
                        when locked_at is not null then 'running'
                        when run_at > now() then 'scheduled'
                        else 'ready' end as state
              from graphile_worker.jobs) j
     group by task_identifier, state`

/**
 * The SQL of job-lock recovery: worker heartbeats (ops.worker_heartbeats, owned here) and handing the jobs of dead
 * workers back to the queue. graphile-worker records the worker id of the worker that took a job in `locked_by`;
 * `graphile_worker.force_unlock_workers` clears the locks of the given worker ids on jobs and job queues.
 */

/** Records that these worker ids are alive now (database time, so every process compares on the same clock). */
export async function recordHeartbeats(sql: Queryable, workerIds: string[], processLabel: string): Promise<void> {
  await sql`
    insert into ops.worker_heartbeats (worker_id, process)
    select id, ${processLabel} from unnest(${workerIds}::text[]) as id
    on conflict (worker_id) do update set beat_at = now(), process = excluded.process`
}

/**
 * Hands back the jobs of workers whose last beat is older than `timeoutMs`, and forgets those workers. Rows are
 * deleted and unlocked in one transaction, so two processes checking at once do not both act on a worker.
 * Returns the worker ids that were declared dead.
 */
export async function unlockJobsOfSilentWorkers(sql: Sql, timeoutMs: number): Promise<string[]> {
  return sql.begin(async (tx) => {
    const rows = await tx<{ workerId: string }[]>`
      delete from ops.worker_heartbeats where beat_at < now() - make_interval(secs => ${timeoutMs / 1000})
      returning worker_id`
    const ids = rows.map((r) => r.workerId)
    if (ids.length > 0) await tx`select graphile_worker.force_unlock_workers(${ids}::text[])`
    return ids
  }) as Promise<string[]>
}

/**
 * The last resort, for workers that never beat (a release from before heartbeats, or a process that died before its
 * first beat): hands back jobs locked longer than `staleMinutes` by a worker with no recent heartbeat. A worker that is
 * still beating keeps its jobs however long they take, so a slow job is never run twice at the same time.
 */
export async function unlockStaleJobs(sql: Sql, staleMinutes: number, heartbeatTimeoutMs: number): Promise<string[]> {
  const rows = await sql<{ lockedBy: string }[]>`
    select distinct j.locked_by from graphile_worker.jobs j
     where j.locked_by is not null and j.locked_at < now() - make_interval(mins => ${staleMinutes})
       and not exists (select 1 from ops.worker_heartbeats h
                        where h.worker_id = j.locked_by and h.beat_at >= now() - make_interval(secs => ${heartbeatTimeoutMs / 1000}))`
  const ids = rows.map((r) => r.lockedBy)
  if (ids.length > 0) await sql`select graphile_worker.force_unlock_workers(${ids}::text[])`
  return ids
}
