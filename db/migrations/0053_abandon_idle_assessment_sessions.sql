-- Assessment sessions idle too long are marked abandoned by a batched cron task (assessments__abandon_idle_sessions), and reopened when the participant comes back.

-- When the session was last marked abandoned (kept after a resume, as the history of its last abandonment), and how
-- often it came back after that.
alter table assessments.sessions add column abandoned_at timestamptz;
alter table assessments.sessions add column resumed_count integer not null default 0;

-- In-progress sessions by their start. A session idle for X started at least X ago, so the batch reads only the
-- in-progress sessions older than X and checks last_activity_at on those. Not an index on last_activity_at: every
-- answer moves it, and an indexed column would cost every answer its HOT update.
create index sessions_in_progress_started_idx on assessments.sessions (started_at) where status = 'in_progress';

-- The batch, step 1 (cross-tenant, before any tenant is known): in-progress sessions idle since p_idle_before, oldest
-- first, locked for the caller's transaction and skipped when someone holds them (an answer being written: not idle).
-- Step 2 runs per tenant, under its row-level security (domains/assessments/abandonment.ts).
create function assessments.claim_idle_sessions(p_idle_before timestamptz, p_limit integer)
  returns table (id uuid, tenant_id uuid)
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  select s.id, s.tenant_id from assessments.sessions s
   where s.status = 'in_progress' and s.started_at <= p_idle_before and s.last_activity_at <= p_idle_before
   order by s.started_at limit p_limit
   for no key update of s skip locked
$$;
revoke execute on function assessments.claim_idle_sessions(timestamptz, integer) from public;
grant execute on function assessments.claim_idle_sessions(timestamptz, integer) to app_user;
