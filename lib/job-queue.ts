import type postgres from 'postgres'
import { sha256 } from './crypto.js'
import type { Queryable, Sql } from './db.js'
import type { QueueStat } from './metrics.js'

/**
 * Shared graphile-worker queues, picked by hashing an id: `<prefix>:<n>`, n in [0, queues). Jobs of one id always land
 * in the same queue, so they still run one at a time and in order; jobs of other ids in that queue wait while one
 * runs. Used instead of one queue per id because graphile-worker keeps a queue's row after its last job, and every
 * job fetch locks all idle queue rows (strategy 2 in its getJob): a row per conversation or broadcast ever seen made
 * every fetch slower, and no cleanup can delete a live name safely (see deleteEmptyQueues).
 *
 * The hash is the first byte of SHA-256 of the id's lowercase text, so PostgreSQL (hashedQueueNameSql, for
 * set-based enqueues) and Node compute the same name; `queues` must divide 256 so every queue gets an equal share.
 */
export function hashedQueueName(prefix: string, id: string, queues: number): string {
  return `${prefix}:${sha256(id.toLowerCase())[0]! % queues}`
}

/** hashedQueueName in SQL: `id` is a fragment giving the id (a uuid or text column). */
export const hashedQueueNameSql = (sql: Queryable, prefix: string, id: postgres.Fragment, queues: number) =>
  sql`(${prefix}::text || ':' || (get_byte(sha256(convert_to(lower(${id}::text), 'UTF8')), 0) % ${queues}::int)::text)`

/**
 * Deletes, in one bounded statement, the empty queue rows whose name matches `namePattern` (a regular expression, a
 * constant of the code, never input): the per-id queues of older versions. Only names no running version enqueues
 * into any more, so a delete cannot race an add_job into the same queue. graphile-worker's own `cleanup`
 * (GC_JOB_QUEUES) deletes every empty queue, the live shared ones too, and add_jobs neither locks the queue row it
 * reuses nor references it with a foreign key: a queue deleted between its `on conflict do nothing` and the job's
 * insert or commit leaves the job in no queue (run beside its queue's others) or in a queue that no longer exists
 * (never fetched again). Same guards as graphile's: a queue with any job (pending, retrying, parked, running) or a
 * locked queue is kept; `skip locked` passes over rows a job fetch holds at that instant (the next run takes them)
 * and lets two runs at once share the rows instead of waiting on each other. Returns how many were deleted.
 */
export const deleteEmptyQueues = (sql: Queryable, namePattern: string, limit: number) =>
  sql`
    with doomed as (
      select q.id from graphile_worker._private_job_queues q
       where q.queue_name ~ ${namePattern} and q.locked_at is null
         and not exists (select 1 from graphile_worker._private_jobs j where j.job_queue_id = q.id)
       order by q.id
       limit ${limit}
         for update skip locked
    )
    delete from graphile_worker._private_job_queues q using doomed where q.id = doomed.id`.then((r) => r.count)

/** A uuid as PostgreSQL prints it (lowercase, hyphenated): the per-id queue names of older versions end in one. */
export const UUID_PATTERN = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'

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
