-- Template sends that name an experiment (issue 11): the pending exposure is written with the message, before Meta gives it a wamid, and is resolved by Meta's statuses (delivered: an exposure; failed: none).
alter table experiments.pending_exposures drop constraint pending_exposures_pkey;
alter table experiments.pending_exposures alter column wamid drop not null;
-- The outbound message; its wamid is filled in when Meta accepts the send (both ways of matching a status, since a
-- status can be applied before our commit of the wamid: it carries the message id in biz_opaque_callback_data).
alter table experiments.pending_exposures add column message_id uuid references whatsapp.messages (id) on delete cascade;
alter table experiments.pending_exposures add column template_name text;
alter table experiments.pending_exposures add column state text not null default 'pending' check (state in ('pending', 'exposed', 'failed'));
alter table experiments.pending_exposures add column resolved_at timestamptz;
alter table experiments.pending_exposures add constraint pending_exposures_ref check (message_id is not null or wamid is not null);
create unique index pending_exposures_message_uidx on experiments.pending_exposures (tenant_id, message_id) where message_id is not null;
create unique index pending_exposures_wamid_uidx on experiments.pending_exposures (tenant_id, wamid) where wamid is not null;
create index pending_exposures_experiment_idx on experiments.pending_exposures (experiment_id, phase, state);
