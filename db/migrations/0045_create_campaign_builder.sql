-- Campaign builder (issue 13): product images, versioned creatives and their assets, platform integrations with sealed tokens, publications, AI generation history, auto-saved drafts that expire, and named snapshots of campaigns.

-- A product's images: exactly one primary at most per product; background versions (the builder's cut-outs and
-- backdrops) point at the image they were made from.
create table campaigns.product_images (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  product_id uuid not null,
  kind text not null default 'image' check (kind in ('image', 'background')),
  parent_image_id uuid,
  url text not null check (length(url) <= 2048),
  alt text not null default '' check (length(alt) <= 500),
  is_primary boolean not null default false,
  position integer not null default 0,
  width integer check (width > 0),
  height integer check (height > 0),
  legacy_key text,
  created_at timestamptz not null default now(),
  unique (tenant_id, id),
  check (not (is_primary and kind = 'background')),
  check (parent_image_id is null or kind = 'background'),
  foreign key (tenant_id, product_id) references campaigns.products (tenant_id, id) on delete cascade,
  foreign key (tenant_id, parent_image_id) references campaigns.product_images (tenant_id, id) on delete cascade
);
create unique index product_images_primary_key on campaigns.product_images (product_id) where is_primary;
create unique index product_images_legacy_key on campaigns.product_images (tenant_id, legacy_key) where legacy_key is not null;
create index product_images_product_idx on campaigns.product_images (tenant_id, product_id, position);

-- A creative (an ad's design): its current version here, every version (immutable) in creative_versions.
create table campaigns.creatives (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid,
  title text not null check (length(title) between 1 and 200),
  format text not null check (format in ('image', 'video', 'carousel', 'story', 'text')),
  width integer not null check (width between 1 and 10000),
  height integer not null check (height between 1 and 10000),
  -- [{ type, x, y, width, height, … }]: validated by domains/campaigns/schemas.ts.
  elements jsonb not null default '[]',
  version integer not null default 1 check (version >= 1),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete set null (campaign_id)
);
create index creatives_campaign_idx on campaigns.creatives (tenant_id, campaign_id) where campaign_id is not null;
create index creatives_list_idx on campaigns.creatives (tenant_id, created_at desc);

create table campaigns.creative_versions (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  creative_id uuid not null,
  version integer not null,
  title text not null,
  format text not null,
  width integer not null,
  height integer not null,
  elements jsonb not null,
  created_by text not null,
  created_at timestamptz not null default now(),
  primary key (creative_id, version),
  foreign key (tenant_id, creative_id) references campaigns.creatives (tenant_id, id) on delete cascade
);

create table campaigns.creative_assets (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  creative_id uuid not null,
  kind text not null check (kind in ('image', 'video', 'logo', 'font', 'audio')),
  url text not null check (length(url) <= 2048),
  mime_type text check (length(mime_type) <= 100),
  bytes bigint check (bytes >= 0),
  width integer check (width > 0),
  height integer check (height > 0),
  checksum text check (length(checksum) <= 128),
  created_at timestamptz not null default now(),
  foreign key (tenant_id, creative_id) references campaigns.creatives (tenant_id, id) on delete cascade
);
create index creative_assets_creative_idx on campaigns.creative_assets (tenant_id, creative_id, created_at);

-- An ad platform account the tenant connected. Tokens are sealed with SECRETS_KEY (lib/crypto.ts) like the WhatsApp
-- access tokens, and never returned by the API; a disconnected integration drops them and keeps its row for history.
create table campaigns.platform_integrations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  platform text not null check (platform in ('meta', 'google', 'tiktok', 'linkedin', 'x', 'pinterest', 'snapchat', 'youtube', 'whatsapp')),
  account_id text not null check (length(account_id) between 1 and 200),
  label text not null default '' check (length(label) <= 200),
  access_token_sealed text,
  refresh_token_sealed text,
  token_expires_at timestamptz,
  scopes text[] not null default '{}',
  status text not null default 'active' check (status in ('active', 'error', 'disconnected')),
  last_error text check (length(last_error) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  unique (tenant_id, platform, account_id),
  check (status = 'disconnected' or access_token_sealed is not null)
);

-- A campaign as published on one platform: its id there, status, the platform's metrics and when they were read.
create table campaigns.publications (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid not null,
  platform text not null check (platform in ('meta', 'google', 'tiktok', 'linkedin', 'x', 'pinterest', 'snapchat', 'youtube', 'whatsapp')),
  integration_id uuid,
  external_id text check (length(external_id) between 1 and 200),
  status text not null default 'pending' check (status in ('pending', 'publishing', 'published', 'paused', 'failed', 'removed')),
  -- { impressions, reach, clicks, leads, conversions, spend (decimal string), currency, ctr, cpl }: domains/campaigns/schemas.ts.
  metrics jsonb not null default '{}',
  last_synced_at timestamptz,
  last_error text check (length(last_error) <= 1000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, campaign_id, platform),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete cascade,
  foreign key (tenant_id, integration_id) references campaigns.platform_integrations (tenant_id, id) on delete set null (integration_id)
);
create unique index publications_external_key on campaigns.publications (tenant_id, platform, external_id) where external_id is not null;

-- What the builder asked an AI service for (copy, images, audiences): prompt, service, cost and timing, for
-- spend accounting and to show a campaign's history. Prompts are the business's own text.
create table campaigns.ai_generations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid,
  creative_id uuid,
  type text not null check (type in ('copy', 'headline', 'image', 'background', 'audience', 'media_plan', 'other')),
  prompt text not null check (length(prompt) <= 20000),
  service text not null check (length(service) between 1 and 100),
  model text check (length(model) <= 100),
  status text not null default 'succeeded' check (status in ('succeeded', 'failed')),
  output jsonb,
  error text check (length(error) <= 1000),
  cost numeric(14, 6) check (cost >= 0),
  cost_currency char(3) not null default 'USD',
  input_tokens integer check (input_tokens >= 0),
  output_tokens integer check (output_tokens >= 0),
  started_at timestamptz not null,
  completed_at timestamptz not null,
  duration_ms integer generated always as (greatest(0, (extract(epoch from (completed_at - started_at)) * 1000)::integer)) stored,
  created_by text not null,
  legacy_key text,
  created_at timestamptz not null default now(),
  check (completed_at >= started_at),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete set null (campaign_id),
  foreign key (tenant_id, creative_id) references campaigns.creatives (tenant_id, id) on delete set null (creative_id)
);
create index ai_generations_campaign_idx on campaigns.ai_generations (tenant_id, campaign_id, started_at desc) where campaign_id is not null;
create index ai_generations_list_idx on campaigns.ai_generations (tenant_id, started_at desc);

