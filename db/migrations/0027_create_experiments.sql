-- Experiments (issue 11): definitions with phases, sticky per-unit assignments that follow a visitor into a lead and a lead through merges, exposures, and the conflicts a merge resolves.
create schema if not exists experiments;
grant usage on schema experiments to app_user;

-- The definition as it is now. While draft, everything may change; once started, the variations, weights and
-- coverage of the running phase are frozen in experiments.phases (a change starts a new phase).
create table experiments.experiments (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  key text not null,
  name text not null,
  hypothesis text not null default '',
  status text not null default 'draft' check (status in ('draft', 'running', 'paused', 'stopped')),
  -- What is bucketed: a lead (its id), or a website visitor before it is a lead (its anonymous id).
  unit text not null default 'lead' check (unit in ('lead', 'anonymous')),
  seed text not null,
  hash_version smallint not null default 2,
  coverage double precision not null default 1 check (coverage >= 0 and coverage <= 1),
  -- [{ key, name?, weight, value? }], at least two, weights summing to 1 (checked by the API's schema).
  variations jsonb not null,
  -- The condition tree over attributes (domains/experiments/targeting.ts); null: everyone.
  targeting jsonb,
  -- { id, start, end }: the slice of the namespace's hash this experiment takes, for mutually exclusive experiments.
  namespace jsonb,
  -- [{ event, windowHours }]: analytics event names that count as a conversion within the window after assignment.
  goals jsonb not null default '[]',
  -- 0 while draft; the number of the phase now in force after that.
  phase integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  started_at timestamptz,
  stopped_at timestamptz,
  unique (tenant_id, key)
);
create index experiments_status_idx on experiments.experiments (tenant_id, status);

-- What each phase assigned with: results are per phase, and a unit's stored assignment is per phase.
create table experiments.phases (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null check (phase >= 1),
  variations jsonb not null,
  coverage double precision not null,
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  primary key (experiment_id, phase)
);

-- The first assignment of a unit to an experiment's phase; it wins from then on. unit_id is the id that was hashed
-- (a lead id, or a visitor's anonymous id) and never changes; lead_id is the person it belongs to now: set when a
-- visitor becomes a lead, moved to the survivor when leads merge. A lead may so hold several rows for one phase
-- (its own and a merged lead's): the earliest wins, and the merge recorded the conflict.
create table experiments.assignments (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  unit_id text not null,
  lead_id uuid references marketing.leads (id) on delete cascade,
  anonymous_id text,
  variation_key text not null,
  variation_index integer not null,
  assigned_at timestamptz not null default clock_timestamp(),
  -- Who asked: 'api' (POST /v1/experiments/assign), 'site' (the public variant endpoint), 'flow', 'template'.
  source text not null,
  unique (tenant_id, experiment_id, phase, unit_id),
  foreign key (experiment_id, phase) references experiments.phases (experiment_id, phase) on delete cascade
);
create index assignments_lead_idx on experiments.assignments (tenant_id, lead_id, experiment_id) where lead_id is not null;
create index assignments_anonymous_idx on experiments.assignments (tenant_id, anonymous_id) where anonymous_id is not null;
create index assignments_phase_idx on experiments.assignments (experiment_id, phase, variation_index);

-- A unit saw its variation (a bot node ran, a template was delivered): once per unit, phase and variation, so a unit
-- exposed to two variations (a merge of two assigned leads) shows up as such.
create table experiments.exposures (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  unit_id text not null,
  lead_id uuid references marketing.leads (id) on delete cascade,
  anonymous_id text,
  variation_key text not null,
  exposed_at timestamptz not null default now(),
  source text not null,
  unique (tenant_id, experiment_id, phase, unit_id, variation_key)
);
create index exposures_lead_idx on experiments.exposures (tenant_id, lead_id) where lead_id is not null;
create index exposures_phase_idx on experiments.exposures (experiment_id, phase, variation_key);

-- Template sends that name an experiment, waiting for Meta's "delivered" to become an exposure (a failed send is not).
create table experiments.pending_exposures (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  wamid text not null,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  unit_id text not null,
  lead_id uuid references marketing.leads (id) on delete cascade,
  variation_key text not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, wamid)
);
create index pending_exposures_lead_idx on experiments.pending_exposures (tenant_id, lead_id) where lead_id is not null;

-- Two assignments of one person to one phase (two merged leads, or a visitor and the lead it became, each assigned):
-- the earliest is kept and this records the one that lost.
create table experiments.assignment_conflicts (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  experiment_id uuid not null references experiments.experiments (id) on delete cascade,
  phase integer not null,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  -- The lead merged into lead_id (null when a visitor's assignment met its lead's).
  merged_lead_id uuid references marketing.leads (id) on delete cascade,
  kept_unit_id text not null,
  kept_variation_key text not null,
  dropped_unit_id text not null,
  dropped_variation_key text not null,
  reason text not null check (reason in ('merge', 'identify')),
  recorded_at timestamptz not null default now()
);
create index assignment_conflicts_lead_idx on experiments.assignment_conflicts (tenant_id, lead_id);
create index assignment_conflicts_merged_idx on experiments.assignment_conflicts (tenant_id, merged_lead_id) where merged_lead_id is not null;
create index assignment_conflicts_experiment_idx on experiments.assignment_conflicts (experiment_id, phase);

do $$
declare t text;
begin
  foreach t in array array['experiments.experiments', 'experiments.phases', 'experiments.assignments', 'experiments.exposures',
                           'experiments.pending_exposures', 'experiments.assignment_conflicts'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on experiments.experiments, experiments.phases, experiments.assignments, experiments.exposures,
  experiments.pending_exposures, experiments.assignment_conflicts to app_user;
