-- Assigning got 9× slower with migration 0050 (its triggers locked and recomputed every touched person inline): the triggers now only append the touched (experiment, phase, person) keys to a queue, the fold task recomputes them in batches under 0050's locks, and results reads add a correction for the persons still queued, so they stay exact.

-- One row per touch, appended, never updated: no uniqueness to wait on, no lock, no recompute on the writer's path. A
-- person touched twice is queued twice and recomputed once (the drain takes distinct keys). person is as in
-- result_units (the lead id as text, or 'u:' || unit_id); lead_id is the lead of a lead person (null for a visitor's),
-- for the goal-event trigger's lookup and the lead-references catalog. No foreign key to the experiment or the
-- tenant: each would lock that row for every queued key; a key whose experiment is gone is dropped by the drain.
create table experiments.result_queue (
  tenant_id uuid not null,
  id bigint generated always as identity,
  experiment_id uuid not null,
  phase integer not null,
  person text not null,
  lead_id uuid references marketing.leads (id) on delete cascade,
  queued_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
create index result_queue_phase_idx on experiments.result_queue (tenant_id, experiment_id, phase);
create index result_queue_lead_idx on experiments.result_queue (tenant_id, lead_id) where lead_id is not null;

alter table experiments.result_queue enable row level security;
alter table experiments.result_queue force row level security;
create policy tenant_isolation on experiments.result_queue using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update, delete on experiments.result_queue to app_user;

-- What the named persons' result_units rows should be now, computed from their assignments, exposures and goal events
-- (0050's refresh, unchanged, without its locks): one row per key of an existing experiment, with a null variation and
-- no exposures for a person that has neither any more. Used by the drain (under the locks) and by reads (for the
-- persons still queued). SQL and no SET clause, so it is inlined into the statement that calls it.
create function experiments.fresh_result_units(p_tenants uuid[], p_experiments uuid[], p_phases integer[], p_persons text[])
returns table (tenant_id uuid, experiment_id uuid, phase integer, person text, lead_id uuid, variation_key text, assigned_at timestamptz,
               exposed text[], goal_hits integer[], goal_values numeric[])
language sql stable
as $$
  with k as (
    select distinct u.t as tenant_id, u.e as experiment_id, u.p as phase, u.person,
           case when u.person like 'u:%' then null else u.person::uuid end as lead_id,
           case when u.person like 'u:%' then pg_catalog.substr(u.person, 3) end as unit_id
      from unnest(p_tenants, p_experiments, p_phases, p_persons) as u(t, e, p, person)
      join experiments.experiments ex on ex.id = u.e
  )
  select k.tenant_id, k.experiment_id, k.phase, k.person, k.lead_id, w.variation_key, w.assigned_at,
         coalesce(x.exposed, '{}'), coalesce(g.hits, '{}'), coalesce(g.vals, '{}')
    from k
    left join lateral (
      -- Two index probes, not one OR (which would walk the phase's assignments).
      select c.variation_key, c.assigned_at from (
        select a.variation_key, a.assigned_at, a.id from experiments.assignments a
         where a.tenant_id = k.tenant_id and a.experiment_id = k.experiment_id and a.phase = k.phase and a.lead_id = k.lead_id
        union all
        select a.variation_key, a.assigned_at, a.id from experiments.assignments a
         where a.tenant_id = k.tenant_id and a.experiment_id = k.experiment_id and a.phase = k.phase and a.unit_id = k.unit_id and a.lead_id is null
      ) c order by c.assigned_at, c.id limit 1
    ) w on true
    left join lateral (
      select pg_catalog.array_agg(distinct c.variation_key order by c.variation_key) as exposed from (
        select x.variation_key from experiments.exposures x
         where x.tenant_id = k.tenant_id and x.experiment_id = k.experiment_id and x.phase = k.phase and x.lead_id = k.lead_id
        union all
        select x.variation_key from experiments.exposures x
         where x.tenant_id = k.tenant_id and x.experiment_id = k.experiment_id and x.phase = k.phase and x.unit_id = k.unit_id and x.lead_id is null
      ) c
    ) x on true
    left join lateral (
      select pg_catalog.array_agg(coalesce(v.hits, 0) order by gl.ord) as hits, pg_catalog.array_agg(coalesce(v.val, 0) order by gl.ord) as vals
        from experiments.experiments e
        join experiments.phases ph on ph.experiment_id = e.id and ph.phase = k.phase
        cross join lateral pg_catalog.jsonb_array_elements(e.goals) with ordinality as gl(goal, ord)
        left join lateral (
          select pg_catalog.count(*)::int as hits,
                 pg_catalog.sum(case when gl.goal ->> 'aggregate' is distinct from 'sum' or gl.goal ->> 'property' is null then 1
                          when pg_catalog.jsonb_typeof(ev.properties -> (gl.goal ->> 'property')) = 'number' then (ev.properties ->> (gl.goal ->> 'property'))::numeric
                          else 0 end) as val
            from analytics.events ev
           where ev.tenant_id = k.tenant_id and ev.lead_id = k.lead_id and ev.name = gl.goal ->> 'event'
             and ev.occurred_at >= greatest(w.assigned_at, ph.started_at)
             and ev.occurred_at < w.assigned_at + pg_catalog.make_interval(hours => (gl.goal ->> 'windowHours')::int)
        ) v on true
       where e.id = k.experiment_id and w.variation_key is not null and k.lead_id is not null
    ) g on true
$$;

-- 0050's refresh, now only the drain's (the triggers no longer call it): the same locks (each person, in one order,
-- before the statement that reads; the experiment's shared lock against a rebuild), then fresh_result_units written.
-- Two drains of one person run one after the other, the second reading what the first committed.
create or replace function experiments.refresh_result_units(p_tenants uuid[], p_experiments uuid[], p_phases integer[], p_persons text[])
returns void language plpgsql set search_path = pg_catalog, pg_temp set plan_cache_mode = force_generic_plan
as $$
begin
  perform pg_advisory_xact_lock_shared(hashtext('experiments.result_units'), hashtext(k.e::text))
     from (select distinct e from unnest(p_experiments) e order by 1) k;
  perform pg_advisory_xact_lock(hashtextextended(k.e::text || ':' || k.p::text || ':' || k.person, 0))
     from (select distinct e, p, person from unnest(p_experiments, p_phases, p_persons) as u(e, p, person) order by 1, 2, 3) k;

  with fresh as (
    select * from experiments.fresh_result_units(p_tenants, p_experiments, p_phases, p_persons)
  ), gone as (
    delete from experiments.result_units r using fresh f
     where r.tenant_id = f.tenant_id and r.experiment_id = f.experiment_id and r.phase = f.phase and r.person = f.person
       and f.variation_key is null and cardinality(f.exposed) = 0
    returning 1
  )
  insert into experiments.result_units as r (tenant_id, experiment_id, phase, person, lead_id, variation_key, assigned_at, exposed, goal_hits, goal_values)
  select tenant_id, experiment_id, phase, person, lead_id, variation_key, assigned_at, exposed, goal_hits, goal_values from fresh
   where variation_key is not null or cardinality(exposed) > 0
  on conflict (tenant_id, experiment_id, phase, person) do update
     set lead_id = excluded.lead_id, variation_key = excluded.variation_key, assigned_at = excluded.assigned_at, exposed = excluded.exposed,
         goal_hits = excluded.goal_hits, goal_values = excluded.goal_values
   where (r.variation_key, r.assigned_at, r.exposed, r.goal_hits, r.goal_values)
         is distinct from (excluded.variation_key, excluded.assigned_at, excluded.exposed, excluded.goal_hits, excluded.goal_values);
end $$;

-- Assignments and exposures: the persons a statement's rows belong to, before and after, queued. A row going away
-- with its lead (a lead deleted, the rows cascading) or its experiment queues nothing: the person's result_units rows
-- go by the same cascade (and the lead could not be referenced any more).
create or replace function experiments.refresh_results_of_rows() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
    select distinct n.tenant_id, n.experiment_id, n.phase, coalesce(n.lead_id::text, 'u:' || n.unit_id), n.lead_id from new_rows n;
  elsif tg_op = 'UPDATE' then
    insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
    select k.tenant_id, k.experiment_id, k.phase, k.person, k.lead_id from (
      select n.tenant_id, n.experiment_id, n.phase, coalesce(n.lead_id::text, 'u:' || n.unit_id) as person, n.lead_id from new_rows n
      union
      select o.tenant_id, o.experiment_id, o.phase, coalesce(o.lead_id::text, 'u:' || o.unit_id), o.lead_id from old_rows o
    ) k
     where k.lead_id is null or exists (select 1 from marketing.leads l where l.id = k.lead_id);
  else
    insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
    select distinct o.tenant_id, o.experiment_id, o.phase, coalesce(o.lead_id::text, 'u:' || o.unit_id), o.lead_id from old_rows o
     where (o.lead_id is null or exists (select 1 from marketing.leads l where l.id = o.lead_id))
       and exists (select 1 from experiments.experiments e where e.id = o.experiment_id);
  end if;
  return null;
end $$;

-- Goal events moved (a merge, an erasure; insert: refresh_results_of_new_events below): the persons of the events' leads in experiments that have the event as a goal, queued. Found among
-- the maintained rows and the queue both: a person queued but not drained yet has no maintained row, and a drain
-- running now (that did not see this event) commits the row and the queue's delete at once, so this statement sees
-- one or the other.
create or replace function experiments.refresh_results_of_events() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from experiments.experiments e where e.status <> 'draft' and e.goals <> '[]'::jsonb) then
    return null;
  end if;
  insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
  select distinct r.tenant_id, r.experiment_id, r.phase, r.person, r.lead_id
    from (
      select n.tenant_id, n.lead_id, n.name from new_rows n where n.lead_id is not null
      union
      select o.tenant_id, o.lead_id, o.name from old_rows o where o.lead_id is not null
    ) n
    join lateral (
      select u.tenant_id, u.experiment_id, u.phase, u.person, u.lead_id from experiments.result_units u where u.tenant_id = n.tenant_id and u.lead_id = n.lead_id
      union all
      select q.tenant_id, q.experiment_id, q.phase, q.person, q.lead_id from experiments.result_queue q where q.tenant_id = n.tenant_id and q.lead_id = n.lead_id
    ) r on true
    join experiments.experiments e on e.id = r.experiment_id and e.goals @> jsonb_build_array(jsonb_build_object('event', n.name))
   -- A lead being deleted (its events' lead cleared by the cascade) takes its maintained rows with it.
   where exists (select 1 from marketing.leads l where l.id = r.lead_id);
  return null;
end $$;

-- Goal events inserted: the same without an old table (the statement naming one could not be planned for an insert).
create function experiments.refresh_results_of_new_events() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from experiments.experiments e where e.status <> 'draft' and e.goals <> '[]'::jsonb) then
    return null;
  end if;
  insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
  select distinct r.tenant_id, r.experiment_id, r.phase, r.person, r.lead_id
    from (select distinct n.tenant_id, n.lead_id, n.name from new_rows n where n.lead_id is not null) n
    join lateral (
      select u.tenant_id, u.experiment_id, u.phase, u.person, u.lead_id from experiments.result_units u where u.tenant_id = n.tenant_id and u.lead_id = n.lead_id
      union all
      select q.tenant_id, q.experiment_id, q.phase, q.person, q.lead_id from experiments.result_queue q where q.tenant_id = n.tenant_id and q.lead_id = n.lead_id
    ) r on true
    join experiments.experiments e on e.id = r.experiment_id and e.goals @> jsonb_build_array(jsonb_build_object('event', n.name));
  return null;
end $$;
drop trigger events_experiment_results_insert on analytics.events;
create trigger events_experiment_results_insert after insert on analytics.events
  referencing new table as new_rows for each statement execute function experiments.refresh_results_of_new_events();

-- The drain (experiments__maintain_results, under the tenant): up to p_limit queued keys taken (skip locked: two
-- drains split the queue) and their persons recomputed. The delete comes first and the recompute reads in a later
-- statement: a writer whose queue row was taken had committed before it, so its rows are read; one that commits
-- later left its queue row for the next drain. Returns how many queue rows were taken.
create function experiments.drain_result_queue(p_limit integer)
returns integer language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  n integer; ts uuid[]; es uuid[]; ps integer[]; us text[];
begin
  with taken as (
    delete from experiments.result_queue q
     where q.tenant_id = core.current_tenant_id()
       and q.id in (select id from experiments.result_queue where tenant_id = core.current_tenant_id() order by id limit p_limit for update skip locked)
    returning q.tenant_id, q.experiment_id, q.phase, q.person
  ), k as (
    select distinct tenant_id, experiment_id, phase, person from taken
  )
  select (select count(*)::int from taken), array_agg(tenant_id), array_agg(experiment_id), array_agg(phase), array_agg(person)
    into n, ts, es, ps, us from k;
  if es is not null then
    perform experiments.refresh_result_units(ts, es, ps, us);
  end if;
  return n;
end $$;

-- What the persons still queued of a phase change in its totals: their rows as they should be now, minus their
-- maintained rows. A read adds it to the totals and deltas, in one snapshot, so the answer is exact whether or not the
-- drain (and the fold) ran: a person not queued in that snapshot has its maintained row as its data says.
create function experiments.queued_result_corrections(p_experiment_id uuid, p_phase integer)
returns table (metric text, variation_key text, ord integer, n bigint, total numeric, total_sq numeric)
language sql stable
as $$
  with q as (
    select distinct q.tenant_id, q.experiment_id, q.phase, q.person from experiments.result_queue q
     where q.tenant_id = core.current_tenant_id() and q.experiment_id = p_experiment_id and q.phase = p_phase
  ), a as (
    select pg_catalog.array_agg(tenant_id) as ts, pg_catalog.array_agg(experiment_id) as es, pg_catalog.array_agg(phase) as ps, pg_catalog.array_agg(person) as us from q
  )
  select c.metric, c.variation_key, c.ord, c.n, c.total, c.total_sq
    from a cross join lateral experiments.fresh_result_units(a.ts, a.es, a.ps, a.us) f
    cross join lateral experiments.unit_contributions(f.lead_id, f.variation_key, f.exposed, f.goal_hits, f.goal_values) c
  union all
  select c.metric, c.variation_key, c.ord, -c.n, -c.total, -c.total_sq
    from q join experiments.result_units r on r.tenant_id = q.tenant_id and r.experiment_id = q.experiment_id and r.phase = q.phase and r.person = q.person
    cross join lateral experiments.unit_contributions(r.lead_id, r.variation_key, r.exposed, r.goal_hits, r.goal_values) c
$$;

-- Cross-tenant, for experiments__maintain_results: the tenants with keys to drain, deltas to fold or an experiment to
-- rebuild. Answers tenant ids only; the work runs under each tenant.
create or replace function experiments.results_work_tenants(p_limit int)
returns table (tenant_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select t from (
    select distinct q.tenant_id as t from experiments.result_queue q
    union
    select distinct d.tenant_id from experiments.result_deltas d
    union
    select e.tenant_id from experiments.experiments e where e.results_goals is distinct from e.goals
  ) w limit p_limit
$$;
revoke execute on function experiments.results_work_tenants(int) from public;

grant execute on function experiments.fresh_result_units(uuid[], uuid[], integer[], text[]), experiments.drain_result_queue(integer),
  experiments.queued_result_corrections(uuid, integer) to app_user;
