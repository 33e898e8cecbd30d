-- Web leads: public lead forms, their submissions and consents, and the record of leads merged into one person.

-- ---------------------------------------------------------------------------------------------------------
-- Forms a business embeds on its sites. The definition (fields, origins, consent, honeypot…) is stored as the
-- validated FormDefinition document; it is read whole on every submission and never queried into.
create table marketing.forms (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- What public pages post to. Global, because a submission names it before any tenant is known.
  public_key text not null unique check (public_key ~ '^wf_[A-Za-z0-9]{20,64}$'),
  name text not null check (length(name) between 1 and 200),
  definition jsonb not null,
  status text not null default 'active' check (status in ('active', 'archived')),
  archived_at timestamptz,
  created_by text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((status = 'archived') = (archived_at is not null))
);
create index forms_list_idx on marketing.forms (tenant_id, created_at desc, id desc);

-- One accepted submission (bots and invalid bodies are never stored). Forms are archived, never deleted, so a
-- submission keeps its form; erasing a lead erases what it submitted.
create table marketing.form_submissions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  form_id uuid not null references marketing.forms (id) on delete restrict,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  answers jsonb not null,
  utm jsonb not null default '{}',
  page_url text,
  referrer text,
  ip inet,
  user_agent text,
  fill_seconds numeric(10, 3),
  request_id text,
  submitted_at timestamptz not null default now()
);
create index form_submissions_form_idx on marketing.form_submissions (tenant_id, form_id, submitted_at desc, id);
create index form_submissions_lead_idx on marketing.form_submissions (tenant_id, lead_id);

-- What a person agreed to, as the proof a regulator asks for: the text shown, the policy version, when, from
-- which IP and browser. Append-only; a later withdrawal is a new row with granted = false.
create table marketing.consents (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  channel text not null,
  form_id uuid references marketing.forms (id) on delete restrict,
  submission_id uuid references marketing.form_submissions (id) on delete cascade,
  granted boolean not null,
  purpose text not null,
  policy_version text not null,
  policy_url text,
  ip inet,
  user_agent text,
  occurred_at timestamptz not null,
  created_at timestamptz not null default now()
);
create index consents_lead_idx on marketing.consents (tenant_id, lead_id, occurred_at desc);

-- Two leads found to be one person: the merged one keeps its row (merged_into set, keys released by the partial
-- unique indexes) and this records when, why and what it looked like. A lead is merged at most once.
create table marketing.lead_merges (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  survivor_id uuid not null references marketing.leads (id) on delete cascade,
  merged_id uuid not null references marketing.leads (id) on delete cascade,
  reason text not null,
  matched_on jsonb not null default '{}',
  merged_snapshot jsonb not null,
  actor text not null,
  request_id text,
  merged_at timestamptz not null default now(),
  unique (tenant_id, merged_id),
  check (survivor_id <> merged_id)
);
create index lead_merges_list_idx on marketing.lead_merges (tenant_id, merged_at desc, id desc);
create index lead_merges_survivor_idx on marketing.lead_merges (tenant_id, survivor_id);

-- ---------------------------------------------------------------------------------------------------------
-- Indexes the lead API and merges need on 0002's tables.
create index leads_status_list_idx on marketing.leads (tenant_id, status, created_at desc, id desc) where merged_into is null;
-- Name search is a case-insensitive prefix match on the name given, else the WhatsApp profile name;
-- text_pattern_ops serves LIKE 'prefix%' whatever the database collation.
create index leads_name_prefix_idx on marketing.leads (tenant_id, lower(coalesce(name, profile_name)) text_pattern_ops) where merged_into is null;
create index leads_merged_into_idx on marketing.leads (tenant_id, merged_into) where merged_into is not null;
create index service_windows_lead_idx on whatsapp.service_windows (tenant_id, lead_id);

-- ---------------------------------------------------------------------------------------------------------
-- Row-level security on every new tenant table.
do $$
declare t text;
begin
  foreach t in array array['marketing.forms', 'marketing.form_submissions', 'marketing.consents', 'marketing.lead_merges'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update on marketing.forms to app_user;
grant select, insert on marketing.form_submissions, marketing.consents, marketing.lead_merges to app_user;
-- A merge moves a person's history to the survivor; nothing else about these rows may change.
grant update (lead_id) on marketing.lead_interactions, marketing.form_submissions, marketing.consents to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- A public submission names a form before any tenant is known: this narrow door answers only what the public
-- endpoint needs of one form (its tenant, state, definition, and the tenant's default country for phones).
create function marketing.find_public_form(p_public_key text)
  returns table (id uuid, tenant_id uuid, status text, definition jsonb, tenant_status text, tenant_default_country text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select f.id, f.tenant_id, f.status, f.definition, t.status, t.default_country
    from marketing.forms f join core.tenants t on t.id = f.tenant_id
   where f.public_key = p_public_key
$$;
revoke execute on function marketing.find_public_form(text) from public;
grant execute on function marketing.find_public_form(text) to app_user;
