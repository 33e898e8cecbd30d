-- analytics.events becomes natively partitioned by UTC day on occurred_at, so retention drops whole days instead of deleting rows one by one; dedupe moves to analytics.event_keys because a partitioned table's unique keys must include occurred_at.

-- ---------------------------------------------------------------------------------------------------------
-- Dedupe keys: one row per (tenant, dedupe key) ever recorded, across every partition, so a copy arriving months
-- later (another day's partition) is still refused. occurred_at is the event's: the keys of a day go when the day's
-- partition is dropped (in batches, by the nightly retention).
create table analytics.event_keys (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  dedupe_key text not null,
  occurred_at timestamptz not null,
  primary key (tenant_id, dedupe_key)
);
create index event_keys_tenant_occurred_idx on analytics.event_keys (tenant_id, occurred_at);
alter table analytics.event_keys enable row level security;
alter table analytics.event_keys force row level security;
create policy tenant_isolation on analytics.event_keys
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
-- Added with their events (domains/analytics recordEvents); deleted by retention once their day is gone.
grant select, insert, delete on analytics.event_keys to app_user;

-- The unique index 0002 made guarantees one row per key.
insert into analytics.event_keys (tenant_id, dedupe_key, occurred_at)
select tenant_id, dedupe_key, occurred_at from analytics.events where dedupe_key is not null;

-- ---------------------------------------------------------------------------------------------------------
-- The table as before (every column, default, identity), partitioned. The old one steps aside, its rows move over,
-- then it goes; indexes are built after the move (faster than maintaining them row by row).
alter table analytics.events rename to events_unpartitioned;
create table analytics.events (
  like analytics.events_unpartitioned including defaults including identity including generated including comments
    including storage including compression including statistics
) partition by range (occurred_at);

-- Rows whose day has no partition yet (a producer that names its days only inside its statement, e.g. WhatsApp
-- ingestion's recordEventsFrom, or late data) land here instead of failing; analytics__create_partitions moves
-- them into their day's partition, and retention trims them like any other row.
create table analytics.events_default partition of analytics.events default;
alter table analytics.events_default enable row level security;
alter table analytics.events_default force row level security;
create policy tenant_isolation on analytics.events_default
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());

-- One day's partition, analytics.events_pYYYYMMDD, with the table's row-level security (access goes through the
-- parent, whose policy applies; the runtime role has no privilege on partitions, and they are isolated anyway).
-- Rows a producer stored in the default partition for that day (it could not create the day: see
-- ensure_event_partitions) move into it. Internal: the runtime role reaches it only through the functions below.
create function analytics.create_event_partition(p_day date)
  returns boolean
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  part text := 'events_p' || to_char(p_day, 'YYYYMMDD');
  lo timestamptz := p_day::timestamp at time zone 'UTC';
  hi timestamptz := (p_day + 1)::timestamp at time zone 'UTC';
  strays boolean;
begin
  if to_regclass('analytics.' || part) is not null then return false; end if;
  -- Two creators of the same day: the second waits here, then finds it made.
  perform pg_advisory_xact_lock(hashtext('analytics.events'), hashtext(part));
  if to_regclass('analytics.' || part) is not null then return false; end if;
  strays := exists (select 1 from analytics.events_default where occurred_at >= lo and occurred_at < hi);
  if strays then
    -- A partition cannot be created while the default partition holds rows of its range: they step out first.
    drop table if exists pg_temp.analytics_events_moving;
    create temp table analytics_events_moving on commit drop as
      select * from analytics.events_default where occurred_at >= lo and occurred_at < hi;
    delete from analytics.events_default where occurred_at >= lo and occurred_at < hi;
  end if;
  execute format('create table analytics.%I partition of analytics.events for values from (%L) to (%L)', part, lo, hi);
  execute format('alter table analytics.%I enable row level security', part);
  execute format('alter table analytics.%I force row level security', part);
  execute format('create policy tenant_isolation on analytics.%I using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', part);
  if strays then
    execute format('insert into analytics.%I overriding system value select * from pg_temp.analytics_events_moving', part);
    drop table pg_temp.analytics_events_moving;
  end if;
  return true;
end $$;
revoke execute on function analytics.create_event_partition(date) from public;

-- The days the existing rows need.
select count(analytics.create_event_partition(d))
  from (select distinct (occurred_at at time zone 'UTC')::date as d from analytics.events_unpartitioned) days;

insert into analytics.events overriding system value select * from analytics.events_unpartitioned;
select setval(pg_get_serial_sequence('analytics.events', 'id'), coalesce((select max(id) from analytics.events_unpartitioned), 0) + 1, false);

-- The same privileges as before, table and column grants alike (0002, 0016, 0017, 0018, 0019, 0020), copied from
-- the catalog so none is forgotten.
do $$
declare r record;
begin
  for r in
    select a.privilege_type, g.rolname
      from pg_class c, aclexplode(c.relacl) a join pg_roles g on g.oid = a.grantee
     where c.oid = 'analytics.events_unpartitioned'::regclass and a.grantee <> c.relowner
  loop
    execute format('grant %s on analytics.events to %I', r.privilege_type, r.rolname);
  end loop;
  for r in
    select att.attname, a.privilege_type, g.rolname
      from pg_attribute att, aclexplode(att.attacl) a join pg_roles g on g.oid = a.grantee
     where att.attrelid = 'analytics.events_unpartitioned'::regclass and att.attacl is not null and not att.attisdropped
  loop
    execute format('grant %s (%I) on analytics.events to %I', r.privilege_type, r.attname, r.rolname);
  end loop;
end $$;

drop table analytics.events_unpartitioned;

-- Keys and indexes as before; the primary key now includes the partition key. events_dedupe_uidx is replaced by
-- analytics.event_keys; events_erasure_lead_idx (0017) was the same index as events_lead_idx (0016) and is not rebuilt.
alter table analytics.events add constraint events_pkey primary key (id, occurred_at);
alter table analytics.events add constraint events_tenant_id_fkey foreign key (tenant_id) references core.tenants (id) on delete cascade;
alter table analytics.events add constraint events_lead_id_fkey foreign key (lead_id) references marketing.leads (id) on delete set null;
create index events_name_time_idx on analytics.events (tenant_id, name, occurred_at);
create index events_lead_idx on analytics.events (tenant_id, lead_id) where lead_id is not null;
create index events_tenant_occurred_idx on analytics.events (tenant_id, occurred_at);
create index events_anonymous_idx on analytics.events (tenant_id, anonymous_id) where anonymous_id is not null;

alter table analytics.events enable row level security;
alter table analytics.events force row level security;
create policy tenant_isolation on analytics.events
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());

