-- Real Cloud API payloads carry more than we kept (throughput, portfolio limits, restriction expiry, rejection advice, identity checks), and management updates need a log to be applied once and in event-time order.

-- Numbers: the last quality event of any kind, the portfolio limit that replaces current_limit, the throughput level,
-- and the event time of each stream so an older or repeated event never overwrites a newer one.
alter table whatsapp.phone_numbers
  add column quality_event text,
  add column quality_event_at timestamptz,
  add column max_daily_conversations text,
  add column throughput_level text,
  -- quality_event_at orders quality_event; limit_event_at the quality and limit fields (THROUGHPUT_UPGRADE is not one).
  add column limit_event_at timestamptz,
  add column name_event_at timestamptz;

alter table whatsapp.business_accounts
  -- The latest expiry among restriction_info[] (Meta sends it as ISO text or as unix seconds).
  add column restriction_expires_at timestamptz,
  add column account_event_at timestamptz;

alter table whatsapp.templates
  -- rejection_info {reason, recommendation}: Meta's explanation of a rejection, kept with the template.
  add column rejection_info jsonb,
  add column quality_event_at timestamptz,
  add column category_event_at timestamptz,
  -- An announced recategorisation (correct_category) and when Meta will apply it.
  add column pending_category text,
  add column pending_category_at timestamptz;
-- last_event_at orders status events only; the quality and category streams have their own times above.
comment on column whatsapp.templates.last_event_at is 'event time of the last applied message_template_status_update';

-- The security identity block of an inbound message (identity change check): acknowledged, created time, hash, and
-- the contact's identity_key_hash.
alter table whatsapp.messages add column identity jsonb;

-- Every management update applied, once (item_key), with its value: the raw delivery is pruned after 14 days, this is
-- not. A redelivered copy of an event conflicts here and changes nothing.
create table whatsapp.management_events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  business_account_id uuid not null references whatsapp.business_accounts (id) on delete cascade,
  kind text not null,
  item_key text not null,
  occurred_at timestamptz not null,
  value jsonb not null,
  received_at timestamptz not null default now(),
  unique (tenant_id, item_key)
);
create index management_events_account_idx on whatsapp.management_events (tenant_id, business_account_id, occurred_at desc);

alter table whatsapp.management_events enable row level security;
alter table whatsapp.management_events force row level security;
create policy tenant_isolation on whatsapp.management_events
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
-- A log: append-only for the services.
grant select, insert on whatsapp.management_events to app_user;
