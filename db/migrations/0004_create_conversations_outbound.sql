-- Talking back: the outbound send queue and its shared rate limits, and the bot's versioned flows, per-lead conversations and the event queue that advances them exactly once, in order.

create schema if not exists conversations;
grant usage on schema conversations to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- whatsapp: the outbox. One row per outbound message (whatsapp.messages, direction 'outbound'), holding what to send
-- and where the send stands. Sends to one (number, recipient) pair go out in `seq` order.
create table whatsapp.outbound_sends (
  message_id uuid primary key references whatsapp.messages (id) on delete cascade,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  phone_number_id uuid not null references whatsapp.phone_numbers (id) on delete cascade,
  wa_id text not null,
  seq bigint generated always as identity,
  kind text not null check (kind in ('text', 'template', 'interactive')),
  -- The Graph API request body, built and validated when the message was queued.
  body jsonb not null,
  template_id uuid references whatsapp.templates (id) on delete set null,
  source text not null check (source in ('api', 'bot')),
  requested_by text not null,
  -- Sent as biz_opaque_callback_data: Meta echoes it in every status webhook, which is how an ambiguous send is
  -- recognised as having gone out (see domains/whatsapp/outbound/README.md).
  idempotency_key text not null,
  -- queued -> sending (a call may be in flight) -> accepted | failed; in_doubt: a call ended without an answer.
  state text not null default 'queued' check (state in ('queued', 'sending', 'in_doubt', 'accepted', 'failed')),
  attempts integer not null default 0,
  next_attempt_at timestamptz,
  call_started_at timestamptz,
  accepted_at timestamptz,
  failed_at timestamptz,
  failure_reason text,
  last_error jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, idempotency_key)
);
create index outbound_sends_open_idx on whatsapp.outbound_sends (tenant_id, phone_number_id, wa_id, seq)
  where state not in ('accepted', 'failed');

-- Shared send-rate limits (GCRA): `tat` is the theoretical arrival time of the next send for a key
-- ('number:<id>' for a number's throughput, 'pair:<id>:<wa_id>' for the per-recipient pair rate). Every worker
-- process reserves its slot here with one atomic upsert, so the limit holds across processes.
create table whatsapp.send_rate_limits (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  key text not null,
  tat timestamptz not null,
  primary key (tenant_id, key)
);
create index send_rate_limits_tat_idx on whatsapp.send_rate_limits (tenant_id, tat);

-- ---------------------------------------------------------------------------------------------------------
-- conversations: flows are versioned; versions never change once written, so a run pinned to one is never broken.
create table conversations.flows (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null,
  latest_version integer not null default 0,
  -- Null: not published (no new runs start; runs in progress go on with their own version).
  published_version integer,
  published_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (published_version is null or published_version between 1 and latest_version)
);
create index flows_tenant_idx on conversations.flows (tenant_id, created_at, id);

create table conversations.flow_versions (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  flow_id uuid not null references conversations.flows (id) on delete cascade,
  version integer not null check (version >= 1),
  document jsonb not null,
  created_by text not null,
  created_at timestamptz not null default now(),
  primary key (flow_id, version)
);

-- One conversation per lead and business number: the bot's state for that lead.
create table conversations.conversations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  phone_number_id uuid not null references whatsapp.phone_numbers (id) on delete cascade,
  wa_id text not null,
  -- The run in progress (or the last one): its flow version is pinned in `state` too.
  flow_id uuid references conversations.flows (id) on delete set null,
  flow_version integer,
  state jsonb,
  -- Set while a person handles the lead: the bot stays silent until released.
  handed_over_at timestamptz,
  handed_over_by text,
  handover_note text,
  inbound_count integer not null default 0,
  last_event_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, lead_id, phone_number_id)
);
create index conversations_list_idx on conversations.conversations (tenant_id, updated_at desc, id desc);

-- The per-conversation event queue: inbound messages, timers and releases, each queued once (dedupe_key) and
-- applied once, in (occurred_at, id) order, under the conversation's row lock.
create table conversations.events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  conversation_id uuid not null references conversations.conversations (id) on delete cascade,
  kind text not null check (kind in ('message', 'timer', 'release')),
  dedupe_key text not null,
  message_id uuid references whatsapp.messages (id) on delete set null,
  payload jsonb not null default '{}',
  occurred_at timestamptz not null,
  status text not null default 'pending' check (status in ('pending', 'applied', 'failed')),
  outcome text,
  actions jsonb,
  attempts integer not null default 0,
  last_error text,
  applied_at timestamptz,
  created_at timestamptz not null default now(),
  unique (tenant_id, conversation_id, dedupe_key)
);
create index events_pending_idx on conversations.events (tenant_id, conversation_id, occurred_at, id) where status = 'pending';
create index events_conversation_idx on conversations.events (tenant_id, conversation_id, id);

-- ---------------------------------------------------------------------------------------------------------
-- Row-level security on every tenant table.
do $$
declare t text;
begin
  foreach t in array array['whatsapp.outbound_sends', 'whatsapp.send_rate_limits', 'conversations.flows',
                           'conversations.flow_versions', 'conversations.conversations', 'conversations.events'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on whatsapp.outbound_sends, whatsapp.send_rate_limits, conversations.flows,
  conversations.conversations, conversations.events to app_user;
-- Flow versions are immutable: written once, never edited.
grant select, insert on conversations.flow_versions to app_user;
