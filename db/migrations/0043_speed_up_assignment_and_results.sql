-- Assignment's hot path and results at scale (issue 11). What POST /v1/experiments/assign needs to decide (the lead's targeting fields, its visitors, every started experiment with the unit's winning stored assignment) in one call, and the insert of new assignments in another, each setting the tenant itself: about seven round trips become two (one when nothing is new); and indexes that let the results of a million units be counted off index order.

-- Every started experiment of the tenant with the unit's stored assignment for the phase in force: the earliest row
-- held by the person (the lead, or the lead the visitor became), by one of the lead's visitors not adopted yet, or by
-- the visitor's own id; so the answer is the same before and after adoptVisitorAssignments runs. With p_tenant_id the
-- call sets the tenant itself, transaction-locally (set_config(..., true), as withTenant does): outside a transaction
-- block that is the call's own implicit transaction, so nothing leaks to the pooled connection; inside one (a bot
-- flow's transaction, where the tenant is set already) pass null. A merged lead answers as its survivor. Returns
-- { found, lead: { id, status, source, tags }, person, visitors, adopt (visitor ids holding assignments not yet the
-- lead's), candidates: [{ id, key, status, unit, seed, hashVersion, targeting, namespace, phase, variations, coverage,
-- storedUnitId, storedVariationKey, storedVariationIndex, storedAssignedAt }] ordered by key }.
create function experiments.assign_context(p_tenant_id uuid, p_lead_id uuid, p_anonymous_id text)
returns jsonb language plpgsql as $$
declare
  v_lead jsonb;
  v_person uuid;
  v_visitors text[] := '{}';
  v_anonymous text := null;
  v_persons uuid[];
  v_adopt text[];
  v_candidates jsonb;
begin
  if p_tenant_id is not null then
    perform set_config('app.tenant_id', p_tenant_id::text, true);
  end if;
  if p_lead_id is not null then
    select jsonb_build_object('id', s.id, 'status', s.status, 'source', s.source, 'tags', to_jsonb(s.tags)), s.id
      into v_lead, v_person
      from marketing.leads l join marketing.leads s on s.id = coalesce(l.merged_into, l.id)
     where l.id = p_lead_id;
    if v_person is null then
      return jsonb_build_object('found', false);
    end if;
    select coalesce(array_agg(i.anonymous_id order by i.linked_at, i.anonymous_id), '{}') into v_visitors
      from analytics.identities i where i.lead_id = v_person;
    -- A lead's visitor experiments are bucketed by the visitor's id only when that visitor is this lead's.
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

  -- The person: the lead, and the leads the visitor's assignments already belong to.
  select coalesce(array_agg(distinct x), '{}') into v_persons from (
    select v_person as x where v_person is not null
    union
    select a.lead_id from experiments.assignments a
     where v_anonymous is not null and a.anonymous_id = v_anonymous and a.lead_id is not null
  ) p;
  select coalesce(array_agg(distinct a.anonymous_id), '{}') into v_adopt
    from experiments.assignments a
   where v_person is not null and a.anonymous_id = any(v_visitors) and a.lead_id is null;

  select coalesce(jsonb_agg(jsonb_build_object(
           'id', e.id, 'key', e.key, 'status', e.status, 'unit', e.unit, 'seed', e.seed, 'hashVersion', e.hash_version,
           'targeting', e.targeting, 'namespace', e.namespace, 'phase', e.phase, 'variations', p.variations, 'coverage', p.coverage,
           'storedUnitId', s.unit_id, 'storedVariationKey', s.variation_key, 'storedVariationIndex', s.variation_index,
           'storedAssignedAt', s.assigned_at) order by e.key), '[]')
    into v_candidates
    from experiments.experiments e
    join experiments.phases p on p.experiment_id = e.id and p.phase = e.phase
    left join lateral (
      select a.unit_id, a.variation_key, a.variation_index, a.assigned_at from experiments.assignments a
       where a.experiment_id = e.id and a.phase = e.phase
         and (a.lead_id = any(v_persons) or a.unit_id = v_anonymous or (a.anonymous_id = any(v_adopt) and a.lead_id is null))
       order by a.assigned_at, a.id limit 1
    ) s on true
   where e.status in ('running', 'paused', 'stopped');

  return jsonb_build_object('found', true, 'lead', v_lead, 'person', v_person, 'visitors', to_jsonb(v_visitors),
                            'adopt', to_jsonb(v_adopt), 'candidates', v_candidates);
end $$;

-- New assignments in one call that sets the tenant itself (as above; null inside a transaction that has it); a unit
-- already assigned to the phase (a concurrent request) keeps its row; rows naming an experiment the tenant cannot see
-- are dropped.
create function experiments.insert_assignments(p_tenant_id uuid, p_rows jsonb)
returns table (experiment_id uuid, unit_id text, assigned_at timestamptz) language plpgsql as $$
#variable_conflict use_column
begin
  if p_tenant_id is not null then
    perform set_config('app.tenant_id', p_tenant_id::text, true);
  end if;
  return query
    insert into experiments.assignments as a (tenant_id, experiment_id, phase, unit_id, lead_id, anonymous_id, variation_key, variation_index, source)
    select core.current_tenant_id(), r.experiment_id, r.phase, r.unit_id, r.lead_id, r.anonymous_id, r.variation_key, r.variation_index, r.source
      from jsonb_to_recordset(p_rows)
        as r(experiment_id uuid, phase integer, unit_id text, lead_id uuid, anonymous_id text, variation_key text, variation_index integer, source text)
      -- Foreign keys are checked without row-level security: only the tenant's own experiments are taken.
      join experiments.experiments e on e.id = r.experiment_id
    on conflict (tenant_id, experiment_id, phase, unit_id) do nothing
    returning a.experiment_id, a.unit_id, a.assigned_at;
end $$;

grant execute on function experiments.assign_context(uuid, uuid, text), experiments.insert_assignments(uuid, jsonb) to app_user;

-- Results (experiments/queries.ts countPhase): a phase's units per lead, earliest first, and exposures per lead and
-- variation, each readable in order straight off the index (index-only once vacuumed), instead of sorting every row.
create index assignments_person_idx on experiments.assignments (tenant_id, experiment_id, phase, lead_id, assigned_at, id) include (variation_key);
create index exposures_person_idx on experiments.exposures (tenant_id, experiment_id, phase, lead_id, variation_key);
