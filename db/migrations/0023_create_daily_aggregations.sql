-- The query API's day level: event counts per tenant day (its timezone) summed from the 5-minute rollups, so a 30-day dashboard query reads 30 rows per dimension tuple instead of 8,640.

-- Same dimensions as analytics.event_aggregations ('' when absent). Rebuilt per (tenant, day) from
-- event_aggregations by analytics__roll_up_days: deleted and inserted, never incremented.
create table analytics.daily_aggregations (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  day date not null,
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
  primary key (tenant_id, day, name, source, channel, country, device, producer, form_id, flow_id, template, campaign_id, experiment, variant)
);
create index daily_aggregations_name_idx on analytics.daily_aggregations (tenant_id, name, day);

-- Days whose 5-minute rollups changed since their day rows were built: appended by the trigger below (one row per
-- statement and day, so writers never wait on each other), deleted by the day roll-up once it has rebuilt the day.
-- The query API does not read a day's rows while the day has a mark.
create table analytics.daily_aggregations_dirty (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  day date not null,
  marked_at timestamptz not null default now()
);
create index daily_aggregations_dirty_day_idx on analytics.daily_aggregations_dirty (tenant_id, day);

do $$
declare t text;
begin
  foreach t in array array['analytics.daily_aggregations', 'analytics.daily_aggregations_dirty'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;
grant select, insert, delete on analytics.daily_aggregations, analytics.daily_aggregations_dirty to app_user;

-- Marks the tenant days (their timezone) of the buckets a statement rebuilt. Runs as the writer, under its tenant.
create function analytics.mark_daily_aggregations_dirty() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_op = 'INSERT' then
    insert into analytics.daily_aggregations_dirty (tenant_id, day)
    select distinct r.tenant_id, (r.bucket_start at time zone t.timezone)::date
      from new_rows r join core.tenants t on t.id = r.tenant_id;
  else
    insert into analytics.daily_aggregations_dirty (tenant_id, day)
    select distinct r.tenant_id, (r.bucket_start at time zone t.timezone)::date
      from old_rows r join core.tenants t on t.id = r.tenant_id;
  end if;
  return null;
end $$;

create trigger event_aggregations_mark_days_insert after insert on analytics.event_aggregations
  referencing new table as new_rows for each statement execute function analytics.mark_daily_aggregations_dirty();
create trigger event_aggregations_mark_days_delete after delete on analytics.event_aggregations
  referencing old table as old_rows for each statement execute function analytics.mark_daily_aggregations_dirty();

-- Cross-tenant, for analytics__roll_up_days: the tenants with a day to rebuild. Answers tenant ids only.
create function analytics.daily_aggregations_dirty_tenants(p_limit int)
  returns table (tenant_id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct d.tenant_id from analytics.daily_aggregations_dirty d order by 1 limit p_limit
$$;
revoke execute on function analytics.daily_aggregations_dirty_tenants(int) from public;
grant execute on function analytics.daily_aggregations_dirty_tenants(int) to app_user;
