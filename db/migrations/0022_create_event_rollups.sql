-- Rollups of analytics.events: 5-minute counts, daily unique leads and visitors, daily KPIs, rebuilt from raw for every bucket a statement touches, so they can never drift from it.

-- The 5-minute bucket of a moment, aligned in UTC. One definition, used by the trigger, the roll-up and reconciliation.
create function analytics.bucket_of(p_at timestamptz) returns timestamptz
  language sql immutable parallel safe
  as $$ select date_bin('5 minutes', p_at, timestamptz '2000-01-01 00:00:00+00') $$;
grant execute on function analytics.bucket_of(timestamptz) to app_user;

-- Event counts per tenant, bucket, name and dimension values. '' stands for "absent" (never null: a key column, and
-- the query API groups by these). Rebuilt per (tenant, bucket) from raw by the roll-up: deleted and inserted, never
-- incremented.
create table analytics.event_aggregations (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  bucket_start timestamptz not null,
  name text not null,
  source text not null default '',
  channel text not null default '',
  country text not null default '',
  device text not null default '',
  producer text not null default '',
  form_id text not null default '',
  flow_id text not null default '',
  template text not null default '',
  campaign_id text not null default '',
  experiment text not null default '',
  variant text not null default '',
  events bigint not null check (events > 0),
  primary key (tenant_id, bucket_start, name, source, channel, country, device, producer, form_id, flow_id, template, campaign_id, experiment, variant)
);
create index event_aggregations_name_idx on analytics.event_aggregations (tenant_id, name, bucket_start);

