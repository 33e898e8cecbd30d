-- Worker processes beat here every few seconds so the jobs of a worker that died are handed back within a minute, not after the 10-minute stale-lock sweep.

create schema if not exists ops;
grant usage on schema ops to app_user;

-- One row per graphile-worker worker id (the value it writes into jobs.locked_by; a process runs one per unit of
-- concurrency). A row older than the heartbeat timeout means that worker is gone: its jobs are force-unlocked and the
-- row deleted. A worker that never beat (an older release) has no row and is left to the stale-lock sweep.
create table ops.worker_heartbeats (
  worker_id text primary key,
  -- host:pid of the process, for operators; no tenant data.
  process text not null,
  started_at timestamptz not null default now(),
  beat_at timestamptz not null default now()
);
create index worker_heartbeats_beat_at_idx on ops.worker_heartbeats (beat_at);

grant select, insert, update, delete on ops.worker_heartbeats to app_user;
