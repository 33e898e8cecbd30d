-- The live feed's notification carries a small statement's events themselves, so the API fans them out the moment the commit is announced instead of first reading them back through its pool (the read stays, off the hot path, to move the cursor and to catch anything a notification could not carry).

-- Payload (JSON text): {"t": tenant, "e": [{id, x (xact_id), name, at, lead, src, acqSrc, ch, country, device,
-- browser, os, props}, …]}, the fields domains/analytics/live.ts shows. Only for a statement under a tenant (RLS's
-- with check: every row is that tenant's) of at most 20 rows whose payload fits in 7,900 bytes (PostgreSQL's limit is
-- 8,000); anything else sends the tenant id alone, as before, and the listener reads the rows. A big statement
-- (a WhatsApp batch, a worker moving 1,000 events) counts at most 21 rows and builds nothing.
create or replace function analytics.notify_events_committed() returns trigger
  language plpgsql security invoker set search_path = pg_catalog, pg_temp
as $$
declare
  tenant text := coalesce(nullif(current_setting('app.tenant_id', true), ''), '*');
  payload text;
begin
  if tenant <> '*' and (select count(*) from (select 1 from new_events limit 21) s) <= 20 then
    select json_build_object('t', tenant, 'e', json_agg(json_build_object(
             'id', n.id::text, 'x', n.xact_id::text, 'name', n.name, 'at', n.occurred_at, 'lead', n.lead_id, 'src', n.source,
             'acqSrc', n.acq_source, 'ch', n.acq_channel, 'country', n.country, 'device', n.device, 'browser', n.browser,
             'os', n.os, 'props', n.properties) order by n.id))::text
      into payload
      from new_events n;
    if payload is not null and octet_length(payload) <= 7900 then
      perform pg_notify('analytics_events', payload);
      return null;
    end if;
  end if;
  perform pg_notify('analytics_events', tenant);
  return null;
end $$;

drop trigger events_notify_committed on analytics.events;
create trigger events_notify_committed after insert on analytics.events
  referencing new table as new_events for each statement execute function analytics.notify_events_committed();