-- ---------------------------------------------------------------------------------------------------------
-- What the runtime role may do about partitions (it owns nothing and has no CREATE): three narrow functions.

-- On demand, before an insert that names these days (recordEvents): creates the missing ones. Bounded, so a caller
-- cannot make thousands of tables: at most 400 days per call, none more than ten years back or a month ahead.
create function analytics.ensure_event_partitions(p_days date[])
  returns integer
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (now() at time zone 'UTC')::date;
  d date;
  created integer := 0;
begin
  if cardinality(p_days) > 400 then raise exception 'at most 400 days at a time' using errcode = '22023'; end if;
  for d in select distinct x from unnest(p_days) x where x is not null order by 1 loop
    if d < today - 3660 or d > today + 31 then raise exception 'day % is out of range', d using errcode = '22023'; end if;
    if analytics.create_event_partition(d) then created := created + 1; end if;
  end loop;
  return created;
end $$;
revoke execute on function analytics.ensure_event_partitions(date[]) from public;
grant execute on function analytics.ensure_event_partitions(date[]) to app_user;

-- For the cron task (analytics__create_partitions): yesterday through p_ahead days ahead, and the days of rows that
-- reached the default partition (which move into their own). Returns how many partitions it created.
create function analytics.prepare_event_partitions(p_ahead integer)
  returns integer
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  today date := (now() at time zone 'UTC')::date;
  d date;
  created integer := 0;
