-- PostHog forwarding (optional): a tenant's opt-in and allow-list, and an outbox row written by the same statement that records each event, drained by analytics__forward_posthog.

-- A tenant forwards only after opting in. allowed_properties null means the default allow-list
-- (domains/analytics/posthog.ts DEFAULT_POSTHOG_PROPERTIES); names that look personal are refused by the API.
create table analytics.posthog_settings (
  tenant_id uuid primary key references core.tenants (id) on delete cascade,
  enabled boolean not null default false,
  allowed_properties text[],
  updated_at timestamptz not null default now(),
  updated_by text
);
alter table analytics.posthog_settings enable row level security;
alter table analytics.posthog_settings force row level security;
create policy tenant_isolation on analytics.posthog_settings
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update on analytics.posthog_settings to app_user;

-- One row per event to forward. Nothing personal is copied here: the drain reads the event itself when it sends, so
-- an erasure (which anonymises the event) or a merge is seen, and the catalog reaches these rows through their event
-- (lead-references: parent analytics.events). occurred_at is kept to find the event in its day partition.
-- A sent row is deleted; a row that failed posthog max attempts stays, parked, with its error.
create table analytics.posthog_outbox (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  event_id bigint not null,
  occurred_at timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'parked')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  primary key (tenant_id, event_id)
);
-- Per tenant, the due rows in order: one tenant's backlog (PostHog down for hours) never slows another's batches.
create index posthog_outbox_due_idx on analytics.posthog_outbox (tenant_id, next_attempt_at) where status = 'pending';
create index posthog_outbox_parked_idx on analytics.posthog_outbox (tenant_id, created_at) where status = 'parked';
alter table analytics.posthog_outbox enable row level security;
alter table analytics.posthog_outbox force row level security;
create policy tenant_isolation on analytics.posthog_outbox
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update, delete on analytics.posthog_outbox to app_user;

-- The outbox row is written by the statement that records the event, whichever writer that is (recordEvents,
-- recordEventsFrom, intake, backfills): a statement trigger over the inserted rows, one insert per statement. Event
-- ids are not commit-ordered, so a cursor over analytics.events ("id > last sent") would skip events that commit
-- late; the outbox cannot. Only tenants that opted in get rows: for the rest it costs one semi-join on a tiny table.
-- Invoker's rights: the writer's tenant (RLS) applies to the settings it reads and the rows it writes.
create function analytics.enqueue_posthog_outbox() returns trigger
  language plpgsql security invoker set search_path = pg_catalog, pg_temp
as $$
begin
  insert into analytics.posthog_outbox (tenant_id, event_id, occurred_at)
  select n.tenant_id, n.id, n.occurred_at
    from new_events n
   where exists (select 1 from analytics.posthog_settings s where s.tenant_id = n.tenant_id and s.enabled)
  on conflict do nothing;
  return null;
end $$;
create trigger events_posthog_outbox after insert on analytics.events
  referencing new table as new_events
  for each statement execute function analytics.enqueue_posthog_outbox();

-- Cross-tenant, for the drain: which tenants have rows due, and nothing else about them. One index probe per tenant
-- that ever had settings (a handful), not a scan of the outbox, however long a backlog is.
create function analytics.posthog_due_tenants(p_now timestamptz, p_limit int)
  returns table (tenant_id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.tenant_id from analytics.posthog_settings s
   where exists (select 1 from analytics.posthog_outbox o where o.tenant_id = s.tenant_id and o.status = 'pending' and o.next_attempt_at <= p_now)
   order by s.tenant_id
   limit p_limit
$$;
revoke execute on function analytics.posthog_due_tenants(timestamptz, int) from public;
grant execute on function analytics.posthog_due_tenants(timestamptz, int) to app_user;
