-- Onboarding at scale: inactivity checked in batches from an indexed due time instead of one job per session, views recorded append-only and folded later, and a second live link for the WhatsApp nudge.

-- When the session's inactivity is next due (nudge or abandonment). Set by every activity; null once completed or
-- abandoned. onboarding__check_inactivity claims due rows in batches (for no key update skip locked).
alter table onboarding.sessions add column idle_check_at timestamptz;
create index sessions_idle_check_idx on onboarding.sessions (idle_check_at) where idle_check_at is not null;
-- Sessions in progress are checked once now: the batch only reschedules those not due yet.
update onboarding.sessions set idle_check_at = now() where status = 'in_progress';
-- The per-session jobs of before (job_key onboarding-idle:<id>) are no longer needed; a leftover one is harmless
-- (its task ignores the session id and runs a batch).
do $$
begin
  if to_regclass('graphile_worker._private_jobs') is not null then
    execute $q$delete from graphile_worker._private_jobs where key like 'onboarding-idle:%' and locked_at is null$q$;
  end if;
end $$;

-- The link sent in a WhatsApp nudge: a second live token for the session (sha256 only), so that the link the business
-- may still have open keeps working. A new link (rotation) replaces both.
alter table onboarding.sessions add column nudge_token_hash bytea unique;
alter table onboarding.sessions add column nudge_token_expires_at timestamptz;

create or replace function onboarding.session_for_token(p_token_hash bytea)
  returns table (id uuid, tenant_id uuid, status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.id, s.tenant_id, s.status from onboarding.sessions s
   where s.token_hash = p_token_hash and s.token_expires_at > now()
  union all
  select s.id, s.tenant_id, s.status from onboarding.sessions s
   where s.nudge_token_hash = p_token_hash and s.nudge_token_expires_at > now()
  limit 1
$$;

-- The WhatsApp nudge's outcome is an activity too: sent (queued in the platform number's outbox) or skipped, with why.
alter table onboarding.step_activities drop constraint step_activities_kind_check;
alter table onboarding.step_activities add constraint step_activities_kind_check check (kind in (
  'started', 'viewed', 'saved', 'invalid', 'completed', 'nudged', 'abandoned', 'resumed', 'link_rotated', 'went_live',
  'whatsapp_nudged', 'whatsapp_nudge_skipped'));
-- At most one WhatsApp outcome per nudge (detail.nudge is the nudged activity's id): the send job may run twice.
create unique index step_activities_whatsapp_nudge_uidx on onboarding.step_activities (session_id, ((detail ->> 'nudge')::bigint))
  where kind in ('whatsapp_nudged', 'whatsapp_nudge_skipped');

-- Views, append-only: a view is one unlocked insert; onboarding.fold_views turns them into step activities (kind
-- 'viewed', at the view's time) and moves the session's last activity, in batches, later.
create table onboarding.session_views (
  id bigint generated always as identity primary key,
  session_id uuid not null references onboarding.sessions (id) on delete cascade,
  tenant_id uuid references core.tenants (id) on delete cascade,
  step text,
  viewed_at timestamptz not null default clock_timestamp()
);
create index session_views_session_idx on onboarding.session_views (session_id, id);
alter table onboarding.session_views enable row level security;
alter table onboarding.session_views force row level security;
create policy tenant_isolation on onboarding.session_views
  using (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()))
  with check (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()));
grant select on onboarding.session_views to app_user;
grant update (tenant_id) on onboarding.session_views to app_user;

-- A view, in one statement: the session behind a live token, and (unless it is abandoned, which a view resumes through
-- the locking path) its view recorded. p_orders: the step names of each steps version in order ({"1": [...]}), so
-- the view is filed under the session's current step (the first not completed), as domains/onboarding/steps.ts says.
create function onboarding.view_session(p_token_hash bytea, p_orders jsonb)
  returns table (id uuid, tenant_id uuid, token_expires_at timestamptz, steps_version integer, origin text, status text, fields jsonb,
                 completed_steps jsonb, phone_number_id uuid, last_activity_at timestamptz, nudged_at timestamptz, abandoned_at timestamptz,
                 abandoned_step text, resumed_count integer, completed_at timestamptz, created_by text, created_at timestamptz, recorded boolean)
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  s onboarding.sessions%rowtype;
  v_expires timestamptz;