begin
  if p_ahead < 0 or p_ahead > 31 then raise exception 'p_ahead must be between 0 and 31' using errcode = '22023'; end if;
  for d in
    select g::date from generate_series(today - 1, today + p_ahead, interval '1 day') g
    union
    (select distinct (occurred_at at time zone 'UTC')::date from analytics.events_default limit 400)
    order by 1
  loop
    if analytics.create_event_partition(d) then created := created + 1; end if;
  end loop;
  return created;
end $$;
revoke execute on function analytics.prepare_event_partitions(integer) from public;
grant execute on function analytics.prepare_event_partitions(integer) to app_user;

-- For the nightly retention: drops the day partitions wholly older than p_keep_days days (UTC), which must be at
-- least every tenant's own period (privacy.retention_settings), so no tenant loses an event it keeps. Returns the
-- first moment kept (event keys before it may go) and the partitions dropped.
create function analytics.drop_event_partitions(p_keep_days integer)
  returns table (kept_from timestamptz, dropped text[])
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare
  first_kept date := (now() at time zone 'UTC')::date - p_keep_days;
  longest integer := (select max(analytics_events_days) from privacy.retention_settings);
  part text;
  gone text[] := '{}';
begin
  if p_keep_days < 1 or p_keep_days < coalesce(longest, 1) then
    raise exception 'keeping % days would drop events a tenant keeps for %', p_keep_days, longest using errcode = '22023';
  end if;
  for part in
    select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'analytics.events'::regclass and c.relname ~ '^events_p[0-9]{8}$'
       and to_date(substr(c.relname, 9), 'YYYYMMDD') < first_kept
     order by c.relname
  loop
    execute format('drop table analytics.%I', part);
    gone := gone || part;
  end loop;
  return query select first_kept::timestamp at time zone 'UTC', gone;
end $$;
revoke execute on function analytics.drop_event_partitions(integer) from public;
grant execute on function analytics.drop_event_partitions(integer) to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- The intake's group commit (0019) checked analytics.events for an event already moved; the keys live here now.
create or replace function analytics.store_events(p_batches jsonb)
  returns table (tenant_id uuid, id uuid)
  language plpgsql volatile security invoker set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := current_setting('app.tenant_id', true);
  b jsonb;
begin
  for b in select value from jsonb_array_elements(p_batches) loop
    perform set_config('app.tenant_id', b->>'tenantId', true);
    return query
    with inserted as (
      insert into analytics.event_inbox as i (tenant_id, id, name, type, occurred_at, anonymous_id, lead_id, session_id, properties, context, source)
      select (b->>'tenantId')::uuid, r.id, r.name, r.type, r.occurred_at, r.anonymous_id,
             (select l.id from marketing.leads l where l.id = r.lead_id), r.session_id,
             coalesce(r.properties, '{}'), coalesce(r.context, '{}'), r.source
        from jsonb_to_recordset(b->'rows')
             as r(id uuid, name text, type text, occurred_at timestamptz, anonymous_id text, lead_id uuid, session_id text, properties jsonb, context jsonb, source text)
       where not exists (select 1 from analytics.event_keys k where k.tenant_id = (b->>'tenantId')::uuid and k.dedupe_key = 'evt:' || r.id::text)
      on conflict on constraint event_inbox_pkey do nothing
      returning i.tenant_id, i.id
    ), job as (
      -- The task name is domains/analytics/schemas.ts PROCESS_EVENTS_TASK.
      select graphile_worker.add_job('analytics__process_events', json_build_object('tenantId', b->>'tenantId', 'eventIds', array_agg(inserted.id))) as added
        from inserted having count(*) > 0
    )
    select inserted.tenant_id, inserted.id from inserted left join job on true;
  end loop;
  perform set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
end $$;

-- The longest analytics period any tenant set: retention keeps every partition younger than it (or than the
-- platform default, whichever is longer). Cross-tenant, one number, no tenant data.
create function privacy.longest_analytics_events_days()
  returns integer
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select max(analytics_events_days) from privacy.retention_settings
$$;
revoke execute on function privacy.longest_analytics_events_days() from public;
grant execute on function privacy.longest_analytics_events_days() to app_user;

-- Today and the week ahead exist from the start; the cron task keeps it so.
select analytics.prepare_event_partitions(7);
