-- Experiment results read a handful of rows instead of counting a million units (issue 11): what the results count of each person in a phase (its winning variation, the variations it saw, its goal values within their windows) is kept by triggers on assignments, exposures and goal events, and every change of those rows becomes a delta of per-variation totals, folded by a task.

-- The goals the maintained rows were computed for. A goal change (PATCH) leaves it behind: results count that
-- experiment from scratch (experiments/queries.ts countPhase) until experiments__maintain_results rebuilt it.
alter table experiments.experiments add column results_goals jsonb;
-- An experiment with units when this migration runs has nothing maintained yet: null until its first rebuild.
update experiments.experiments e set results_goals = e.goals
 where not exists (select 1 from experiments.assignments a where a.experiment_id = e.id)
   and not exists (select 1 from experiments.exposures x where x.experiment_id = e.id);

-- A new experiment has no units: its (empty) results are built for its goals from the start.
create function experiments.set_results_goals() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  new.results_goals := new.goals;
  return new;
end $$;
create trigger experiments_results_goals before insert on experiments.experiments
  for each row execute function experiments.set_results_goals();

-- One row per person of a phase that holds an assignment or an exposure: person is the lead id (as text) for rows
-- of a lead, or 'u:' || unit_id for a visitor's rows that belong to no lead yet (each such unit is its own person, as
-- countPhase counts it). variation_key/assigned_at: the winning (earliest) assignment, null for a person exposed
-- without one. exposed: the distinct variations it was exposed to. goal_hits/goal_values: per goal of the experiment
-- (results_goals order), the qualifying events within the window after assigned_at (and not before the phase began)
-- and their value (1 per event, or a numeric property summed); only for lead persons holding an assignment.
create table experiments.result_units (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  person text not null,
  lead_id uuid references marketing.leads (id) on delete cascade,
  variation_key text,
  assigned_at timestamptz,
  exposed text[] not null default '{}',
  goal_hits integer[] not null default '{}',
  goal_values numeric[] not null default '{}',
  primary key (tenant_id, experiment_id, phase, person)
);
create index result_units_lead_idx on experiments.result_units (tenant_id, lead_id) where lead_id is not null;

-- Per-variation totals of a phase: 'units' (persons whose winning assignment is the variation), 'exposed' (persons
-- exposed to it), 'multi' (persons exposed to more than one variation; variation_key ''), 'goal' (per goal ord:
-- persons with a qualifying event, and the sum and sum of squares of their values, exact as numeric).
-- result_deltas: appended by every statement that changes result_units (one row per changed total, never an update,
-- so concurrent writers never wait on each other); result_totals: the deltas folded. A read adds both, in one
-- snapshot, so the answer is exact whether or not the fold has run.
create table experiments.result_deltas (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  metric text not null check (metric in ('units', 'exposed', 'multi', 'goal')),
  variation_key text not null,
  ord integer not null,
  n bigint not null,
  total numeric not null,
  total_sq numeric not null
);
create index result_deltas_phase_idx on experiments.result_deltas (tenant_id, experiment_id, phase);

create table experiments.result_totals (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  metric text not null check (metric in ('units', 'exposed', 'multi', 'goal')),
  variation_key text not null,
  ord integer not null,
  n bigint not null,
  total numeric not null,
  total_sq numeric not null,
  primary key (tenant_id, experiment_id, phase, metric, variation_key, ord)
);

-- What one result_units row adds to the totals. No SET clause, so the planner inlines it into the trigger's statement
-- (with one, every call planned its body again: ~15 ms per assignment statement).
create function experiments.unit_contributions(p_lead_id uuid, p_variation_key text, p_exposed text[], p_goal_hits integer[], p_goal_values numeric[])
returns table (metric text, variation_key text, ord integer, n bigint, total numeric, total_sq numeric)
language sql immutable
as $$
  select 'units'::text, p_variation_key, -1, 1::bigint, 0::numeric, 0::numeric where p_variation_key is not null
  union all
  select 'exposed', x, -1, 1::bigint, 0::numeric, 0::numeric from pg_catalog.unnest(p_exposed) x
  union all
  select 'multi', '', -1, 1::bigint, 0::numeric, 0::numeric where pg_catalog.cardinality(p_exposed) > 1
  union all
  select 'goal', p_variation_key, g.i - 1, 1::bigint, coalesce(p_goal_values[g.i], 0), coalesce(p_goal_values[g.i], 0) * coalesce(p_goal_values[g.i], 0)
    from pg_catalog.generate_subscripts(p_goal_hits, 1) g(i)
   where p_variation_key is not null and p_lead_id is not null and p_goal_hits[g.i] > 0