-- Who did what on a day (the tenant's timezone): unique leads or visitors over any range of days is
-- count(distinct subject) of its rows. lead_id is the subject of a 'lead' row as a key to marketing.leads, so merge
-- and erasure find them (lead-references catalog).
create table analytics.daily_uniques (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  day date not null,
  name text not null,
  kind text not null check (kind in ('lead', 'visitor')),
  subject text not null,
  lead_id uuid generated always as (case when kind = 'lead' then subject::uuid end) stored
    references marketing.leads (id) on delete cascade,
  primary key (tenant_id, day, name, kind, subject)
);
create index daily_uniques_lead_idx on analytics.daily_uniques (tenant_id, lead_id) where lead_id is not null;

-- A log of buckets whose raw events changed: one row per (statement, bucket), appended by the trigger below and
-- deleted by the roll-up once it has rebuilt the bucket. Append-only on purpose, not one row per bucket upserted: a
-- writer never waits for another writer's lock on the current bucket, and the roll-up can only delete marks that
-- committed, whose events its next statement therefore sees; a mark still uncommitted survives the roll-up and makes
-- it rebuild the bucket again on the next run (domains/analytics/README.md, "Why no event is lost").
create table analytics.rollup_dirty (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  bucket_start timestamptz not null,
  -- Rows changed or went (update, delete): the days' unique subjects are recounted, not only added to.
  recount boolean not null default false,
  marked_at timestamptz not null default now()
);
create index rollup_dirty_bucket_idx on analytics.rollup_dirty (tenant_id, bucket_start);
create index rollup_dirty_oldest_idx on analytics.rollup_dirty (bucket_start);

-- Per tenant: every bucket before `watermark` was rolled up and clean when the last run ended.
create table analytics.rollup_state (
  tenant_id uuid primary key references core.tenants (id) on delete cascade,
  watermark timestamptz not null,
  last_run_at timestamptz not null,
  buckets_rolled_up bigint not null default 0
);

-- Daily KPIs per tenant day (its timezone). Rates keep numerator and denominator, so a range is sum/sum, exactly;
-- counts (leads) keep the count as numerator and no denominator.
create table analytics.metrics (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  day date not null,
  metric text not null,
  dimension text not null default '',
  numerator numeric not null,
  denominator numeric,
  value numeric,
  primary key (tenant_id, day, metric, dimension)
);

do $$
declare t text;
begin
  foreach t in array array['analytics.event_aggregations', 'analytics.daily_uniques', 'analytics.rollup_dirty', 'analytics.rollup_state', 'analytics.metrics'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;
grant select, insert, delete on analytics.event_aggregations, analytics.daily_uniques, analytics.rollup_dirty, analytics.metrics to app_user;
grant select, insert, update on analytics.rollup_state to app_user;

-- Marks the buckets a statement's rows fall in (old and new rows: a moved event dirties both). Statement-level with
-- transition tables: one insert per statement whatever its size, allowed on a partitioned parent too. Runs as the
-- writer, under its tenant's row-level security: a statement can only mark its own tenant's buckets.
create function analytics.mark_rollup_dirty() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into analytics.rollup_dirty (tenant_id, bucket_start)
    select distinct n.tenant_id, analytics.bucket_of(n.occurred_at) from new_rows n;
  elsif tg_op = 'UPDATE' then
    insert into analytics.rollup_dirty (tenant_id, bucket_start, recount)
    select tenant_id, bucket_start, true from (
      select o.tenant_id, analytics.bucket_of(o.occurred_at) as bucket_start from old_rows o
      union
      select n.tenant_id, analytics.bucket_of(n.occurred_at) from new_rows n) b;
  else
    insert into analytics.rollup_dirty (tenant_id, bucket_start, recount)
    select distinct o.tenant_id, analytics.bucket_of(o.occurred_at), true from old_rows o;
  end if;
  return null;
end $$;

create trigger events_mark_rollup_insert after insert on analytics.events
  referencing new table as new_rows for each statement execute function analytics.mark_rollup_dirty();
create trigger events_mark_rollup_update after update on analytics.events
  referencing old table as old_rows new table as new_rows for each statement execute function analytics.mark_rollup_dirty();
create trigger events_mark_rollup_delete after delete on analytics.events
  referencing old table as old_rows for each statement execute function analytics.mark_rollup_dirty();

-- Cross-tenant, for the roll-up task: the tenants with a closed dirty bucket (its end at or before p_now), oldest
-- first. Answers tenant ids and times only; the work itself runs under each tenant.
create function analytics.rollup_dirty_tenants(p_now timestamptz, p_limit int)
  returns table (tenant_id uuid, oldest timestamptz)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select d.tenant_id, min(d.bucket_start)
    from analytics.rollup_dirty d
   where d.bucket_start <= p_now - interval '5 minutes'
   group by d.tenant_id
   order by 2, 1
   limit p_limit
$$;
revoke execute on function analytics.rollup_dirty_tenants(timestamptz, int) from public;
grant execute on function analytics.rollup_dirty_tenants(timestamptz, int) to app_user;

-- Cross-tenant, for /metrics: the platform's rollup health. oldest_dirty: the oldest bucket not rolled up yet (null
-- when none); difference: events by which clean, closed buckets in [p_from, p_now) differ from raw (0 when exact).
create function analytics.rollup_health(p_from timestamptz, p_now timestamptz)
  returns table (oldest_dirty timestamptz, dirty_buckets bigint, difference bigint)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  with raw as (
    select e.tenant_id, analytics.bucket_of(e.occurred_at) as bucket_start, count(*) as n
      from analytics.events e
     where e.occurred_at >= analytics.bucket_of(p_from) and e.occurred_at < analytics.bucket_of(p_now)
     group by 1, 2
  ), rolled as (
    select a.tenant_id, a.bucket_start, sum(a.events) as n
      from analytics.event_aggregations a
     where a.bucket_start >= analytics.bucket_of(p_from) and a.bucket_start < analytics.bucket_of(p_now)
     group by 1, 2
  ), dirty as (
    select distinct d.tenant_id, d.bucket_start from analytics.rollup_dirty d
  )
  select (select min(bucket_start) from analytics.rollup_dirty),
         (select count(*) from dirty),
         coalesce((select sum(abs(coalesce(r.n, 0) - coalesce(a.n, 0)))
                     from raw r full join rolled a using (tenant_id, bucket_start)
                    where not exists (select 1 from dirty d where d.tenant_id = coalesce(r.tenant_id, a.tenant_id)
                                                            and d.bucket_start = coalesce(r.bucket_start, a.bucket_start))), 0)::bigint
$$;
revoke execute on function analytics.rollup_health(timestamptz, timestamptz) from public;
grant execute on function analytics.rollup_health(timestamptz, timestamptz) to app_user;
