-- Media plans (issue 13): a campaign's budget split across ad platforms with its planned CPL and CTR, versioned with named snapshots and rollback, and the tenant's own plan templates; the estimates are computed from these inputs, never stored.

-- One plan. Money is numeric (exact), percentages keep four decimals. The estimates (budget per platform,
-- impressions, leads, sales, revenue) are computed by domains/campaigns/media-plans/estimates.ts from these columns
-- and the allocations, so they can never disagree with the inputs.
create table campaigns.media_plans (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  campaign_id uuid,
  name text not null check (length(name) between 1 and 200),
  budget numeric(14, 2) not null check (budget >= 0),
  -- ISO 4217 (checked against the runtime's list of currencies at the API's boundary).
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  market text not null default '' check (length(market) <= 100),
  goal text not null default 'leads' check (goal in ('leads', 'sales', 'awareness', 'traffic', 'engagement', 'app_installs', 'messages')),
  niche text not null default 'general' check (length(niche) between 1 and 60),
  lead_to_sale_pct numeric(7, 4) not null default 0 check (lead_to_sale_pct between 0 and 100),
  revenue_per_sale numeric(14, 2) not null default 0 check (revenue_per_sale >= 0),
  -- False: the allocations' percentages sum to 100 (±0.01). True: each allocation names its amount, at most the budget in all.
  manual_split boolean not null default false,
  -- The builder's own state (whatever the page keeps beside the fields): validated and size-limited by schemas.ts.
  full_state jsonb not null default '{}',
  -- The built-in (`builtin:<key>`) or tenant template the plan was made from, for the record.
  template_ref text check (length(template_ref) <= 100),
  -- Bumped by every save; an update naming an older one is refused (optimistic concurrency, If-Match).
  version integer not null default 1 check (version >= 1),
  deleted_at timestamptz,
  created_by text not null default 'api',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  -- A campaign is soft-deleted, never removed, except with its tenant: the plan then loses only its link.
  foreign key (tenant_id, campaign_id) references campaigns.campaigns (tenant_id, id) on delete set null (campaign_id)
);
create index media_plans_list_idx on campaigns.media_plans (tenant_id, created_at desc, id desc) where deleted_at is null;
create index media_plans_campaign_idx on campaigns.media_plans (tenant_id, campaign_id, updated_at desc) where campaign_id is not null;

-- A platform's share of a plan: a percentage (manual_split false) or an amount (true), and its CPL and CTR, given by
-- hand or calculated from the benchmarks (domains/campaigns/media-plans/benchmarks.ts) when null.
create table campaigns.media_plan_allocations (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  plan_id uuid not null,
  platform text not null check (platform ~ '^[a-z][a-z0-9_]{1,29}$'),
  position smallint not null check (position >= 0),
  percent numeric(9, 4) check (percent between 0 and 100),
  amount numeric(14, 2) check (amount >= 0),
  cpl numeric(14, 4) check (cpl > 0),
  ctr numeric(7, 4) check (ctr > 0 and ctr <= 100),
  cpc numeric(14, 4) check (cpc > 0),
  primary key (tenant_id, plan_id, platform),
  check (percent is not null or amount is not null),
  foreign key (tenant_id, plan_id) references campaigns.media_plans (tenant_id, id) on delete cascade
);

-- A named, immutable copy of a plan at one version: the document export writes (fields, allocations, fullState).
-- Diffs between two are JSON Patch over these documents; a rollback writes one back as a new version.
create table campaigns.media_plan_snapshots (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  plan_id uuid not null,
  name text not null check (length(name) between 1 and 120),
  plan_version integer not null,
  state jsonb not null,
  created_by text not null default 'api',
  created_at timestamptz not null default now(),
  unique (tenant_id, id),
  unique (tenant_id, plan_id, name),
  foreign key (tenant_id, plan_id) references campaigns.media_plans (tenant_id, id) on delete cascade
);
create index media_plan_snapshots_plan_idx on campaigns.media_plan_snapshots (tenant_id, plan_id, created_at desc, id desc);

-- A tenant's saved starting points (the built-in ones are data in domains/campaigns/media-plans/templates.ts).
create table campaigns.media_plan_templates (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 120),
  description text not null default '' check (length(description) <= 2000),
  -- The plan's fields and allocations without name and campaign (domains/campaigns/media-plans/schemas.ts, TemplateBody).
  body jsonb not null,
  deleted_at timestamptz,
  created_by text not null default 'api',
  created_at timestamptz not null default now()
);
create unique index media_plan_templates_name_key on campaigns.media_plan_templates (tenant_id, lower(name)) where deleted_at is null;

do $$
declare t text;
begin
  foreach t in array array['campaigns.media_plans', 'campaigns.media_plan_allocations', 'campaigns.media_plan_snapshots', 'campaigns.media_plan_templates'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

-- Plans and templates are soft-deleted; snapshots are immutable. Allocations are replaced whole on every save.
grant select, insert, update on campaigns.media_plans, campaigns.media_plan_templates to app_user;
grant select, insert on campaigns.media_plan_snapshots to app_user;
grant select, insert, delete on campaigns.media_plan_allocations to app_user;
