-- A broadcast may name an experiment whose variations are templates (issue 11): the broadcast keeps which one, each recipient the variation and phase it was sent.

-- The broadcast's reference carries its tenant, so a foreign key cannot join one tenant's broadcast to another's experiment.
alter table experiments.experiments add constraint experiments_tenant_id_id_key unique (tenant_id, id);

-- Experiments are deleted only while draft or stopped; a broadcast that named one then sends its own template to whoever is left.
alter table campaigns.broadcasts add column experiment_id uuid;
alter table campaigns.broadcasts add constraint broadcasts_experiment_fkey
  foreign key (tenant_id, experiment_id) references experiments.experiments (tenant_id, id) on delete set null (experiment_id);
create index broadcasts_experiment_idx on campaigns.broadcasts (tenant_id, experiment_id) where experiment_id is not null;

-- Written when the recipient is queued: null when the experiment did not take the lead (the broadcast's own template went).
alter table campaigns.broadcast_recipients add column variation_key text;
alter table campaigns.broadcast_recipients add column experiment_phase integer;
