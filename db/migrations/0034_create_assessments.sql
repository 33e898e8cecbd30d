-- Assessments (issue 14): scored questionnaires taken on the web (by the assessment's public key or a partner's link)
-- or inside a WhatsApp conversation (the bot's `assessment` node). Definitions are versioned and a published version
-- never changes; a session stays on the version it started on; a result is computed once per session and replaced
-- (its earlier form kept in result_history) only by a re-scoring after a rubric change.
create schema if not exists assessments;
grant usage on schema assessments to app_user;

create table assessments.assessments (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  key text not null,
  type text not null check (type in ('health', 'wealth', 'hybrid')),
  name text not null,
  description text not null default '',
  -- The public door (webhooks service /assessments/:publicKey/...): random, unguessable, unique across tenants.
  public_key text not null unique,
  status text not null default 'draft' check (status in ('draft', 'published', 'archived')),
  -- The version new sessions start on (null until the first publish).
  published_version integer,
  -- The highest rubric_version published so far: a publish whose rubric differs from the last one takes the next.
  rubric_version integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, key)
);

-- One row per version: the draft being edited (at most one, published_at null) and the published ones, immutable.
create table assessments.assessment_versions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  assessment_id uuid not null references assessments.assessments (id) on delete cascade,
  version integer not null check (version >= 1),
  -- [{ id, type, text, required, options?, min?, max?, step?, showIf? }] (domains/assessments/schemas.ts).
  questions jsonb not null,
  -- [{ key, name, weight }]
  categories jsonb not null default '[]',
  -- { points, formulas, total, bands } (domains/assessments/schemas.ts); validated statically at publish.
  rubric jsonb not null,
  -- The profile fields asked beside the questions ([{ key, label, type, required, options? }]).
  profile_fields jsonb not null default '[]',
  -- sha256 of the questions: versions with the same questions can re-score each other's sessions.
  questions_hash text not null,
  -- Set at publish from assessments.rubric_version (0 while draft).
  rubric_version integer not null default 0,
  published_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (assessment_id, version),
  unique (tenant_id, id)
);
create unique index assessment_versions_one_draft on assessments.assessment_versions (assessment_id) where published_at is null;

-- A published version is frozen: nothing about it may change (only its deletion with the assessment).
create function assessments.freeze_published_versions() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if old.published_at is not null then
    raise exception 'assessment version % is published and immutable', old.id using errcode = 'check_violation';
  end if;
  return new;
end $$;
create trigger assessment_versions_frozen after update on assessments.assessment_versions
  for each row execute function assessments.freeze_published_versions();

create table assessments.sessions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  assessment_id uuid not null references assessments.assessments (id) on delete cascade,
  version_id uuid not null references assessments.assessment_versions (id) on delete cascade,
  -- sha256 of the resume token (256 random bits); the token itself is never stored. Null for WhatsApp sessions,
  -- which are resumed through their conversation.
  token_hash bytea unique,
  channel text not null check (channel in ('web', 'whatsapp')),
  lead_id uuid references marketing.leads (id) on delete set null,
  conversation_id uuid references conversations.conversations (id) on delete set null,
  -- The partner link and partner it came through (foreign keys added by the partners migration, 0035).
  link_id uuid,
  partner_id uuid,
  -- The question now asked (null once all visible questions are answered); progress in percent of visible questions.
  current_question_id text,
  progress smallint not null default 0 check (progress between 0 and 100),
  answered_count integer not null default 0,
  -- The participant's profile fields ({ age, gender, country, … }) as the version's profile_fields define them.
  demographics jsonb not null default '{}',
  status text not null default 'in_progress' check (status in ('in_progress', 'completed', 'abandoned')),
  -- A WhatsApp participant who typed "stop": continued later in the same conversation.
  paused_at timestamptz,
  started_at timestamptz not null default now(),
  last_activity_at timestamptz not null default now(),
  completed_at timestamptz,
  -- For the WhatsApp flow node: the page of a long option list now shown (0 = the first).
  option_page integer not null default 0,
  unique (tenant_id, id)
);
create index sessions_assessment_idx on assessments.sessions (tenant_id, assessment_id, status, started_at);
create index sessions_lead_idx on assessments.sessions (tenant_id, lead_id) where lead_id is not null;
create index sessions_conversation_idx on assessments.sessions (conversation_id, status) where conversation_id is not null;
create index sessions_link_idx on assessments.sessions (tenant_id, link_id) where link_id is not null;
create index sessions_partner_idx on assessments.sessions (tenant_id, partner_id) where partner_id is not null;
create index sessions_version_idx on assessments.sessions (version_id, status);

