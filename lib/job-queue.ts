import type { Queryable } from './db.js'
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
