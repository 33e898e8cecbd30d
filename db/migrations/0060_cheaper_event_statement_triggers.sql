-- The PostHog outbox trigger (0025) probed analytics.posthog_settings once per inserted event (a correlated EXISTS
-- under row-level security) even for the tenants that never turned forwarding on, which is nearly all of them: in
-- bench:analytics-intake it was the costliest of the event stream's statement triggers, about 3 µs per event of the
-- intake statement's time, for no rows. Now the settings are looked at once per statement: no enabled settings
-- visible (the writer's tenant, as before: invoker's rights, RLS) ends the trigger before the new rows are read;
-- otherwise the rows of the enabled tenants are chosen by one hashed semi-join. The same rows as before.
create or replace function analytics.enqueue_posthog_outbox() returns trigger
  language plpgsql security invoker set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from analytics.posthog_settings s where s.enabled) then
    return null;
  end if;
  insert into analytics.posthog_outbox (tenant_id, event_id, occurred_at)
  select n.tenant_id, n.id, n.occurred_at
    from new_events n
   where n.tenant_id in (select s.tenant_id from analytics.posthog_settings s where s.enabled)
  on conflict do nothing;
  return null;
end $$;

-- analytics.daily_uniques (0022) takes about 0.8 rows per event in a rollup, and each row paid a per-row foreign
-- key check on core.tenants (an index probe and a FOR KEY SHARE of the same tenant row, through SPI, every row); the
-- two foreign-key triggers were about 30% of that insert's time (EXPLAIN ANALYZE of one day of the 1M rollup bench:
-- 310 + 370 ms of 2,248 ms). As 0042 did for the event stream, the tenant is
-- now checked once per statement (check_event_tenants: the statement's distinct tenant ids, 23503 if one does not
-- exist), and deleting a tenant deletes its rows by the tenant trigger below. By construction the rows come from
-- analytics.events of the writer's tenant (RLS's WITH CHECK ties tenant_id to app.tenant_id) or from daily_uniques
-- itself (a merge), so the check never fails in the product; it keeps an owner's manual insert honest.
-- The lead foreign key stays: erasure relies on its ON DELETE CASCADE, and it checks only the 'lead' rows (visitor
-- rows have no lead_id).
alter table analytics.daily_uniques drop constraint daily_uniques_tenant_id_fkey;
create trigger daily_uniques_check_tenants after insert on analytics.daily_uniques
  referencing new table as new_rows for each statement execute function analytics.check_event_tenants();

-- 0042's ON DELETE CASCADE by hand, now for daily_uniques too.
create or replace function analytics.delete_tenant_events() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := current_setting('app.tenant_id', true);
begin
  perform set_config('app.tenant_id', old.id::text, true);
  delete from analytics.events where tenant_id = old.id;
  delete from analytics.event_keys where tenant_id = old.id;
  delete from analytics.daily_uniques where tenant_id = old.id;
  perform set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
  return old;
end $$;