-- The builder's auto-saved step data, one per campaign, rewritten on every save (PUT is one upsert). Expires 7 days
-- after its last save: reads ignore an expired draft at once, campaigns__expire_drafts deletes them in batches.
create table campaigns.campaign_drafts (
  campaign_id uuid primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  step text check (length(step) <= 100),
  data jsonb not null,
  -- The campaign version the draft was started from: publishing it onto a campaign changed since is a conflict.
  base_version integer not null,
  saves integer not null default 1,
  saved_at timestamptz not null default now(),
  expires_at timestamptz not null,
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete cascade
);
create index campaign_drafts_expiry_idx on campaigns.campaign_drafts (expires_at);

-- Named snapshots of a campaign's state at one version: listed, diffed (JSON Patch) and rolled back to.
create table campaigns.campaign_snapshots (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid not null,
  label text not null check (length(label) between 1 and 200),
  version integer not null,
  state jsonb not null,
  created_by text not null,
  created_at timestamptz not null default now(),
  unique (tenant_id, campaign_id, label),
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete cascade
);
create index campaign_snapshots_campaign_idx on campaigns.campaign_snapshots (tenant_id, campaign_id, created_at desc);

-- Every key of a legacy browser dump (POST /v1/campaigns/import/local-storage) that was imported, and what it became.
-- The primary key is what makes an import idempotent: a second import of the same dump meets it and changes nothing,
-- even after the rows it created were edited, published or deleted.
create table campaigns.legacy_imports (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  legacy_key text not null check (length(legacy_key) between 1 and 300),
  target_type text not null check (target_type in ('campaign', 'product', 'product_image', 'draft')),
  target_id uuid not null,
  imported_by text not null,
  imported_at timestamptz not null default now(),
  primary key (tenant_id, legacy_key)
);

do $$
declare t text;
begin
  foreach t in array array['campaigns.product_images', 'campaigns.creatives', 'campaigns.creative_versions', 'campaigns.creative_assets',
                           'campaigns.platform_integrations', 'campaigns.publications', 'campaigns.ai_generations',
                           'campaigns.campaign_drafts', 'campaigns.campaign_snapshots', 'campaigns.legacy_imports'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on campaigns.product_images, campaigns.creative_assets, campaigns.campaign_drafts to app_user;
grant select, insert, update on campaigns.creatives, campaigns.platform_integrations, campaigns.publications to app_user;
-- History: written once, never changed (a rollback is a new version; snapshots are deleted with their campaign only).
grant select, insert on campaigns.creative_versions, campaigns.ai_generations, campaigns.campaign_snapshots, campaigns.legacy_imports to app_user;

-- A campaign's history (GET /v1/campaigns/:id/history) reads the audit log by target.
create index if not exists audit_log_target_idx on core.audit_log (tenant_id, target_type, target_id, id desc) where target_id is not null;

-- Cross-tenant, for campaigns__expire_drafts: deletes up to p_limit expired drafts of any tenant (skipping rows a
-- save holds), returns how many. Security definer because drafts are RLS-forced; it touches expired drafts only.
create function campaigns.expire_drafts(p_limit integer)
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with doomed as (
    select campaign_id from campaigns.campaign_drafts
     where expires_at <= now() order by expires_at limit greatest(p_limit, 0) for update skip locked
  ), gone as (
    delete from campaigns.campaign_drafts d using doomed where d.campaign_id = doomed.campaign_id and d.expires_at <= now() returning 1
  )
  select count(*)::integer from gone
$$;
revoke execute on function campaigns.expire_drafts(integer) from public;
grant execute on function campaigns.expire_drafts(integer) to app_user;
