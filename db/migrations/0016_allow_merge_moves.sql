-- A merge moves every row the lead-references catalog marks 'move' to the survivor: analytics events and earlier merge records too, not only the history tables 0003 allowed.
grant update (lead_id) on analytics.events to app_user;
grant update (survivor_id) on marketing.lead_merges to app_user;
-- Merge and erasure find a lead's events by lead_id; without this index both scan every event of the tenant.
create index events_lead_idx on analytics.events (tenant_id, lead_id) where lead_id is not null;