begin
  select * into s from onboarding.sessions x
   where (x.token_hash = p_token_hash and x.token_expires_at > now()) or (x.nudge_token_hash = p_token_hash and x.nudge_token_expires_at > now())
   limit 1;
  if not found then return; end if;
  v_expires := case when s.token_hash = p_token_hash then s.token_expires_at else s.nudge_token_expires_at end;
  if s.status <> 'abandoned' then
    insert into onboarding.session_views (session_id, tenant_id, step)
    values (s.id, s.tenant_id, (select o.step from jsonb_array_elements_text(p_orders -> s.steps_version::text) with ordinality o(step, i)
                                 where not (s.completed_steps ? o.step) order by o.i limit 1));
  end if;
  return query select s.id, s.tenant_id, v_expires, s.steps_version, s.origin, s.status, s.fields, s.completed_steps, s.phone_number_id,
                      s.last_activity_at, s.nudged_at, s.abandoned_at, s.abandoned_step, s.resumed_count, s.completed_at, s.created_by,
                      s.created_at, s.status <> 'abandoned';
end $$;
revoke execute on function onboarding.view_session(bytea, jsonb) from public;
grant execute on function onboarding.view_session(bytea, jsonb) to app_user;

-- Pending views become step activities ('viewed', at their own time) and move their sessions' last activity; a view
-- later than its session's abandonment resumes it (recorded). Of the given sessions (null: any), at most p_limit
-- views (null: all), each exactly once (deleted in the statement that files it). Returns the sessions touched.
create function onboarding.fold_views(p_session_ids uuid[], p_limit integer)
  returns table (session_id uuid, tenant_id uuid)
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return query
  with picked as (
    select v.id from onboarding.session_views v
     where p_session_ids is null or v.session_id = any (p_session_ids)
     order by v.id limit p_limit
     for update skip locked
  ), gone as (
    delete from onboarding.session_views v using picked where v.id = picked.id
    returning v.id, v.session_id, v.step, v.viewed_at
  ), latest as (
    select g.session_id, max(g.viewed_at) as at from gone g group by g.session_id
  ), pre as (
    select s.id, s.tenant_id, s.abandoned_step, l.at, (s.status = 'abandoned' and l.at > s.abandoned_at) as resumes
      from onboarding.sessions s join latest l on l.session_id = s.id
  ), upd as (
    update onboarding.sessions t
       set last_activity_at = case when t.status = 'completed' then t.last_activity_at else greatest(t.last_activity_at, p.at) end,
           status = case when p.resumes then 'in_progress' else t.status end,
           resumed_count = t.resumed_count + case when p.resumes then 1 else 0 end,
           abandoned_at = case when p.resumes then null else t.abandoned_at end,
           idle_check_at = case when p.resumes then clock_timestamp() else t.idle_check_at end,
           updated_at = now()
      from pre p where t.id = p.id
    returning t.id
  ), acts as (
    insert into onboarding.step_activities (session_id, tenant_id, step, kind, created_at)
    select x.session_id, x.tenant_id, x.step, x.kind, x.at from (
      select g.session_id, p.tenant_id, g.step, 'viewed' as kind, g.viewed_at as at, g.id as ord, 0 as sub
        from gone g join pre p on p.id = g.session_id
      union all
      select p.id, p.tenant_id, p.abandoned_step, 'resumed', p.at, 0, 1 from pre p where p.resumes
    ) x order by x.at, x.sub, x.ord
    returning 1
  )
  select p.id, p.tenant_id from pre p
   where (select count(*) from acts) >= 0 and (select count(*) from upd) >= 0;
end $$;
revoke execute on function onboarding.fold_views(uuid[], integer) from public;
grant execute on function onboarding.fold_views(uuid[], integer) to app_user;

-- The inactivity batch, step 1: sessions due at p_now (of p_only, when given), locked for this transaction and
-- skipped when another batch holds them, with their pending views folded first (a view is an activity).
create function onboarding.claim_idle_sessions(p_limit integer, p_now timestamptz, p_only uuid[] default null)
  returns table (id uuid, tenant_id uuid, steps_version integer, status text, fields jsonb, completed_steps jsonb,
                 last_activity_at timestamptz, nudged_at timestamptz)
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare v_ids uuid[];
begin
  select array_agg(d.id) into v_ids from (
    select s.id from onboarding.sessions s
     where s.idle_check_at <= p_now and (p_only is null or s.id = any (p_only))
     order by s.idle_check_at limit p_limit
     for no key update skip locked
  ) d;
  if v_ids is null then return; end if;
  perform onboarding.fold_views(v_ids, null);
  return query select s.id, s.tenant_id, s.steps_version, s.status, s.fields, s.completed_steps, s.last_activity_at, s.nudged_at
                 from onboarding.sessions s where s.id = any (v_ids);
end $$;
revoke execute on function onboarding.claim_idle_sessions(integer, timestamptz, uuid[]) from public;
grant execute on function onboarding.claim_idle_sessions(integer, timestamptz, uuid[]) to app_user;

