-- Business onboarding: resumable sessions reachable by a hashed token, their step activities and outbound webhook deliveries; tenants can be pending until they go live.

alter table core.tenants drop constraint tenants_status_check;
alter table core.tenants add constraint tenants_status_check check (status in ('pending', 'active', 'suspended'));

create schema onboarding;
grant usage on schema onboarding to app_user;

-- The session a request may touch before its tenant exists: set transaction-locally (like app.tenant_id), only after
-- the token was looked up through onboarding.session_for_token.
create function onboarding.current_session_id() returns uuid
  language sql stable
  as $$ select nullif(current_setting('app.onboarding_session', true), '')::uuid $$;

create table onboarding.sessions (
  id uuid primary key default gen_random_uuid(),
  -- Null until business_info creates the tenant; from then on the session is that tenant's data.
  tenant_id uuid references core.tenants (id) on delete cascade,
  -- sha256 of the token in the resume link; the token itself is never stored. Rotated when a new link is asked for.
  token_hash bytea not null unique,
  token_expires_at timestamptz not null,
  -- Which version of the step definitions (domains/onboarding/steps.ts) this session follows.
  steps_version integer not null,
  origin text not null check (origin in ('signup', 'setup_link')),
  status text not null default 'in_progress' check (status in ('in_progress', 'completed', 'abandoned')),
  -- Saved fields per step ({ business_info: { businessName, … }, … }); secrets (the access token) are sealed apart.
  fields jsonb not null default '{}',
  access_token_sealed text,
  -- { step: ISO time } for every completed step. The current step and the progress are computed from this and the
  -- saved fields (domains/onboarding/steps.ts), never stored, so nothing can disagree with the state.
  completed_steps jsonb not null default '{}',
  -- The registered number's id (whatsapp.phone_numbers.id): the inbound message that completes test_message.
  phone_number_id uuid references whatsapp.phone_numbers (id) on delete set null,
  last_activity_at timestamptz not null default now(),
  nudged_at timestamptz,
  abandoned_at timestamptz,
  abandoned_step text,
  resumed_count integer not null default 0,
  completed_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index sessions_tenant_idx on onboarding.sessions (tenant_id) where tenant_id is not null;
create index sessions_phone_number_idx on onboarding.sessions (phone_number_id) where phone_number_id is not null and status <> 'completed';
create index sessions_created_idx on onboarding.sessions (created_at);

-- One row per view, field save, validation error, completion, nudge, abandonment and resume.
create table onboarding.step_activities (
  id bigint generated always as identity primary key,
  session_id uuid not null references onboarding.sessions (id) on delete cascade,
  tenant_id uuid references core.tenants (id) on delete cascade,
  step text,
  kind text not null check (kind in ('started', 'viewed', 'saved', 'invalid', 'completed', 'nudged', 'abandoned', 'resumed', 'link_rotated', 'went_live')),
  -- Field names and error codes only, never values.
  detail jsonb not null default '{}',
  created_at timestamptz not null default clock_timestamp()
);
create index step_activities_session_idx on onboarding.step_activities (session_id, created_at);
create index step_activities_time_idx on onboarding.step_activities (created_at);

-- Outbound webhook events (onboarding.nudge, onboarding.abandoned, onboarding.completed) to the operator's URL, each
-- delivery attempt recorded.
create table onboarding.webhook_events (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references onboarding.sessions (id) on delete cascade,
  tenant_id uuid references core.tenants (id) on delete cascade,
  type text not null,
  payload jsonb not null,
  status text not null default 'pending' check (status in ('pending', 'delivered', 'failed', 'skipped')),
  attempts integer not null default 0,
  last_status integer,
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz not null default now()
);
create index webhook_events_session_idx on onboarding.webhook_events (session_id, created_at);

do $$
declare t text;
begin
  foreach t in array array['onboarding.sessions', 'onboarding.step_activities', 'onboarding.webhook_events'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
  end loop;
end $$;

-- A session row is visible to its tenant, or, before the tenant exists, to the one request that looked it up by
-- its token (app.onboarding_session). An unset tenant and session see nothing.
create policy tenant_isolation on onboarding.sessions
  using (tenant_id = core.current_tenant_id() or (tenant_id is null and id = onboarding.current_session_id()))
  with check (tenant_id = core.current_tenant_id() or (tenant_id is null and id = onboarding.current_session_id()));
create policy tenant_isolation on onboarding.step_activities
  using (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()))
  with check (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()));
create policy tenant_isolation on onboarding.webhook_events
  using (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()))
  with check (tenant_id = core.current_tenant_id() or (tenant_id is null and session_id = onboarding.current_session_id()));

grant select, insert, update on onboarding.sessions to app_user;
grant select, insert on onboarding.step_activities to app_user;
-- Only to file a session's activities under the tenant its business_info created; the log is otherwise append-only.
grant update (tenant_id) on onboarding.step_activities to app_user;
grant select, insert, update on onboarding.webhook_events to app_user;

