-- WhatsApp broadcasts (issue 13, item 7): one approved template to a snapshot of leads, paced by the outbox's send governor and the number's 24-hour messaging limit, resumable after a crash without sending anyone twice.

create table campaigns.broadcasts (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- Part of a campaign, or standalone. Campaigns are soft-deleted; a hard delete only leaves the broadcast standalone.
  campaign_id uuid,
  name text not null check (length(name) between 1 and 200),
  -- draft → scheduled → sending → completed | stopped | failed; sending ⇄ paused (auto or by hand). The allowed
  -- transitions are in domains/campaigns/broadcasts/lifecycle.ts.
  status text not null default 'draft' check (status in ('draft', 'scheduled', 'sending', 'paused', 'completed', 'stopped', 'failed')),
  -- Why it is paused or failed: template_paused, template_disabled, template_quality_red, failure_threshold, manual, …
  status_reason text,
  status_detail text,
  phone_number_id uuid references whatsapp.phone_numbers (id) on delete set null,
  template_id uuid references whatsapp.templates (id) on delete set null,
  template_name text not null,
  template_language text not null,
  -- { type: 'filter', filter: {...} } | { type: 'list', leadIds: [...] }: validated by domains/campaigns/broadcasts/schemas.ts.
  -- An uploaded list of phones is resolved to lead ids when the broadcast is saved; phones are never stored here.
  audience jsonb not null,
  -- Where each template parameter comes from (lead fields, with fallbacks): schemas.ts ParameterMapping.
  parameters jsonb not null default '{}',
  scheduled_at timestamptz,
  -- The tenant's timezone the schedule was given in (kept for display; scheduled_at is the instant).
  schedule_timezone text,
  -- Auto-pause when more than this share of the settled sends failed, once at least failure_min_sample settled.
  failure_threshold numeric(4, 3) not null default 0.2 check (failure_threshold > 0 and failure_threshold <= 1),
  failure_min_sample integer not null default 50 check (failure_min_sample >= 1),
  -- Counters kept by the dispatcher as recipients are materialised and their sends settle (stats read recipients).
  recipient_count integer not null default 0,
  skipped_count integer not null default 0,
  dispatched_count integer not null default 0,
  accepted_count integer not null default 0,
  failed_count integer not null default 0,
  -- Bumped on every transition: the analytics events of a transition are keyed by it (broadcast:<id>:<n>:<event>).
  transitions integer not null default 0,
  version integer not null default 1 check (version >= 1),
  created_by text not null default 'api',
  materialised_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete set null (campaign_id)
);
create index broadcasts_list_idx on campaigns.broadcasts (tenant_id, created_at desc, id desc);
create index broadcasts_campaign_idx on campaigns.broadcasts (tenant_id, campaign_id) where campaign_id is not null;
create index broadcasts_template_idx on campaigns.broadcasts (template_id) where status in ('scheduled', 'sending');

-- The audience snapshot: one row per targeted lead, written when the broadcast is scheduled or started, so the
-- audience does not drift while it sends. state: pending (to dispatch) → queued (in the WhatsApp outbox, message_id
-- set in the same transaction) → sent | failed (the outbox send settled); or skipped with the reason, before anything
-- is sent. Meta's later statuses (delivered, read) and replies are read from whatsapp.messages, whose status only moves
-- forward, so they are idempotent and order-independent by construction.
create table campaigns.broadcast_recipients (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  broadcast_id uuid not null,
  lead_id uuid references marketing.leads (id) on delete set null,
  wa_id text,
  state text not null default 'pending' check (state in ('pending', 'queued', 'sent', 'failed', 'skipped')),
  -- opted_out, suppressed, no_whatsapp, missing_parameter, duplicate_recipient, merged
  skip_reason text,
  skip_detail text,
  -- The template's parameters for this recipient, rendered from the lead's fields when materialised.
  components jsonb,
  message_id uuid references whatsapp.messages (id) on delete set null,
  error_code integer,
  queued_at timestamptz,
  settled_at timestamptz,
  created_at timestamptz not null default now(),
  foreign key (tenant_id, broadcast_id) references campaigns.broadcasts (tenant_id, id) on delete cascade,
  check (state <> 'skipped' or skip_reason is not null)
);
-- One message per person per broadcast, whatever the audience said twice: the constraint, not a check, dedupes.
create unique index broadcast_recipients_wa_id_key on campaigns.broadcast_recipients (broadcast_id, wa_id) where wa_id is not null and state <> 'skipped';
create unique index broadcast_recipients_lead_key on campaigns.broadcast_recipients (broadcast_id, lead_id) where lead_id is not null;
-- The dispatcher takes the next pending ones in order, and settles the queued ones: both sets stay small or ordered.
create index broadcast_recipients_pending_idx on campaigns.broadcast_recipients (broadcast_id, id) where state = 'pending';
create index broadcast_recipients_queued_idx on campaigns.broadcast_recipients (broadcast_id) where state = 'queued';
create index broadcast_recipients_list_idx on campaigns.broadcast_recipients (tenant_id, broadcast_id, id);
create index broadcast_recipients_lead_idx on campaigns.broadcast_recipients (tenant_id, lead_id) where lead_id is not null;
create index broadcast_recipients_message_idx on campaigns.broadcast_recipients (message_id) where message_id is not null;

-- The 24-hour messaging limit counts unique recipients of business-initiated (template) messages per number over a
-- rolling 24 hours; the dispatcher counts them before every batch, from the messages themselves (every template sent,
-- broadcast or not, counts).
create index messages_template_recipients_idx on whatsapp.messages (phone_number_id, occurred_at)
  where direction = 'outbound' and type = 'template';

do $$
declare t text;
begin
  foreach t in array array['campaigns.broadcasts', 'campaigns.broadcast_recipients'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

-- Broadcasts are kept as the record of what was sent; a draft may be deleted (its recipients go with it). Recipients
-- are deleted only by erasure (domains/privacy, through the lead-references catalog) and with their broadcast.
grant select, insert, update, delete on campaigns.broadcasts to app_user;
grant select, insert, update, delete on campaigns.broadcast_recipients to app_user;

-- Broadcast sends go through the same outbox, named for who asked (analytics' whatsapp.message_sent sentBy).
alter table whatsapp.outbound_sends drop constraint outbound_sends_source_check;
alter table whatsapp.outbound_sends add constraint outbound_sends_source_check check (source in ('api', 'bot', 'broadcast'));
