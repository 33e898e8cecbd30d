-- Tenancy lives in the database: tenants, their API keys and the audit log, each under row-level security.

create schema if not exists core;
grant usage on schema core to app_user;

-- The tenant of the current transaction, set by withTenant() with set_config(..., true). Unset means no tenant,
-- and every policy below then matches nothing.
create function core.current_tenant_id() returns uuid
  language sql stable
  as $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$;

create table core.tenants (
  id uuid primary key default gen_random_uuid(),
  name text not null check (length(name) between 1 and 200),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  status text not null default 'active' check (status in ('active', 'suspended')),
  default_country text not null default 'US' check (default_country ~ '^[A-Z]{2}$'),
  timezone text not null default 'UTC',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table core.tenants enable row level security;
alter table core.tenants force row level security;
-- The tenants table is keyed by id, not tenant_id: a tenant sees exactly its own row.
create policy tenant_isolation on core.tenants
  using (id = core.current_tenant_id())
  with check (id = core.current_tenant_id());

create table core.api_keys (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 100),
  role text not null check (role in ('admin', 'read_only')),
  -- The first characters of the key, shown in listings so people can tell keys apart; not enough to use one.
  prefix text not null,
  -- sha256 of the whole key. Keys carry 256 random bits, so a fast hash is enough: nothing to brute-force.
  key_hash bytea not null unique,
  created_by text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_tenant_idx on core.api_keys (tenant_id, created_at);
alter table core.api_keys enable row level security;
alter table core.api_keys force row level security;
create policy tenant_isolation on core.api_keys
  using (tenant_id = core.current_tenant_id())
  with check (tenant_id = core.current_tenant_id());

create table core.audit_log (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  actor text not null,
  action text not null,
  target_type text,
  target_id text,
  details jsonb not null default '{}',
  request_id text,
  created_at timestamptz not null default now()
);
create index audit_log_tenant_idx on core.audit_log (tenant_id, created_at desc);
alter table core.audit_log enable row level security;
alter table core.audit_log force row level security;
create policy tenant_isolation on core.audit_log
  using (tenant_id = core.current_tenant_id())
  with check (tenant_id = core.current_tenant_id());

grant select, insert, update on core.tenants to app_user;
grant select, insert, update on core.api_keys to app_user;
-- The audit log is append-only for the services.
grant select, insert on core.audit_log to app_user;

-- Authentication happens before a tenant is known, so it cannot go through RLS. This function is the one narrow
-- door: given a key hash it answers which tenant and role, and nothing else. It also records last use, at most
-- once a minute per key so that a busy key does not turn every request into a write.
create function core.authenticate_api_key(p_key_hash bytea)
  returns table (key_id uuid, tenant_id uuid, role text)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    update core.api_keys k
       set last_used_at = now()
      from core.tenants t
     where k.key_hash = p_key_hash and k.revoked_at is null
       and t.id = k.tenant_id and t.status = 'active'
       and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute')
    returning k.id, k.tenant_id, k.role;
  if not found then
    return query
      select k.id, k.tenant_id, k.role
        from core.api_keys k join core.tenants t on t.id = k.tenant_id
       where k.key_hash = p_key_hash and k.revoked_at is null and t.status = 'active';
  end if;
end $$;

-- Operators list tenants across the platform; again one narrow function instead of a role that bypasses RLS.
-- The cursor is the last id seen; its sort key is looked up here, at full timestamp precision.
create function core.list_tenants(p_limit int, p_after_id uuid)
  returns setof core.tenants
  language sql stable security definer
  set search_path = pg_catalog, pg_temp
as $$
  select t.* from core.tenants t
   where p_after_id is null
      or (t.created_at, t.id) > (select a.created_at, a.id from core.tenants a where a.id = p_after_id)
   order by t.created_at, t.id
   limit p_limit
$$;

revoke execute on function core.authenticate_api_key(bytea) from public;
revoke execute on function core.list_tenants(int, uuid) from public;
grant execute on function core.current_tenant_id() to app_user;
grant execute on function core.authenticate_api_key(bytea) to app_user;
grant execute on function core.list_tenants(int, uuid) to app_user;