$$;

-- Statement-level, with transition tables: one insert per statement, whatever its size (a rebuild of a million rows
-- appends a few rows). Rows of an experiment being deleted add nothing (its totals go with it).
create function experiments.record_result_deltas() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into experiments.result_deltas (tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq)
    select r.tenant_id, r.experiment_id, r.phase, c.metric, c.variation_key, c.ord, sum(c.n), sum(c.total), sum(c.total_sq)
      from new_rows r cross join lateral experiments.unit_contributions(r.lead_id, r.variation_key, r.exposed, r.goal_hits, r.goal_values) c
     group by 1, 2, 3, 4, 5, 6;
  elsif tg_op = 'UPDATE' then
    insert into experiments.result_deltas (tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq)
    select d.tenant_id, d.experiment_id, d.phase, d.metric, d.variation_key, d.ord, sum(d.n), sum(d.total), sum(d.total_sq)
      from (
        select r.tenant_id, r.experiment_id, r.phase, c.metric, c.variation_key, c.ord, c.n, c.total, c.total_sq
          from new_rows r cross join lateral experiments.unit_contributions(r.lead_id, r.variation_key, r.exposed, r.goal_hits, r.goal_values) c
        union all
        select r.tenant_id, r.experiment_id, r.phase, c.metric, c.variation_key, c.ord, -c.n, -c.total, -c.total_sq
          from old_rows r cross join lateral experiments.unit_contributions(r.lead_id, r.variation_key, r.exposed, r.goal_hits, r.goal_values) c
      ) d
     group by 1, 2, 3, 4, 5, 6
    having sum(d.n) <> 0 or sum(d.total) <> 0 or sum(d.total_sq) <> 0;
  else
    insert into experiments.result_deltas (tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq)
    select r.tenant_id, r.experiment_id, r.phase, c.metric, c.variation_key, c.ord, -sum(c.n), -sum(c.total), -sum(c.total_sq)
      from old_rows r cross join lateral experiments.unit_contributions(r.lead_id, r.variation_key, r.exposed, r.goal_hits, r.goal_values) c
     where exists (select 1 from experiments.experiments e where e.id = r.experiment_id)
     group by 1, 2, 3, 4, 5, 6;
  end if;
  return null;
end $$;

create trigger result_units_deltas_insert after insert on experiments.result_units
  referencing new table as new_rows for each statement execute function experiments.record_result_deltas();
create trigger result_units_deltas_update after update on experiments.result_units
  referencing old table as old_rows new table as new_rows for each statement execute function experiments.record_result_deltas();
create trigger result_units_deltas_delete after delete on experiments.result_units
  referencing old table as old_rows for each statement execute function experiments.record_result_deltas();

