-- The query API's hour level: event counts per tenant and UTC hour summed from the 5-minute rollups in the roll-up's own transaction, so a 30-day query in any whole-hour zone reads 720 rows per dimension tuple instead of 8,640, and can never drift from the 5-minute level.

-- Same dimensions as analytics.event_aggregations ('' when absent). Rebuilt per (tenant, hour) from
-- event_aggregations by the roll-up, in the transaction that rebuilt one of the hour's buckets: deleted and inserted,
-- never incremented. An hour is read only when it ended before the watermark and none of its buckets is dirty.
create table analytics.hourly_aggregations (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  hour_start timestamptz not null check (extract(epoch from hour_start) % 3600 = 0),
  name text not null,
  source text not null default '',
  channel text not null default '',
  country text not null default '',
  device text not null default '',
  producer text not null default '',
  form_id text not null default '',
  flow_id text not null default '',
  template text not null default '',
  campaign_id text not null default '',
  experiment text not null default '',
  variant text not null default '',
  events bigint not null check (events > 0),
  primary key (tenant_id, hour_start, name, source, channel, country, device, producer, form_id, flow_id, template, campaign_id, experiment, variant)
);
create index hourly_aggregations_name_idx on analytics.hourly_aggregations (tenant_id, name, hour_start);

-- The hours of what is rolled up already, so the level is whole from the start (as 0021 moved the events: the
-- migration's owner reads every tenant's rows).
insert into analytics.hourly_aggregations (tenant_id, hour_start, name, source, channel, country, device, producer,
                                           form_id, flow_id, template, campaign_id, experiment, variant, events)
select tenant_id, date_trunc('hour', bucket_start, 'UTC'), name, source, channel, country, device, producer,
       form_id, flow_id, template, campaign_id, experiment, variant, sum(events)
  from analytics.event_aggregations
 group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14;

alter table analytics.hourly_aggregations enable row level security;
alter table analytics.hourly_aggregations force row level security;
create policy tenant_isolation on analytics.hourly_aggregations
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, delete on analytics.hourly_aggregations to app_user;
