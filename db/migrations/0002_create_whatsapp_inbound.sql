-- WhatsApp inbound: numbers and their Meta apps, templates, messages with status history, service windows, the
-- raw delivery inbox and its quarantine; marketing leads and their interactions; a first analytics event table.

create schema if not exists whatsapp;
create schema if not exists marketing;
create schema if not exists analytics;
grant usage on schema whatsapp, marketing, analytics to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- marketing: one lead per person per tenant.
create table marketing.leads (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  phone_e164 text,
  -- One canonical key per person's phone (national quirks folded, e.g. Brazil's ninth digit); the identity key.
  phone_key text,
  wa_id text,
  email text,
  name text,
  profile_name text,
  company text,
  source text not null default 'unknown',
  source_details jsonb not null default '{}',
  status text not null default 'new' check (status in ('new', 'contacted', 'qualified', 'converted', 'lost')),
  owner text,
  tags text[] not null default '{}',
  fields jsonb not null default '{}',
  opted_out_at timestamptz,
  merged_into uuid references marketing.leads (id) on delete set null,
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- Identity is enforced by constraints, never by check-then-insert. Merged leads give up their keys.
create unique index leads_phone_key_uidx on marketing.leads (tenant_id, phone_key) where merged_into is null;
create unique index leads_email_uidx on marketing.leads (tenant_id, email) where merged_into is null;
create index leads_list_idx on marketing.leads (tenant_id, created_at desc, id desc);
create index leads_wa_id_idx on marketing.leads (tenant_id, wa_id);

create table marketing.lead_interactions (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  type text not null,
  channel text not null,
  actor text not null default 'lead',
  occurred_at timestamptz not null,
  message_id uuid,
  details jsonb not null default '{}',
  -- Set for interactions born from an outside event (a message, a submission): the same event never adds two.
  dedupe_key text,
  created_at timestamptz not null default now()
);
create unique index lead_interactions_dedupe_uidx on marketing.lead_interactions (tenant_id, dedupe_key);
create index lead_interactions_lead_idx on marketing.lead_interactions (tenant_id, lead_id, occurred_at desc, id desc);

-- ---------------------------------------------------------------------------------------------------------
-- analytics: raw events; rollups come later.
create table analytics.events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null,
  lead_id uuid references marketing.leads (id) on delete set null,
  occurred_at timestamptz not null,
  properties jsonb not null default '{}',
  dedupe_key text,
  created_at timestamptz not null default now()
);
create unique index events_dedupe_uidx on analytics.events (tenant_id, dedupe_key);
create index events_name_time_idx on analytics.events (tenant_id, name, occurred_at);

-- ---------------------------------------------------------------------------------------------------------
-- whatsapp: accounts, numbers, templates.
create table whatsapp.business_accounts (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- Meta's ids are global: a WABA belongs to one tenant.
  waba_id text not null unique,
  name text,
  review_status text,
  restriction jsonb,
  last_account_event jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table whatsapp.phone_numbers (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  business_account_id uuid not null references whatsapp.business_accounts (id) on delete cascade,
  phone_number_id text not null unique,
  display_phone_number text not null,
  verified_name text,
  quality_rating text,
  messaging_limit text,
  status text not null default 'active' check (status in ('active', 'disabled')),
  -- 'platform': the platform's Meta app (one webhook URL for many tenants); 'own': the tenant's own app.
  app_mode text not null check (app_mode in ('platform', 'own')),
  meta_app_id text,
  app_secret_sealed text,
  verify_token_hash bytea,
  access_token_sealed text not null,
  token_invalid_at timestamptz,
  last_quality_event jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (app_mode = 'platform' or (app_secret_sealed is not null and verify_token_hash is not null))
);
create index phone_numbers_verify_token_idx on whatsapp.phone_numbers (verify_token_hash) where verify_token_hash is not null;

create table whatsapp.templates (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  business_account_id uuid not null references whatsapp.business_accounts (id) on delete cascade,
  meta_template_id text,
  name text not null,
  language text not null,
  category text,
  previous_category text,
  status text not null default 'PENDING',
  components jsonb not null default '[]',
  rejection_reason text,
  quality_score text,
  last_event_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, business_account_id, name, language)
);
create unique index templates_meta_id_uidx on whatsapp.templates (tenant_id, meta_template_id);

-- ---------------------------------------------------------------------------------------------------------
-- whatsapp: messages and statuses.
create table whatsapp.messages (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  phone_number_id uuid not null references whatsapp.phone_numbers (id) on delete cascade,
  lead_id uuid references marketing.leads (id) on delete set null,
  direction text not null check (direction in ('inbound', 'outbound')),
  -- Null for an outbound message not yet accepted by Meta.
  wamid text,
  wa_id text not null,
  type text not null,
  content jsonb not null default '{}',
  context jsonb,
  referral jsonb,
  errors jsonb,
  -- inbound: 'received'; outbound: pending → sent → delivered → read → played, or failed. Only ever moves forward.
  status text not null,
  status_rank smallint not null default 0,
  status_at timestamptz,
  sent_at timestamptz,
  delivered_at timestamptz,
  read_at timestamptz,
  failed_at timestamptz,
  error_code integer,
  error_title text,
  pricing jsonb,
  conversation jsonb,
  occurred_at timestamptz not null,
  created_at timestamptz not null default now()
);
create unique index messages_wamid_uidx on whatsapp.messages (tenant_id, wamid);
create index messages_lead_idx on whatsapp.messages (tenant_id, lead_id, occurred_at desc, id);

-- Every status Meta reported, in arrival order, including those for messages we have not seen yet: they are
-- applied when the message appears. The message's status is derived from this history, so order never matters.
create table whatsapp.message_statuses (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  wamid text not null,
  status text not null,
  occurred_at timestamptz not null,
  recipient_id text,
  errors jsonb,
  pricing jsonb,
  conversation jsonb,
  received_at timestamptz not null default now(),
  unique (tenant_id, wamid, status, occurred_at)
);