-- Recomputes the named persons' rows from scratch (their assignments, exposures and goal events), so any change,
-- repeat, late arrival or move of those comes out the same as counting everything again. Exactly once under
-- concurrency: each (experiment, phase, person) is locked (transaction-level advisory lock, in one order) before the
-- next statement reads, and under read committed that statement sees every transaction that held the lock before;
-- a rebuild of the experiment (exclusive lock on the experiment) and these (shared) wait for each other.
-- A generic plan, planned once per session: a custom plan (PL/pgSQL's default while it looks cheaper) planned this
-- statement on every call, most of an assignment's time. Every probe in it is by index whatever the keys.
create function experiments.refresh_result_units(p_tenants uuid[], p_experiments uuid[], p_phases integer[], p_persons text[])
returns void language plpgsql set search_path = pg_catalog, pg_temp set plan_cache_mode = force_generic_plan
as $$
begin
  perform pg_advisory_xact_lock_shared(hashtext('experiments.result_units'), hashtext(k.e::text))
     from (select distinct e from unnest(p_experiments) e order by 1) k;
  perform pg_advisory_xact_lock(hashtextextended(k.e::text || ':' || k.p::text || ':' || k.person, 0))
     from (select distinct e, p, person from unnest(p_experiments, p_phases, p_persons) as u(e, p, person) order by 1, 2, 3) k;

  with k as (
    select distinct u.t as tenant_id, u.e as experiment_id, u.p as phase, u.person,
           case when u.person like 'u:%' then null else u.person::uuid end as lead_id,
           case when u.person like 'u:%' then substr(u.person, 3) end as unit_id
      from unnest(p_tenants, p_experiments, p_phases, p_persons) as u(t, e, p, person)
      join experiments.experiments ex on ex.id = u.e
  ), fresh as (
    select k.tenant_id, k.experiment_id, k.phase, k.person, k.lead_id, w.variation_key, w.assigned_at,
           coalesce(x.exposed, '{}') as exposed, coalesce(g.hits, '{}') as goal_hits, coalesce(g.vals, '{}') as goal_values
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
        select array_agg(distinct c.variation_key order by c.variation_key) as exposed from (
          select x.variation_key from experiments.exposures x
           where x.tenant_id = k.tenant_id and x.experiment_id = k.experiment_id and x.phase = k.phase and x.lead_id = k.lead_id
          union all
          select x.variation_key from experiments.exposures x
           where x.tenant_id = k.tenant_id and x.experiment_id = k.experiment_id and x.phase = k.phase and x.unit_id = k.unit_id and x.lead_id is null
        ) c
      ) x on true
      left join lateral (
        select array_agg(coalesce(v.hits, 0) order by gl.ord) as hits, array_agg(coalesce(v.val, 0) order by gl.ord) as vals
          from experiments.experiments e
          join experiments.phases ph on ph.experiment_id = e.id and ph.phase = k.phase
          cross join lateral jsonb_array_elements(e.goals) with ordinality as gl(goal, ord)
          left join lateral (
            select count(*)::int as hits,
                   sum(case when gl.goal ->> 'aggregate' is distinct from 'sum' or gl.goal ->> 'property' is null then 1
                            when jsonb_typeof(ev.properties -> (gl.goal ->> 'property')) = 'number' then (ev.properties ->> (gl.goal ->> 'property'))::numeric
                            else 0 end) as val
              from analytics.events ev
             where ev.tenant_id = k.tenant_id and ev.lead_id = k.lead_id and ev.name = gl.goal ->> 'event'
               and ev.occurred_at >= greatest(w.assigned_at, ph.started_at)
               and ev.occurred_at < w.assigned_at + make_interval(hours => (gl.goal ->> 'windowHours')::int)
          ) v on true
         where e.id = k.experiment_id and w.variation_key is not null and k.lead_id is not null
      ) g on true
  ), kept as (
    select * from fresh where variation_key is not null or cardinality(exposed) > 0
  ), gone as (
    delete from experiments.result_units r using k
     where r.tenant_id = k.tenant_id and r.experiment_id = k.experiment_id and r.phase = k.phase and r.person = k.person
       and not exists (select 1 from kept f where f.experiment_id = k.experiment_id and f.phase = k.phase and f.person = k.person)
    returning 1
  )
  insert into experiments.result_units as r (tenant_id, experiment_id, phase, person, lead_id, variation_key, assigned_at, exposed, goal_hits, goal_values)
  select tenant_id, experiment_id, phase, person, lead_id, variation_key, assigned_at, exposed, goal_hits, goal_values from kept
  on conflict (tenant_id, experiment_id, phase, person) do update
     set lead_id = excluded.lead_id, variation_key = excluded.variation_key, assigned_at = excluded.assigned_at, exposed = excluded.exposed,
         goal_hits = excluded.goal_hits, goal_values = excluded.goal_values
   where (r.variation_key, r.assigned_at, r.exposed, r.goal_hits, r.goal_values)
         is distinct from (excluded.variation_key, excluded.assigned_at, excluded.exposed, excluded.goal_hits, excluded.goal_values);
end $$;

-- Assignments and exposures (same key columns): the persons a statement's rows belong to, before and after.
create function experiments.refresh_results_of_rows() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  ts uuid[]; es uuid[]; ps integer[]; us text[];
begin
  if tg_op = 'INSERT' then
    select array_agg(t), array_agg(e), array_agg(p), array_agg(person) into ts, es, ps, us
      from (select distinct n.tenant_id as t, n.experiment_id as e, n.phase as p, coalesce(n.lead_id::text, 'u:' || n.unit_id) as person from new_rows n) k;
  elsif tg_op = 'UPDATE' then
    select array_agg(t), array_agg(e), array_agg(p), array_agg(person) into ts, es, ps, us
      from (select n.tenant_id as t, n.experiment_id as e, n.phase as p, coalesce(n.lead_id::text, 'u:' || n.unit_id) as person from new_rows n
            union
            select o.tenant_id, o.experiment_id, o.phase, coalesce(o.lead_id::text, 'u:' || o.unit_id) from old_rows o) k;
  else
    select array_agg(t), array_agg(e), array_agg(p), array_agg(person) into ts, es, ps, us
      from (select distinct o.tenant_id as t, o.experiment_id as e, o.phase as p, coalesce(o.lead_id::text, 'u:' || o.unit_id) as person from old_rows o) k;
  end if;
  if es is not null then
    perform experiments.refresh_result_units(ts, es, ps, us);
  end if;
  return null;
