-- A tenant may forward to its own PostHog project instead of the operator's, and an erased person's PostHog persons (and their events) are deleted: a queue of deletion requests by pseudonymous distinct id.

-- The tenant's own project: its project API key (sealed with SECRETS_KEY, like Meta tokens; never returned), the
-- ingestion host, and, for deletions, a personal API key (sealed) with the project id and the app host. Hosts are
-- checked against POSTHOG_ALLOWED_HOSTS by the API: the worker never posts to an address a tenant typed freely.
alter table analytics.posthog_settings
  add column project_api_key_sealed text,
  add column project_host text,
  add column personal_api_key_sealed text,
  add column project_id text,
  add column app_host text,
  add check (project_api_key_sealed is not null or (project_host is null and personal_api_key_sealed is null and project_id is null and app_host is null)),
  add check ((personal_api_key_sealed is null) = (project_id is null));

-- One row per distinct id of an erased person and per project that may hold it ('operator': the operator's
-- project, POSTHOG_API_KEY; 'tenant': the tenant's own). distinct_id is the keyed pseudonym the forwarder sent
-- (lead_… / anon_…, HMAC under SECRETS_KEY), not the person's ids; it is kept after PostHog accepted the request as
-- the proof of what was asked, and goes with the erasure request. 'manual': no personal API key for that project,
-- so an operator must delete it in PostHog (the reason says so); 'parked': PostHog refused it maxAttempts times.
create table analytics.posthog_person_deletions (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  erasure_request_id uuid not null references privacy.erasure_requests (id) on delete cascade,
  project text not null check (project in ('operator', 'tenant')),
  distinct_id text not null,
  status text not null default 'pending' check (status in ('pending', 'requested', 'manual', 'parked')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  created_at timestamptz not null default now(),
  requested_at timestamptz,
  primary key (tenant_id, erasure_request_id, project, distinct_id)
);
create index posthog_person_deletions_due_idx on analytics.posthog_person_deletions (tenant_id, next_attempt_at) where status = 'pending';
alter table analytics.posthog_person_deletions enable row level security;
alter table analytics.posthog_person_deletions force row level security;
create policy tenant_isolation on analytics.posthog_person_deletions
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, update on analytics.posthog_person_deletions to app_user;

-- Cross-tenant, for the deletion drain: which tenants have deletions due, and nothing else about them.
create function analytics.posthog_deletion_due_tenants(p_now timestamptz, p_limit int)
  returns table (tenant_id uuid)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select s.tenant_id from analytics.posthog_settings s
   where exists (select 1 from analytics.posthog_person_deletions d
                  where d.tenant_id = s.tenant_id and d.status = 'pending' and d.next_attempt_at <= p_now)
   order by s.tenant_id
   limit p_limit
$$;
revoke execute on function analytics.posthog_deletion_due_tenants(timestamptz, int) from public;
grant execute on function analytics.posthog_deletion_due_tenants(timestamptz, int) to app_user;
