-- Subject-access exports (materialised in chunks that expire), per-tenant retention settings and a record of every retention run.

-- 0017 (erasure) creates the schema too; either may run first, or alone.
create schema if not exists privacy;
grant usage on schema privacy to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- One subject-access request. The subject (an email, a phone) is never stored: only its keyed hash, and the lead it
-- resolved to when the request was made (null: nobody by that key; the export is then empty). Erasing the lead
-- deletes its exports with it.
create table privacy.export_requests (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid references marketing.leads (id) on delete cascade,
  subject_kind text not null check (subject_kind in ('lead', 'email', 'phone')),
  subject_hash text not null,
  status text not null default 'pending' check (status in ('pending', 'running', 'ready', 'failed')),
  requested_by text not null,
  request_id text,
  -- Per table, the rows the document holds; set when ready.
  row_counts jsonb,
  bytes bigint,
  -- A short code, never data (the failure of a job that names no one).
  error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  ready_at timestamptz,
  expires_at timestamptz,
  check ((status = 'ready') = (ready_at is not null and expires_at is not null))
);
create index export_requests_list_idx on privacy.export_requests (tenant_id, created_at desc, id desc);
create index export_requests_lead_idx on privacy.export_requests (tenant_id, lead_id) where lead_id is not null;
create index export_requests_expiry_idx on privacy.export_requests (tenant_id, expires_at) where expires_at is not null;

-- The document, in order: the job writes it in pieces of bounded size from server-side cursors and GET streams the
-- pieces back, so neither ever holds a whole export in memory. Deleted with the request (on expiry, or erasure).
create table privacy.export_chunks (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  export_id uuid not null references privacy.export_requests (id) on delete cascade,
  seq integer not null check (seq >= 0),
  body text not null,
  primary key (export_id, seq)
);

-- ---------------------------------------------------------------------------------------------------------
-- A tenant's retention periods, in days. No row: the defaults (domains/privacy/retention.ts). Null for messages and
-- interactions means kept until erasure.
create table privacy.retention_settings (
  tenant_id uuid primary key references core.tenants (id) on delete cascade,
  analytics_events_days integer not null check (analytics_events_days between 1 and 3650),
  messages_days integer check (messages_days between 1 and 3650),
  interactions_days integer check (interactions_days between 1 and 3650),
  exports_days integer not null check (exports_days between 1 and 30),
  updated_by text not null,
  updated_at timestamptz not null default now()
);

-- One row per tenant per run of privacy__apply_retention: the periods applied and what each table lost. Counts are
-- updated in the same transaction as each batch's delete, so a crash mid-run leaves a record that is still exact.
create table privacy.retention_runs (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  status text not null default 'running' check (status in ('running', 'completed', 'incomplete')),
  settings jsonb not null,
  removed jsonb not null default '{}',
  batches integer not null default 0,
  started_at timestamptz not null default now(),
  finished_at timestamptz
);
create index retention_runs_list_idx on privacy.retention_runs (tenant_id, started_at desc, id desc);

do $$
declare t text;
begin
  foreach t in array array['privacy.export_requests', 'privacy.export_chunks', 'privacy.retention_settings', 'privacy.retention_runs'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on privacy.export_requests to app_user;
grant select, insert, delete on privacy.export_chunks to app_user;
grant select, insert, update on privacy.retention_settings, privacy.retention_runs to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- Retention deletes old rows of histories that are otherwise append-only for the services.
grant delete on analytics.events, marketing.lead_interactions, whatsapp.message_statuses to app_user;
-- A deleted message leaves its interactions in place, pointing at nothing (message_id has no foreign key).
grant update (message_id) on marketing.lead_interactions to app_user;

-- Retention walks each table by age per tenant, in batches; without these every batch would scan the table.
create index if not exists events_tenant_occurred_idx on analytics.events (tenant_id, occurred_at);
create index if not exists messages_tenant_occurred_idx on whatsapp.messages (tenant_id, occurred_at);
create index if not exists lead_interactions_tenant_occurred_idx on marketing.lead_interactions (tenant_id, occurred_at);
-- A lead's events, for its export (and its erasure): analytics.events had no index on lead_id.
create index if not exists events_lead_idx on analytics.events (tenant_id, lead_id) where lead_id is not null;
-- Deleting a message nulls its interactions and, by the foreign key's on delete set null, its conversation events:
-- both look rows up by message_id, which was unindexed (a scan per deleted message).
create index if not exists lead_interactions_message_idx on marketing.lead_interactions (tenant_id, message_id) where message_id is not null;
create index if not exists conversation_events_message_idx on conversations.events (message_id) where message_id is not null;
