-- API processes cache authenticated keys (domains/tenancy/key-cache.ts) and each tenant's started experiments (domains/experiments/definitions-cache.ts); every change that can make a cached entry wrong tells them at commit (api_key_changed: a key revoked, its role or hash changed, the key deleted, its tenant suspended or deleted; experiments_changed: any change to experiments or phases), whoever wrote it (the API, an operator's SQL, a migration); and the assign route reads a unit's stored assignments in one light call.

-- The payload is the tenant's id: listeners drop every cached key of that tenant. NOTIFY is sent at commit (never for a
-- rolled-back change) and folds repeats of the same payload in one transaction into one.
create function core.notify_api_key_changed() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if tg_table_name = 'tenants' then
    perform pg_notify('api_key_changed', old.id::text);
  else
    perform pg_notify('api_key_changed', old.tenant_id::text);
  end if;
  return null;
end $$;

-- Not on last_used_at: authenticate_api_key writes it at most once a minute per key, and that changes nothing a cache holds.
create trigger api_keys_notify_changed
  after update of revoked_at, role, key_hash, tenant_id on core.api_keys
  for each row
  when (old.revoked_at is distinct from new.revoked_at or old.role is distinct from new.role
        or old.key_hash is distinct from new.key_hash or old.tenant_id is distinct from new.tenant_id)
  execute function core.notify_api_key_changed();

create trigger api_keys_notify_deleted
  after delete on core.api_keys
  for each row execute function core.notify_api_key_changed();

create trigger tenants_notify_status_changed
  after update of status on core.tenants
  for each row
  when (old.status is distinct from new.status)
  execute function core.notify_api_key_changed();

create trigger tenants_notify_deleted
  after delete on core.tenants
  for each row execute function core.notify_api_key_changed();

-- Experiments: any insert, update or delete of a definition or a phase (status, targeting, a new phase, weights)
-- drops the tenant's cached definitions in every API process. Assignments and exposures do not notify.
create function experiments.notify_experiments_changed() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform pg_notify('experiments_changed', (case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end)::text);
  return null;
end $$;

create trigger experiments_notify_changed
  after insert or update or delete on experiments.experiments
  for each row execute function experiments.notify_experiments_changed();

create trigger phases_notify_changed
  after insert or update or delete on experiments.phases
  for each row execute function experiments.notify_experiments_changed();

-- The unit half of experiments.assign_context (0046) for a caller that holds the tenant's started experiments in
-- memory: the lead's targeting fields (a merged lead as its survivor), its visitors, the visitors to adopt, and the
-- winning (earliest) stored assignment of the person per experiment and phase, over every experiment, for the caller
-- to match against the phases in force. The same person, visitors and adoption rules as assign_context; the stored
-- rows are those held by the person, by the visitor's own id (its rows carry it in anonymous_id: insert_assignments
-- writes the visitor's id there whenever it is the unit), or by the lead's visitors not adopted yet. Sets the tenant
-- itself when given one, as assign_context does. Returns { found, lead, person, visitors, adopt, stored: [{
-- experimentId, phase, unitId, variationKey, variationIndex, assignedAt }] }.
create function experiments.unit_assignments(p_tenant_id uuid, p_lead_id uuid, p_anonymous_id text)
returns jsonb language plpgsql as $$
declare
  v_lead jsonb;
  v_person uuid;
  v_visitors text[] := '{}';
  v_anonymous text := null;
  v_persons uuid[];
  v_adopt text[];
  v_stored jsonb;
begin
  if p_tenant_id is not null then
    perform set_config('app.tenant_id', p_tenant_id::text, true);
  end if;
  if p_lead_id is not null then
    select coalesce(l.merged_into, l.id) into v_person from marketing.leads l where l.id = p_lead_id;
    select jsonb_build_object('id', s.id, 'status', s.status, 'source', s.source, 'tags', to_jsonb(s.tags)), s.id
      into v_lead, v_person
      from marketing.leads s
     where s.id = v_person;
    if v_person is null then
      return jsonb_build_object('found', false);
    end if;
    select coalesce(array_agg(i.anonymous_id order by i.linked_at, i.anonymous_id), '{}') into v_visitors
      from analytics.identities i where i.lead_id = v_person;
    if p_anonymous_id is not null and p_anonymous_id = any(v_visitors) then
      v_anonymous := p_anonymous_id;
    end if;
  else
    v_anonymous := p_anonymous_id;
    select coalesce(l.merged_into, l.id) into v_person
      from analytics.identities i join marketing.leads l on l.id = i.lead_id
     where i.anonymous_id = p_anonymous_id;
    if v_person is not null then
      v_visitors := array[p_anonymous_id];
    end if;
  end if;

  select coalesce(array_agg(distinct x), '{}') into v_persons from (
    select v_person as x where v_person is not null
    union
    select a.lead_id from experiments.assignments a
     where v_anonymous is not null and a.tenant_id = core.current_tenant_id() and a.anonymous_id = v_anonymous and a.lead_id is not null
  ) p;
  select coalesce(array_agg(distinct a.anonymous_id), '{}') into v_adopt
    from experiments.assignments a
   where v_person is not null and a.tenant_id = core.current_tenant_id() and a.anonymous_id = any(v_visitors) and a.lead_id is null;

  -- Index probes on (tenant_id, lead_id, ...) and (tenant_id, anonymous_id); the earliest row per experiment and phase.
  select coalesce(jsonb_agg(jsonb_build_object(
           'experimentId', w.experiment_id, 'phase', w.phase, 'unitId', w.unit_id, 'variationKey', w.variation_key,
           'variationIndex', w.variation_index, 'assignedAt', w.assigned_at)), '[]')
    into v_stored
    from (
      select distinct on (c.experiment_id, c.phase) c.* from (
        select a.id, a.experiment_id, a.phase, a.unit_id, a.variation_key, a.variation_index, a.assigned_at from experiments.assignments a
         where cardinality(v_persons) > 0 and a.tenant_id = core.current_tenant_id() and a.lead_id = any(v_persons)
        union all
        select a.id, a.experiment_id, a.phase, a.unit_id, a.variation_key, a.variation_index, a.assigned_at from experiments.assignments a
         where v_anonymous is not null and a.tenant_id = core.current_tenant_id() and a.anonymous_id = v_anonymous and a.unit_id = v_anonymous
        union all
        select a.id, a.experiment_id, a.phase, a.unit_id, a.variation_key, a.variation_index, a.assigned_at from experiments.assignments a
         where cardinality(v_adopt) > 0 and a.tenant_id = core.current_tenant_id() and a.anonymous_id = any(v_adopt) and a.lead_id is null
      ) c
      order by c.experiment_id, c.phase, c.assigned_at, c.id
    ) w;

  return jsonb_build_object('found', true, 'lead', v_lead, 'person', v_person, 'visitors', to_jsonb(v_visitors),
                            'adopt', to_jsonb(v_adopt), 'stored', v_stored);
end $$;

grant execute on function experiments.unit_assignments(uuid, uuid, text) to app_user;
