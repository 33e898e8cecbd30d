-- The event stream's tenant is checked once per statement instead of once per row: the per-row foreign keys of analytics.events and analytics.event_keys on core.tenants (an index probe and a FOR KEY SHARE lock on the same tenant row for every event) were about a quarter of the intake's database time.

-- What still holds, and how:
-- * Every row names an existing tenant: the statement triggers below look up the statement's distinct tenant ids
--   (one, under RLS) and refuse the statement otherwise (23503, like the foreign key did).
-- * Every runtime insert is under its tenant anyway: RLS's WITH CHECK ties tenant_id to app.tenant_id, which
--   withTenant sets from an authenticated key or a tenant id the product already holds.
-- * Deleting a tenant still deletes its events and keys (the foreign keys' ON DELETE CASCADE): the trigger on
--   core.tenants below. The product never deletes tenants (they are archived); this keeps an operator's manual delete
--   from leaving orphans. Unlike a foreign key it does not block a tenant's delete racing a concurrent insert of its
--   events; with no delete path in the product that race cannot happen.
alter table analytics.events drop constraint events_tenant_id_fkey;
alter table analytics.event_keys drop constraint event_keys_tenant_id_fkey;

create function analytics.check_event_tenants() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  missing uuid;
begin
  select t.tenant_id into missing
    from (select distinct n.tenant_id from new_rows n) t
   where not exists (select 1 from core.tenants c where c.id = t.tenant_id)
   limit 1;
  if found then
    raise exception 'insert on %.% names tenant %, which does not exist', tg_table_schema, tg_table_name, missing
      using errcode = '23503';
  end if;
  return null;
end $$;
revoke execute on function analytics.check_event_tenants() from public;

create trigger events_check_tenants after insert on analytics.events
  referencing new table as new_rows for each statement execute function analytics.check_event_tenants();
create trigger event_keys_check_tenants after insert on analytics.event_keys
  referencing new table as new_rows for each statement execute function analytics.check_event_tenants();
-- tenant_id is never updated (no grant allows it), so inserts are the only way in.

-- ON DELETE CASCADE, by hand: runs as the owner, under the deleted tenant (RLS is forced, for the owner too).
create function analytics.delete_tenant_events() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := current_setting('app.tenant_id', true);
begin
  perform set_config('app.tenant_id', old.id::text, true);
  delete from analytics.events where tenant_id = old.id;
  delete from analytics.event_keys where tenant_id = old.id;
  perform set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
  return old;
end $$;
revoke execute on function analytics.delete_tenant_events() from public;

create trigger tenants_delete_events before delete on core.tenants
  for each row execute function analytics.delete_tenant_events();