-- The current answer per question (a new answer after "back" replaces it; `revisions` counts how often).
create table assessments.responses (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  session_id uuid not null references assessments.sessions (id) on delete cascade,
  question_id text not null,
  -- { value } as the question's type defines it: an option id, a list of them, a number, a boolean, or text.
  answer jsonb not null,
  response_ms integer check (response_ms is null or response_ms >= 0),
  revisions integer not null default 1,
  answered_at timestamptz not null default now(),
  unique (session_id, question_id)
);
create index responses_tenant_idx on assessments.responses (tenant_id, session_id);

create table assessments.results (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  session_id uuid not null unique references assessments.sessions (id) on delete cascade,
  assessment_id uuid not null references assessments.assessments (id) on delete cascade,
  -- The version whose rubric scored this (the session's own, or a later one with the same questions after a re-score).
  scored_version_id uuid not null references assessments.assessment_versions (id) on delete cascade,
  rubric_version integer not null,
  total_score numeric not null,
  -- { <category key>: score }
  category_scores jsonb not null,
  -- { <formula key>: value } for the rubric's named formulas.
  formula_values jsonb not null default '{}',
  band text,
  band_label text,
  -- [text] from the band (and the categories' own rules).
  recommendations jsonb not null default '[]',
  computed_at timestamptz not null default now(),
  rescored_at timestamptz,
  unique (tenant_id, id)
);
create index results_assessment_idx on assessments.results (tenant_id, assessment_id, rubric_version);

-- The form a result had before each re-score replaced it (newest last).
create table assessments.result_history (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  result_id uuid not null references assessments.results (id) on delete cascade,
  scored_version_id uuid not null,
  rubric_version integer not null,
  total_score numeric not null,
  category_scores jsonb not null,
  band text,
  computed_at timestamptz not null,
  replaced_at timestamptz not null default now(),
  run_id uuid
);
create index result_history_result_idx on assessments.result_history (result_id, replaced_at);

-- A re-scoring of completed sessions with a version's rubric, processed in batches by `assessments__rescore`.
create table assessments.rescoring_runs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  assessment_id uuid not null references assessments.assessments (id) on delete cascade,
  version_id uuid not null references assessments.assessment_versions (id) on delete cascade,
  rubric_version integer not null,
  reason text not null check (reason in ('publish', 'request')),
  status text not null default 'running' check (status in ('running', 'completed', 'failed')),
  -- Keyset cursor: the last session id done.
  cursor uuid,
  rescored integer not null default 0,
  unchanged integer not null default 0,
  skipped integer not null default 0,
  batches integer not null default 0,
  last_error text,
  requested_by text not null,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);
create index rescoring_runs_assessment_idx on assessments.rescoring_runs (tenant_id, assessment_id, created_at);
create unique index rescoring_runs_one_running on assessments.rescoring_runs (assessment_id) where status = 'running';

do $$
declare t text;
begin
  foreach t in array array['assessments.assessments', 'assessments.assessment_versions', 'assessments.sessions', 'assessments.responses',
                           'assessments.results', 'assessments.result_history', 'assessments.rescoring_runs'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update, delete on assessments.assessments, assessments.assessment_versions to app_user;
grant select, insert, update on assessments.sessions, assessments.results, assessments.rescoring_runs to app_user;
grant select, insert, update, delete on assessments.responses to app_user;
grant select, insert on assessments.result_history to app_user;
-- Erasure deletes a subject's sessions' responses (through the session) and anonymises the session.
grant delete on assessments.sessions, assessments.results, assessments.result_history to app_user;

-- The public door: an assessment by its public key, before any tenant is known (its tenant, state and version).
create function assessments.find_public_assessment(p_public_key text)
  returns table (id uuid, tenant_id uuid, status text, published_version integer, tenant_status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select a.id, a.tenant_id, a.status, a.published_version, t.status
    from assessments.assessments a join core.tenants t on t.id = a.tenant_id
   where a.public_key = p_public_key
$$;
revoke execute on function assessments.find_public_assessment(text) from public;
grant execute on function assessments.find_public_assessment(text) to app_user;

-- A resume token's session, before any tenant is known: its id and tenant, nothing else.
create function assessments.session_for_token(p_token_hash bytea)
  returns table (id uuid, tenant_id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select s.id, s.tenant_id from assessments.sessions s where s.token_hash = p_token_hash $$;
revoke execute on function assessments.session_for_token(bytea) from public;
grant execute on function assessments.session_for_token(bytea) to app_user;
