-- Partners get credentials of their own (issue 14): a partner key, created by a tenant admin and shown once, lets the
-- partner read its own links, clicks, commissions, balance and ledger and request withdrawals, nothing else.
create table assessments.partner_keys (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  partner_id uuid not null,
  label text not null check (length(label) between 1 and 100),
  -- The first characters of the key, shown in listings; not enough to use one.
  prefix text not null,
  -- sha256 of the whole key (256 random bits: a fast hash is enough, as for core.api_keys).
  key_hash bytea not null unique,
  created_by text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz,
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete cascade
);
create index partner_keys_partner_idx on assessments.partner_keys (tenant_id, partner_id, created_at);
alter table assessments.partner_keys enable row level security;
alter table assessments.partner_keys force row level security;
create policy tenant_isolation on assessments.partner_keys
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert on assessments.partner_keys to app_user;
grant update (revoked_at) on assessments.partner_keys to app_user;

-- Authentication happens before a tenant is known: given a key hash, its key, tenant and partner, nothing else. A
-- revoked key, a terminated partner or a tenant that is not active authenticates nothing. Last use is recorded at
-- most once a minute per key.
create function assessments.authenticate_partner_key(p_key_hash bytea)
  returns table (key_id uuid, tenant_id uuid, partner_id uuid)
  language plpgsql volatile security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  return query
    update assessments.partner_keys k
       set last_used_at = now()
      from core.tenants t, assessments.partners p
     where k.key_hash = p_key_hash and k.revoked_at is null
       and t.id = k.tenant_id and t.status = 'active'
       and p.id = k.partner_id and p.tenant_id = k.tenant_id and p.status <> 'terminated'
       and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute')
    returning k.id, k.tenant_id, k.partner_id;
  if not found then
    return query
      select k.id, k.tenant_id, k.partner_id
        from assessments.partner_keys k
        join core.tenants t on t.id = k.tenant_id
        join assessments.partners p on p.id = k.partner_id and p.tenant_id = k.tenant_id
       where k.key_hash = p_key_hash and k.revoked_at is null and t.status = 'active' and p.status <> 'terminated';
  end if;
end $$;
revoke execute on function assessments.authenticate_partner_key(bytea) from public;
grant execute on function assessments.authenticate_partner_key(bytea) to app_user;