end $$;

create trigger assignments_results_insert after insert on experiments.assignments
  referencing new table as new_rows for each statement execute function experiments.refresh_results_of_rows();
create trigger assignments_results_update after update on experiments.assignments
  referencing old table as old_rows new table as new_rows for each statement execute function experiments.refresh_results_of_rows();
create trigger assignments_results_delete after delete on experiments.assignments
  referencing old table as old_rows for each statement execute function experiments.refresh_results_of_rows();
create trigger exposures_results_insert after insert on experiments.exposures
  referencing new table as new_rows for each statement execute function experiments.refresh_results_of_rows();
create trigger exposures_results_update after update on experiments.exposures
  referencing old table as old_rows new table as new_rows for each statement execute function experiments.refresh_results_of_rows();
create trigger exposures_results_delete after delete on experiments.exposures
  referencing old table as old_rows for each statement execute function experiments.refresh_results_of_rows();

-- Goal events (inserted, or moved by a merge or an erasure): the assigned persons they belong to, in experiments that
-- have the event as a goal, are recomputed. A statement of the tenant's with no started experiment that has goals
-- costs one probe of experiments.experiments. Deleted events (retention) change nothing: a conversion once counted
-- stays counted, until the person changes otherwise or the experiment is rebuilt.
create function experiments.refresh_results_of_events() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  ts uuid[]; es uuid[]; ps integer[]; us text[];
begin
  if not exists (select 1 from experiments.experiments e where e.status <> 'draft' and e.goals <> '[]'::jsonb) then
    return null;
  end if;
  if tg_op = 'INSERT' then
    select array_agg(t), array_agg(e), array_agg(p), array_agg(person) into ts, es, ps, us from (
      select distinct r.tenant_id as t, r.experiment_id as e, r.phase as p, r.person
        from (select distinct n.tenant_id, n.lead_id, n.name from new_rows n where n.lead_id is not null) n
        join experiments.result_units r on r.tenant_id = n.tenant_id and r.lead_id = n.lead_id
        join experiments.experiments e on e.id = r.experiment_id and e.goals @> jsonb_build_array(jsonb_build_object('event', n.name))
    ) k;
  else
    select array_agg(t), array_agg(e), array_agg(p), array_agg(person) into ts, es, ps, us from (
      select distinct r.tenant_id as t, r.experiment_id as e, r.phase as p, r.person
        from (select n.tenant_id, n.lead_id, n.name from new_rows n where n.lead_id is not null
              union
              select o.tenant_id, o.lead_id, o.name from old_rows o where o.lead_id is not null) n
        join experiments.result_units r on r.tenant_id = n.tenant_id and r.lead_id = n.lead_id
        join experiments.experiments e on e.id = r.experiment_id and e.goals @> jsonb_build_array(jsonb_build_object('event', n.name))
    ) k;
  end if;
  if es is not null then
    perform experiments.refresh_result_units(ts, es, ps, us);
  end if;
  return null;
end $$;

create trigger events_experiment_results_insert after insert on analytics.events
  referencing new table as new_rows for each statement execute function experiments.refresh_results_of_events();
create trigger events_experiment_results_update after update on analytics.events
  referencing old table as old_rows new table as new_rows for each statement execute function experiments.refresh_results_of_events();

-- Every person of every phase of one experiment recomputed, set-based (hash joins, not a probe per person): for an
-- experiment whose goals changed, or that has units from before this migration. Holds the experiment's exclusive
-- lock: refreshes of its persons (new assignments to it, exposures, goal events) wait until it commits. Returns the
-- goals it was built for (stored in results_goals).
create function experiments.rebuild_result_units(p_experiment_id uuid)
returns jsonb language plpgsql set search_path = pg_catalog, pg_temp
as $$
declare
  v_goals jsonb;