-- Step 2: the decisions taken on the claimed rows (domains/onboarding/service.ts: abandoned, nudged, rescheduled, or
-- clear for a row no longer in progress,
-- with the step and the webhook payload), applied set-based. Each is checked again against the row (still in
-- progress, still due, idle long enough), so a decision can only do what the rules allow. A nudge or abandonment is
-- an activity, a webhook event with its delivery job, and, for a nudge with a contact number, the WhatsApp nudge job.
create function onboarding.apply_idle_checks(p_decisions jsonb, p_now timestamptz, p_nudge_ms bigint, p_abandon_ms bigint)
  returns table (session_id uuid, tenant_id uuid, outcome text)
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
  return query
  with d as (
    select x.id, x.outcome, x.step, x.payload, coalesce(x.whatsapp, false) as whatsapp
      from jsonb_to_recordset(p_decisions) as x(id uuid, outcome text, step text, payload jsonb, whatsapp boolean)
  ), s as (
    select s.id, s.tenant_id, s.last_activity_at, s.nudged_at, d.outcome, d.step, d.payload, d.whatsapp
      from onboarding.sessions s join d on d.id = s.id
     where (d.outcome = 'clear' and s.status <> 'in_progress')
        or (s.status = 'in_progress' and s.idle_check_at <= p_now
       and case d.outcome
             when 'abandoned' then s.last_activity_at + p_abandon_ms * interval '1 millisecond' <= p_now
             when 'nudged' then s.last_activity_at + p_nudge_ms * interval '1 millisecond' <= p_now
                                and (s.nudged_at is null or s.nudged_at < s.last_activity_at)
             when 'rescheduled' then true
             else false end)
  ), upd as (
    update onboarding.sessions t set
      status = case when s.outcome = 'abandoned' then 'abandoned' else t.status end,
      abandoned_at = case when s.outcome = 'abandoned' then p_now else t.abandoned_at end,
      abandoned_step = case when s.outcome = 'abandoned' then s.step else t.abandoned_step end,
      nudged_at = case when s.outcome = 'nudged' then p_now else t.nudged_at end,
      idle_check_at = case s.outcome
        when 'abandoned' then null
        when 'clear' then null
        when 'nudged' then t.last_activity_at + p_abandon_ms * interval '1 millisecond'
        else t.last_activity_at + (case when t.nudged_at >= t.last_activity_at then p_abandon_ms else p_nudge_ms end) * interval '1 millisecond' end,
      updated_at = now()
      from s where t.id = s.id
    returning t.id
  ), acts as (
    insert into onboarding.step_activities (session_id, tenant_id, step, kind, detail)
    select s.id, s.tenant_id, s.step, s.outcome,
           case when s.outcome = 'abandoned' then jsonb_build_object('idleSeconds', round(extract(epoch from p_now - s.last_activity_at))) else '{}' end
      from s where s.outcome in ('abandoned', 'nudged')
    returning id, session_id, kind
  ), hooks as (
    insert into onboarding.webhook_events (session_id, tenant_id, type, payload)
    select s.id, s.tenant_id, case s.outcome when 'abandoned' then 'onboarding.abandoned' else 'onboarding.nudge' end, s.payload
      from s where s.outcome in ('abandoned', 'nudged')
    returning id, session_id
  ), jobs as (
    -- One add_jobs call for the batch's jobs (graphile-worker's bulk insert), not one add_job per row.
    select j.id from graphile_worker.add_jobs(array(
      select row('onboarding__deliver_webhook', json_build_object('eventId', h.id, 'sessionId', h.session_id), null, null, 8, null, null, null)::graphile_worker.job_spec
        from hooks h
      union all
      select row('onboarding__send_whatsapp_nudge', json_build_object('sessionId', a.session_id, 'nudgeActivityId', a.id), null, null, 10,
                 'onboarding-wa-nudge:' || a.id, null, null)::graphile_worker.job_spec
        from acts a join s on s.id = a.session_id where a.kind = 'nudged' and s.whatsapp
    )) j
  )
  select s.id, s.tenant_id, s.outcome from s
   where (select count(*) from jobs) >= 0 and (select count(*) from upd) >= 0;
end $$;
revoke execute on function onboarding.apply_idle_checks(jsonb, timestamptz, bigint, bigint) from public;
grant execute on function onboarding.apply_idle_checks(jsonb, timestamptz, bigint, bigint) to app_user;

-- When the batch should run next: the earliest due session, or null.
create function onboarding.next_idle_check() returns timestamptz
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select min(idle_check_at) from onboarding.sessions where idle_check_at is not null $$;
revoke execute on function onboarding.next_idle_check() from public;
grant execute on function onboarding.next_idle_check() to app_user;