-- The one lookup before anything is known: a token's session (only if not expired), its tenant and status.
create function onboarding.session_for_token(p_token_hash bytea)
  returns table (id uuid, tenant_id uuid, status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.id, s.tenant_id, s.status from onboarding.sessions s
   where s.token_hash = p_token_hash and s.token_expires_at > now()
$$;
revoke execute on function onboarding.session_for_token(bytea) from public;
grant execute on function onboarding.session_for_token(bytea) to app_user;

-- For jobs that know only a session id (inactivity, webhook delivery): its tenant, nothing else.
create function onboarding.session_tenant(p_session_id uuid)
  returns table (id uuid, tenant_id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select s.id, s.tenant_id from onboarding.sessions s where s.id = p_session_id $$;
revoke execute on function onboarding.session_tenant(uuid) from public;
grant execute on function onboarding.session_tenant(uuid) to app_user;

-- The operator's funnel reads every session; sessions carry tenant ids, so only this function sees across tenants,
-- and it returns counts and durations, never fields.
create function onboarding.funnel_rows(p_from timestamptz, p_to timestamptz)
  returns table (session_id uuid, steps_version integer, status text, abandoned_step text, resumed_count integer, created_at timestamptz,
                 completed_steps jsonb, first_seen jsonb)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.id, s.steps_version, s.status, s.abandoned_step, s.resumed_count, s.created_at, s.completed_steps,
         coalesce((select jsonb_object_agg(a.step, a.first_at)
                     from (select step, min(created_at) as first_at from onboarding.step_activities
                            where session_id = s.id and step is not null group by step) a), '{}')
    from onboarding.sessions s
   where s.created_at >= p_from and s.created_at < p_to
$$;
revoke execute on function onboarding.funnel_rows(timestamptz, timestamptz) from public;
grant execute on function onboarding.funnel_rows(timestamptz, timestamptz) to app_user;

-- test_message completes when ingestion stores the first inbound message for the session's number, in the same
-- statement that stores the messages (no polling): the step is marked complete in the message's transaction, with its
-- activity row, and onboarding__message_arrived is queued with it for what follows (the analytics event, a resumed
-- session's bookkeeping). Security definer because ingestion runs as the message's tenant while a session row is the
-- platform's until then; it touches only sessions of the numbers in the inserted rows.
create function onboarding.note_inbound_messages() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare queued integer;
begin
  with done as (
    update onboarding.sessions s
       set completed_steps = s.completed_steps || jsonb_build_object('test_message', to_jsonb(now())),
           last_activity_at = now(), updated_at = now()
     where s.status <> 'completed'
       and not (s.completed_steps ? 'test_message')
       and s.completed_steps ? 'bot_setup'
       and s.phone_number_id in (select distinct n.phone_number_id from new_messages n where n.direction = 'inbound')
    returning s.id, s.tenant_id, s.status
  ), activity as (
    insert into onboarding.step_activities (session_id, tenant_id, step, kind, detail)
    select d.id, d.tenant_id, 'test_message', 'completed', '{"by": "inbound_message"}'::jsonb from done d
  )
  select count(graphile_worker.add_job('onboarding__message_arrived', json_build_object('sessionId', d.id, 'tenantId', d.tenant_id, 'wasAbandoned', d.status = 'abandoned')))
    into queued from done d;
  return null;
end $$;
create trigger onboarding_note_inbound after insert on whatsapp.messages
  referencing new table as new_messages for each statement execute function onboarding.note_inbound_messages();

-- whatsapp_connect completes by itself when the tenant registers a number some other way (POST /v1/whatsapp/numbers):
-- the session of that tenant advances in the registration's transaction.
create function onboarding.note_registered_numbers() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
begin
  with done as (
    update onboarding.sessions s
       set completed_steps = s.completed_steps || jsonb_build_object('whatsapp_connect', to_jsonb(now())),
           phone_number_id = n.id, last_activity_at = now(), updated_at = now()
      from (select distinct on (tenant_id) tenant_id, id from new_numbers order by tenant_id, created_at) n
     where s.tenant_id = n.tenant_id and s.status <> 'completed'
       and s.completed_steps ? 'business_info' and not (s.completed_steps ? 'whatsapp_connect')
       -- The onboarding step registering the number itself completes the step on its own.
       and s.id is distinct from onboarding.current_session_id()
    returning s.id, s.tenant_id
  )
  insert into onboarding.step_activities (session_id, tenant_id, step, kind, detail)
  select d.id, d.tenant_id, 'whatsapp_connect', 'completed', '{"by": "number_registered"}'::jsonb from done d;
  return null;
end $$;
create trigger onboarding_note_registered after insert on whatsapp.phone_numbers
  referencing new table as new_numbers for each statement execute function onboarding.note_registered_numbers();
