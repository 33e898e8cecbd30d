-- Event intake (POST /v1/events): public site keys for browsers, a raw event inbox group-committed with its job, and the columns analytics.events needs for client events.

-- A site key is a tenant's public credential for a website: it can only send events, only from the origins listed.
create table analytics.site_keys (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null,
  public_key text not null unique,
  -- Exact browser origins (scheme://host[:port], lowercase); a request with another Origin is refused.
  allowed_origins text[] not null default '{}',
  status text not null default 'active' check (status in ('active', 'archived')),
  created_at timestamptz not null default now(),
  archived_at timestamptz
);
create index site_keys_tenant_idx on analytics.site_keys (tenant_id, created_at desc);
alter table analytics.site_keys enable row level security;
alter table analytics.site_keys force row level security;
create policy tenant_isolation on analytics.site_keys
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update on analytics.site_keys to app_user;

-- The one lookup before the tenant is known: a site key's tenant, status and origins, nothing else.
create function analytics.find_site_key(p_public_key text)
  returns table (id uuid, tenant_id uuid, status text, allowed_origins text[], tenant_status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select k.id, k.tenant_id, k.status, k.allowed_origins, t.status
    from analytics.site_keys k join core.tenants t on t.id = k.tenant_id
   where k.public_key = p_public_key
$$;
revoke execute on function analytics.find_site_key(text) from public;
grant execute on function analytics.find_site_key(text) to app_user;

-- Client events as received, waiting to be moved into analytics.events by analytics__process_events. Flat columns
-- (no document to unpack), so a bulk path can COPY the same rows. The primary key is the client's event id per
-- tenant: a repeated id is stored once. Moving an event deletes its row; one that keeps failing stays, parked.
create table analytics.event_inbox (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  id uuid not null,
  name text not null,
  type text not null,
  occurred_at timestamptz not null,
  anonymous_id text,
  -- From an API key only. A lead id this tenant does not have is stored as null (the event stays, without it).
  lead_id uuid references marketing.leads (id) on delete set null,
  session_id text,
  properties jsonb not null default '{}',
  -- Page URL, referrer, UTM, user agent, locale.
  context jsonb not null default '{}',
  -- 'api' (a tenant API key) or 'site' (a site key).
  source text not null,
  received_at timestamptz not null default now(),
  status text not null default 'received' check (status in ('received', 'parked')),
  attempts integer not null default 0,
  last_error text,
  primary key (tenant_id, id)
);
create index event_inbox_parked_idx on analytics.event_inbox (tenant_id, received_at) where status <> 'received';
create index event_inbox_lead_idx on analytics.event_inbox (tenant_id, lead_id) where lead_id is not null;
alter table analytics.event_inbox enable row level security;
alter table analytics.event_inbox force row level security;
create policy tenant_isolation on analytics.event_inbox
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update, delete on analytics.event_inbox to app_user;

-- What a client event carries beyond the existing columns. event_id is the client's id (dedupe_key is evt:<id>).
alter table analytics.events
  add column event_id uuid,
  add column type text,
  add column anonymous_id text,
  add column session_id text,
  add column context jsonb;
create index events_anonymous_idx on analytics.events (tenant_id, anonymous_id) where anonymous_id is not null;
-- Erasure and merges reach events by lead (0016); erasure of an anonymous visitor's page context needs these too.
grant update (anonymous_id, session_id, context, properties) on analytics.events to app_user;

-- One group commit in one statement: per tenant, set the tenant transaction-locally, insert the events not seen
-- before (not in the inbox, not already moved into analytics.events) and enqueue one job for the new ones. Returns
-- the new ids so each request can be told how many of its events were new. Invoker's rights: RLS applies.
create function analytics.store_events(p_batches jsonb)
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
       where not exists (select 1 from analytics.events e where e.tenant_id = (b->>'tenantId')::uuid and e.dedupe_key = 'evt:' || r.id::text)
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
revoke execute on function analytics.store_events(jsonb) from public;
grant execute on function analytics.store_events(jsonb) to app_user;