begin
  perform pg_advisory_xact_lock(hashtext('experiments.result_units'), hashtext(p_experiment_id::text));
  select e.goals into v_goals from experiments.experiments e where e.id = p_experiment_id for update;
  if not found then
    return null;
  end if;
  delete from experiments.result_units r where r.experiment_id = p_experiment_id;
  with gl as (
    select (g.ord - 1)::int as ord, g.goal ->> 'event' as event, (g.goal ->> 'windowHours')::int as window_hours,
           case when g.goal ->> 'aggregate' = 'sum' then g.goal ->> 'property' end as property
      from jsonb_array_elements(v_goals) with ordinality as g(goal, ord)
  ), a as (
    select distinct on (a.phase, coalesce(a.lead_id::text, 'u:' || a.unit_id))
           a.tenant_id, a.phase, coalesce(a.lead_id::text, 'u:' || a.unit_id) as person, a.lead_id, a.variation_key, a.assigned_at, ph.started_at
      from experiments.assignments a join experiments.phases ph on ph.experiment_id = a.experiment_id and ph.phase = a.phase
     where a.experiment_id = p_experiment_id
     order by a.phase, coalesce(a.lead_id::text, 'u:' || a.unit_id), a.assigned_at, a.id
  ), x as (
    select x.tenant_id, x.phase, coalesce(x.lead_id::text, 'u:' || x.unit_id) as person, x.lead_id,
           array_agg(distinct x.variation_key order by x.variation_key) as exposed
      from experiments.exposures x where x.experiment_id = p_experiment_id
     group by 1, 2, 3, 4
  ), hits as (
    select a.phase, a.person, gl.ord, count(*)::int as hits,
           sum(case when gl.property is null then 1
                    when jsonb_typeof(ev.properties -> gl.property) = 'number' then (ev.properties ->> gl.property)::numeric
                    else 0 end) as val
      from gl
      join analytics.events ev on ev.name = gl.event
      join a on a.lead_id = ev.lead_id
     where ev.name in (select event from gl) and ev.lead_id is not null
       and ev.occurred_at >= (select min(ph.started_at) from experiments.phases ph where ph.experiment_id = p_experiment_id)
       and ev.occurred_at >= greatest(a.assigned_at, a.started_at) and ev.occurred_at < a.assigned_at + make_interval(hours => gl.window_hours)
     group by 1, 2, 3
  ), goals as (
    select a.phase, a.person, array_agg(coalesce(h.hits, 0) order by gl.ord) as goal_hits, array_agg(coalesce(h.val, 0) order by gl.ord) as goal_values
      from a cross join gl
      left join hits h on h.phase = a.phase and h.person = a.person and h.ord = gl.ord
     where a.lead_id is not null
     group by 1, 2
  )
  insert into experiments.result_units (tenant_id, experiment_id, phase, person, lead_id, variation_key, assigned_at, exposed, goal_hits, goal_values)
  select coalesce(a.tenant_id, x.tenant_id), p_experiment_id, coalesce(a.phase, x.phase), coalesce(a.person, x.person), coalesce(a.lead_id, x.lead_id),
         a.variation_key, a.assigned_at, coalesce(x.exposed, '{}'), coalesce(g.goal_hits, '{}'), coalesce(g.goal_values, '{}')
    from a
    full join x on x.phase = a.phase and x.person = a.person
    left join goals g on g.phase = a.phase and g.person = a.person;
  update experiments.experiments set results_goals = v_goals where id = p_experiment_id;
  return v_goals;
end $$;

-- Cross-tenant, for experiments__maintain_results: the tenants with deltas to fold or an experiment to rebuild.
-- Answers tenant ids only; the work runs under each tenant.
create function experiments.results_work_tenants(p_limit int)
returns table (tenant_id uuid)
language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select t from (
    select distinct d.tenant_id as t from experiments.result_deltas d
    union
    select e.tenant_id from experiments.experiments e where e.results_goals is distinct from e.goals
  ) w limit p_limit
$$;
revoke execute on function experiments.results_work_tenants(int) from public;

do $$
declare t text;
begin
  foreach t in array array['experiments.result_units', 'experiments.result_deltas', 'experiments.result_totals'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on experiments.result_units, experiments.result_deltas, experiments.result_totals to app_user;
grant execute on function experiments.results_work_tenants(int), experiments.rebuild_result_units(uuid),
  experiments.refresh_result_units(uuid[], uuid[], integer[], text[]), experiments.unit_contributions(uuid, text, text[], integer[], numeric[]) to app_user;
