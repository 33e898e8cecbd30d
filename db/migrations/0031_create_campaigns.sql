-- Campaigns (issue 13): the campaign builder's campaigns and product catalog move off the browser's localStorage into tenant-owned tables; the schema the media plans and broadcasts build on.
create schema if not exists campaigns;
grant usage on schema campaigns to app_user;

-- The product catalog a campaign promotes. Prices are exact decimals; UTM codes are the defaults a campaign of
-- the product inherits. Images (with their background versions) live in campaigns.product_images (0045).
create table campaigns.products (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  sku text check (length(sku) between 1 and 64),
  description text not null default '' check (length(description) <= 5000),
  price numeric(14, 2) check (price >= 0),
  currency char(3),
  url text check (length(url) <= 2048),
  -- { source, medium, campaign, term, content }: validated by domains/campaigns/schemas.ts.
  utm jsonb not null default '{}',
  -- The legacy browser storage key and id it was imported from (domains/campaigns/legacy-import.ts); a second import
  -- of the same dump meets this constraint and changes nothing.
  legacy_key text,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id)
);
create unique index products_sku_key on campaigns.products (tenant_id, sku) where sku is not null;
create unique index products_legacy_key on campaigns.products (tenant_id, legacy_key) where legacy_key is not null;
create index products_list_idx on campaigns.products (tenant_id, created_at desc) where deleted_at is null;

create table campaigns.campaigns (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  type text not null default 'lead_generation' check (type in ('lead_generation', 'sales', 'awareness', 'traffic', 'engagement', 'app_installs', 'whatsapp')),
  -- draft → scheduled → active → paused → completed → archived; the allowed transitions are in domains/campaigns/lifecycle.ts.
  status text not null default 'draft' check (status in ('draft', 'scheduled', 'active', 'paused', 'completed', 'archived')),
  description text not null default '' check (length(description) <= 5000),
  budget numeric(14, 2) check (budget >= 0),
  -- ISO 4217 (checked against the runtime's list of currencies at the API's boundary).
  currency char(3) check (currency ~ '^[A-Z]{3}$'),
  starts_at timestamptz,
  ends_at timestamptz,
  product_id uuid,
  -- The code leads' UTM campaign is matched on (attribution); one campaign per code in a tenant.
  utm_campaign text check (length(utm_campaign) between 1 and 200),
  -- { audience, platforms, creative, publish }: validated (and size-limited) by domains/campaigns/schemas.ts.
  config jsonb not null default '{}',
  -- Bumped by every save; an update naming an older one is refused (optimistic concurrency, If-Match).
  version integer not null default 1 check (version >= 1),
  legacy_key text,
  deleted_at timestamptz,
  created_by text not null default 'api',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  status_changed_at timestamptz not null default now(),
  unique (tenant_id, id),
  check (ends_at is null or starts_at is null or ends_at >= starts_at),
  foreign key (tenant_id, product_id) references campaigns.products (tenant_id, id) on delete restrict
);
create unique index campaigns_utm_campaign_key on campaigns.campaigns (tenant_id, utm_campaign) where utm_campaign is not null;
create unique index campaigns_legacy_key on campaigns.campaigns (tenant_id, legacy_key) where legacy_key is not null;
create index campaigns_list_idx on campaigns.campaigns (tenant_id, created_at desc) where deleted_at is null;
create index campaigns_status_idx on campaigns.campaigns (tenant_id, status) where deleted_at is null;
create index campaigns_product_idx on campaigns.campaigns (tenant_id, product_id) where product_id is not null;

do $$
declare t text;
begin
  foreach t in array array['campaigns.products', 'campaigns.campaigns'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

-- No delete: campaigns and products are soft-deleted (deleted_at) and restored; tenant deletion cascades as the owner.
grant select, insert, update on campaigns.products, campaigns.campaigns to app_user;
