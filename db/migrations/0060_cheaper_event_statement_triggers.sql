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
