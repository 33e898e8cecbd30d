-- The worker enriches client events before rollup (domains/analytics/enrichment): store what rollups group by with each event.
-- `source` stays the producer (whatsapp, web_form, api, site); the visit's acquisition source is acq_source.
alter table analytics.events
  add column acq_source text,
  add column acq_channel text,
  add column referrer_host text,
  add column utm jsonb,
  add column click_id jsonb,
  add column device text,
  add column browser text,
  add column browser_version text,
  add column os text,
  add column os_version text,
  add column is_bot boolean,
  add column country text,
  add column country_from text;
-- Erasure nulls the click id with the page context (an ad click id can be joined back to a person by the ad network).
grant update (click_id) on analytics.events to app_user;
