-- The assessment and partner reports from the analytics side (issue 14): their events rolled up per tenant day by the
-- analytics roll-up job, behind the same watermark, rebuilt from raw for every dirty day (never incremented).
create table analytics.assessment_rollups (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- The tenant's day (its timezone) the events occurred on.
  day date not null,
  -- started, completed, duration, score, reached, answered, response, clicked, visitors, inactive, link_started,
  -- link_completed, converted, refunded, commission_<created|approved|paid|rejected|reversed>
  -- (domains/analytics/assessment-rollups.ts says what each counts).
  measure text not null,
  assessment_id text not null default '',
  partner_id text not null default '',
  link_id text not null default '',
  channel text not null default '',
  question_id text not null default '',
  band text not null default '',
  -- A histogram's value (whole seconds, 100 ms steps, a total score); 0 for plain counts.
  value numeric not null default 0,
  currency text not null default '',
  events bigint not null,
  -- Money measures: the exact sum of the events' amounts.
  amount numeric not null default 0,
  primary key (tenant_id, day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency)
);
create index assessment_rollups_assessment_idx on analytics.assessment_rollups (tenant_id, assessment_id, day) where assessment_id <> '';
create index assessment_rollups_partner_idx on analytics.assessment_rollups (tenant_id, partner_id, day) where partner_id <> '';

alter table analytics.assessment_rollups enable row level security;
alter table analytics.assessment_rollups force row level security;
create policy tenant_isolation on analytics.assessment_rollups
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, delete on analytics.assessment_rollups to app_user;

-- The events recorded before this table existed: their buckets are marked dirty, so the next roll-up builds their days
-- (and the watermark stays below them until it has, so reports read them from raw meanwhile).
insert into analytics.rollup_dirty (tenant_id, bucket_start, recount)
select distinct tenant_id, analytics.bucket_of(occurred_at), false
  from analytics.events
 where source in ('assessments', 'partner_link')
   and (name like 'assessment.%' or name like 'link.%' or name like 'commission.%');
