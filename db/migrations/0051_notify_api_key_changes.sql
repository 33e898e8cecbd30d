-- API processes cache authenticated keys (domains/tenancy/key-cache.ts); every change that can make a cached key wrong (a key revoked, its role or hash changed, the key deleted, its tenant suspended or deleted) tells them at commit on channel api_key_changed, whoever wrote it (the API, an operator's SQL, a migration).

-- The payload is the tenant's id: listeners drop every cached key of that tenant. NOTIFY is sent at commit (never for a
-- rolled-back change) and folds repeats of the same payload in one transaction into one.
create function core.notify_api_key_changed() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name = 'tenants' then
    perform pg_notify('api_key_changed', old.id::text);
  else
    perform pg_notify('api_key_changed', old.tenant_id::text);
  end if;
  return null;
end $$;

-- Not on last_used_at: authenticate_api_key writes it at most once a minute per key, and that changes nothing a cache holds.
create trigger api_keys_notify_changed
  after update of revoked_at, role, key_hash, tenant_id on core.api_keys
  for each row
  when (old.revoked_at is distinct from new.revoked_at or old.role is distinct from new.role
        or old.key_hash is distinct from new.key_hash or old.tenant_id is distinct from new.tenant_id)
  execute function core.notify_api_key_changed();

create trigger api_keys_notify_deleted
  after delete on core.api_keys
  for each row execute function core.notify_api_key_changed();

create trigger tenants_notify_status_changed
  after update of status on core.tenants
  for each row
  when (old.status is distinct from new.status)
  execute function core.notify_api_key_changed();

create trigger tenants_notify_deleted
  after delete on core.tenants
  for each row execute function core.notify_api_key_changed();
