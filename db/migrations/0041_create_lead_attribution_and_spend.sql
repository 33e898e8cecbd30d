-- Plan vs reality (issue 13): which campaign brought each lead (first touch: its UTM campaign code or its click-to-WhatsApp ad), and what was spent per platform and day, so a media plan's planned leads and CPL can be compared with the actual ones.

-- The Meta ad ids (a click-to-WhatsApp referral's source_id) that belong to a campaign: a lead whose first message
-- carries one of them is the campaign's. Written by domains/campaigns/performance (PUT /v1/campaigns/:id/ad-sources).
alter table campaigns.campaigns add column ad_source_ids text[] not null default '{}'
  check (cardinality(ad_source_ids) <= 500);
create index campaigns_ad_source_ids_idx on campaigns.campaigns using gin (ad_source_ids) where deleted_at is null;
-- Leads' utm_campaign is matched case-insensitively (a link tagged `Spring-Launch` is the `spring-launch` campaign's).
create index campaigns_utm_campaign_lower_idx on campaigns.campaigns (tenant_id, lower(utm_campaign)) where deleted_at is null and utm_campaign is not null;

-- A lead's first touch with a campaign: written once, when the lead is created (domains/marketing/leads/attribution.ts),
-- never overwritten by a later touch. Leads that matched no campaign have no row. The lead's own UTM and referral stay
-- where they were (marketing.leads.source_details, marketing.form_submissions.utm); these columns are the match.
create table marketing.lead_attributions (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  campaign_id uuid not null,
  -- How the lead matched: its UTM campaign code, or the ad id of its click-to-WhatsApp referral.
  matched_on text not null check (matched_on in ('utm_campaign', 'ctwa_ad')),
  -- The code or ad id that matched (what the business set on the campaign, not the person's data).
  match_value text not null check (length(match_value) between 1 and 200),
  -- The ad platform as the performance report groups it (domains/campaigns/performance/platforms.ts).
  platform text not null check (length(platform) between 1 and 60),
  -- The lead.created event's acquisition source and channel, copied onto the lead's lead.qualified / lead.converted
  -- events so the rollups can count them per campaign and platform too.
  acq_source text not null default '' check (length(acq_source) <= 200),
  acq_channel text not null default '' check (length(acq_channel) <= 40),
  -- Meta's click id of a click-to-WhatsApp ad: ties the lead to the ad click (conversions API); personal (it
  -- identifies one person's click), erased with the lead.
  ctwa_clid text check (length(ctwa_clid) <= 500),
  attributed_at timestamptz not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, lead_id),
  -- A campaign is soft-deleted, never removed, except with its tenant (which removes these rows too).
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete cascade
);
create index lead_attributions_campaign_idx on marketing.lead_attributions (tenant_id, campaign_id, platform);

-- Money spent on a campaign per platform and day (entered by hand or synced from a publication's metrics): the
-- denominator of the actual CPL. One row per (campaign, platform, day): entering a day again replaces it.
create table campaigns.spend_entries (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid not null,
  platform text not null check (platform ~ '^[a-z][a-z0-9_]{1,29}$'),
  day date not null,
  amount numeric(14, 2) not null check (amount >= 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  source text not null default 'manual' check (source in ('manual', 'publication')),
  entered_by text not null default 'api',
  updated_at timestamptz not null default now(),
  primary key (tenant_id, campaign_id, platform, day),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete cascade
);

do $$
declare t text;
begin
  foreach t in array array['marketing.lead_attributions', 'campaigns.spend_entries'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

-- Attributions move with a merge and go with an erasure (delete); spend rows are replaced per day and removable.
grant select, insert, update, delete on marketing.lead_attributions, campaigns.spend_entries to app_user;
