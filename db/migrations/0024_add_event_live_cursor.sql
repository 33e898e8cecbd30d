-- The live feed (GET /v1/analytics/live) resumes after a reconnect without gaps: each event records the transaction that wrote it, and every insert statement notifies the API processes that listen.

-- Identity ids are taken at insert, not at commit: a transaction holding id 10 can commit after one holding id 11,
-- so "id > last seen" misses events. The writing transaction's id (xid8: 64-bit, never wraps) lets a reader ask
-- exactly "committed after this snapshot" (pg_visible_in_snapshot), whatever the commit order. Set by default on
-- every insert path; rows written before this migration keep null (they are history, not news).
-- The default is set apart from add column so existing rows are not rewritten (a volatile default would be).
alter table analytics.events add column xact_id xid8;
alter table analytics.events alter column xact_id set default pg_current_xact_id();
-- The live feed's read: a tenant's rows of the transactions not visible in the last snapshot (xid >= its xmax, or in
-- its in-progress list).
create index events_xact_idx on analytics.events (tenant_id, xact_id) where xact_id is not null;

-- One notification per insert statement, not per row, carrying only the tenant (the reader loads the rows under
-- withTenant, with RLS): payloads are capped at 8000 bytes and per-row notifications would flood the queue. Every
-- app_user insert is under its tenant (RLS's with check); an insert outside a tenant (the owner: seeds, backfills)
-- says '*' and every listening process rereads all the tenants it serves. PostgreSQL folds identical notifications
-- of one transaction into one and delivers them only at commit.
create function analytics.notify_events_committed() returns trigger
  language plpgsql security invoker set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('analytics_events', coalesce(nullif(current_setting('app.tenant_id', true), ''), '*'));
  return null;
end $$;
create trigger events_notify_committed after insert on analytics.events
  for each statement execute function analytics.notify_events_committed();
