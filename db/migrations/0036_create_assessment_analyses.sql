-- AI analysis of assessment results: one analysis per result, a per-tenant cache keyed by the pattern of the inputs that matter, the provider calls counted for the rate limits, and each tenant's hourly budget.

-- The analysis a participant sees. source: 'provider' (asked the AI now), 'cache' (the same pattern was analysed
-- within AI_CACHE_TTL), 'rules' (the rule-based provider: the default, or the fallback, with fallback_reason).
-- narrative and recommendations are written from banded answers only (domains/assessments/ai/pattern.ts), never
-- from free text or names; still, they are about a person's health or wealth, so erasure deletes them.
create table assessments.analyses (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  result_id uuid not null unique references assessments.results (id) on delete cascade,
  session_id uuid not null references assessments.sessions (id) on delete cascade,
  -- The result's rubric version analysed: a re-score makes a new analysis (the old one is replaced).
  rubric_version integer not null,
  pattern_hash bytea not null,
  source text not null check (source in ('provider', 'cache', 'rules')),
  fallback_reason text check (fallback_reason is null or source = 'rules'),
  provider text not null,
  model text,
  prompt_version integer not null,
  narrative text not null,
  recommendations jsonb not null default '[]',
  latency_ms integer,
  created_at timestamptz not null default now()
);
create index analyses_session_idx on assessments.analyses (tenant_id, session_id);

-- One row per pattern a provider analysed. Per tenant: rubrics and bands are the tenant's own, and nothing one
-- tenant's participants produced is shown to another's. 'pending' while one job asks the provider (single flight:
-- a second job with the same pattern waits for it instead of paying twice); a pending row older than a few
-- minutes is a crashed job's and may be claimed again.
create table assessments.analysis_cache (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  pattern_hash bytea not null,
  status text not null default 'pending' check (status in ('pending', 'ready')),
  provider text not null,
  model text,
  prompt_version integer not null,
  narrative text,
  recommendations jsonb,
  claimed_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  hits integer not null default 0,
  last_hit_at timestamptz,
  primary key (tenant_id, pattern_hash),
  check (status = 'pending' or (narrative is not null and expires_at is not null))
);
create index analysis_cache_expiry_idx on assessments.analysis_cache (tenant_id, expires_at);

-- Every call made to the AI provider, for the rate limits: at most AI_RATE_LIMIT_PER_HOUR per participant (the lead,
-- or the session when no lead is known) and the tenant's hourly budget, over a sliding hour. A reserved call counts
-- before it is made, so concurrent jobs cannot overshoot.
create table assessments.ai_calls (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  session_id uuid not null references assessments.sessions (id) on delete cascade,
  called_at timestamptz not null default now(),
  outcome text not null default 'reserved' check (outcome in ('reserved', 'ok', 'error')),
  latency_ms integer,
  prompt_tokens integer,
  completion_tokens integer,
  error text
);
create index ai_calls_tenant_time_idx on assessments.ai_calls (tenant_id, called_at);
create index ai_calls_session_time_idx on assessments.ai_calls (session_id, called_at);

-- A tenant's own hourly budget of provider calls (default AI_TENANT_CALLS_PER_HOUR), and an off switch.
create table assessments.ai_settings (
  tenant_id uuid primary key references core.tenants (id) on delete cascade,
  enabled boolean not null default true,
  calls_per_hour integer check (calls_per_hour is null or calls_per_hour between 0 and 1000000),
  updated_at timestamptz not null default now(),
  updated_by text
);

do $$
declare t text;
begin
  foreach t in array array['assessments.analyses', 'assessments.analysis_cache', 'assessments.ai_calls', 'assessments.ai_settings'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on assessments.analyses, assessments.analysis_cache to app_user;
grant select, insert, update, delete on assessments.ai_calls to app_user;
grant select, insert, update on assessments.ai_settings to app_user;