-- Outbound statuses only move forward; 'failed' outranks 'sent' but not a later 'delivered'.
create function whatsapp.status_rank(p_status text) returns smallint
  language sql immutable
  as $$ select case p_status when 'pending' then 0 when 'sent' then 10 when 'failed' then 15 when 'delivered' then 20
                            when 'read' then 30 when 'played' then 40 else 0 end::smallint $$;
grant execute on function whatsapp.status_rank(text) to app_user;

-- The 24-hour customer-service window: the last inbound message per (our number, their wa_id).
create table whatsapp.service_windows (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  phone_number_id uuid not null references whatsapp.phone_numbers (id) on delete cascade,
  wa_id text not null,
  lead_id uuid references marketing.leads (id) on delete set null,
  last_inbound_at timestamptz not null,
  primary key (tenant_id, phone_number_id, wa_id)
);

-- Value-level errors Meta reports in a delivery (e.g. 130429 rate limit hit), per tenant.
create table whatsapp.webhook_errors (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  phone_number_id uuid references whatsapp.phone_numbers (id) on delete cascade,
  code integer,
  title text,
  message text,
  details jsonb not null default '{}',
  item_key text not null,
  occurred_at timestamptz not null default now(),
  unique (tenant_id, item_key)
);

-- ---------------------------------------------------------------------------------------------------------
-- The inbox: every delivery exactly as acknowledged, before routing. A platform table (no tenant yet: routing
-- happens in the worker), reached only by the services, never exposed to tenants; processed rows are pruned.
create table whatsapp.webhook_deliveries (
  id bigint generated always as identity primary key,
  -- sha256 of the exact bytes Meta signed: a redelivery of the same POST is the same row.
  body_sha256 bytea not null unique,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  status text not null default 'received' check (status in ('received', 'processed', 'failed', 'parked')),
  attempts integer not null default 0,
  last_error text,
  item_count integer,
  quarantined_count integer not null default 0,
  processed_at timestamptz
);
create index webhook_deliveries_status_idx on whatsapp.webhook_deliveries (status, id) where status <> 'processed';

-- Items addressed to a phone number (or WABA) no tenant has registered: kept visible, not retried forever.
create table whatsapp.quarantined_items (
  id bigint generated always as identity primary key,
  delivery_id bigint not null references whatsapp.webhook_deliveries (id) on delete cascade,
  item_key text not null,
  route_key text not null,
  kind text not null,
  reason text not null,
  item jsonb not null,
  created_at timestamptz not null default now(),
  released_at timestamptz,
  unique (delivery_id, item_key)
);
create index quarantined_items_open_idx on whatsapp.quarantined_items (created_at) where released_at is null;

-- ---------------------------------------------------------------------------------------------------------
-- Row-level security on every tenant table.
do $$
declare t text;
begin
  foreach t in array array['marketing.leads', 'marketing.lead_interactions', 'analytics.events',
                           'whatsapp.business_accounts', 'whatsapp.phone_numbers', 'whatsapp.templates',
                           'whatsapp.messages', 'whatsapp.message_statuses', 'whatsapp.service_windows',
                           'whatsapp.webhook_errors'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on marketing.leads, whatsapp.business_accounts, whatsapp.phone_numbers,
  whatsapp.templates, whatsapp.messages, whatsapp.service_windows to app_user;
-- Histories and logs are append-only for the services.
grant select, insert on marketing.lead_interactions, analytics.events, whatsapp.message_statuses, whatsapp.webhook_errors to app_user;
grant select, insert, update on whatsapp.webhook_deliveries, whatsapp.quarantined_items to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- Routing happens before a tenant is known: narrow definer functions answer only "which tenant owns this id".
create function whatsapp.route_phone_numbers(p_phone_number_ids text[])
  returns table (phone_number_id text, tenant_id uuid, id uuid, status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select p.phone_number_id, p.tenant_id, p.id, p.status from whatsapp.phone_numbers p
   where p.phone_number_id = any(p_phone_number_ids)
$$;

create function whatsapp.route_business_accounts(p_waba_ids text[])
  returns table (waba_id text, tenant_id uuid, id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select b.waba_id, b.tenant_id, b.id from whatsapp.business_accounts b where b.waba_id = any(p_waba_ids)
$$;

-- Signature verification for numbers on their own Meta app needs that app's secret before RLS can apply.
-- Message deliveries name the phone number; management deliveries (templates, account) only the WABA.
create function whatsapp.own_app_secrets(p_phone_number_ids text[], p_waba_ids text[])
  returns table (app_secret_sealed text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select distinct p.app_secret_sealed
    from whatsapp.phone_numbers p join whatsapp.business_accounts b on b.id = p.business_account_id
   where p.app_mode = 'own' and (p.phone_number_id = any(p_phone_number_ids) or b.waba_id = any(p_waba_ids))
$$;

-- The subscription handshake: does any tenant's own app use this verify token (by hash)?
create function whatsapp.verify_token_known(p_verify_token_hash bytea)
  returns boolean
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from whatsapp.phone_numbers p where p.verify_token_hash = p_verify_token_hash)
$$;

revoke execute on function whatsapp.route_phone_numbers(text[]), whatsapp.route_business_accounts(text[]),
  whatsapp.own_app_secrets(text[], text[]), whatsapp.verify_token_known(bytea) from public;
grant execute on function whatsapp.route_phone_numbers(text[]), whatsapp.route_business_accounts(text[]),
  whatsapp.own_app_secrets(text[], text[]), whatsapp.verify_token_known(bytea) to app_user;
