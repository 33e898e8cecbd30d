-- experiments.assign_context by index probes only: joined on coalesce(merged_into, id) the planner hashed all of marketing.leads on every call (auto_explain: a seq scan of 100,000 leads, ~110 ms), and the stored assignment's OR made it walk every assignment of each phase (~18 ms); assign p99 was 520-668 ms on a quiet machine.

create or replace function experiments.assign_context(p_tenant_id uuid, p_lead_id uuid, p_anonymous_id text)
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
    -- Two index probes: joined on coalesce(merged_into, id), the planner hashed the whole leads table per call.
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
      -- Three index probes, not one OR: with the OR the planner walked all of the phase's assignments.
      select c.unit_id, c.variation_key, c.variation_index, c.assigned_at from (
        select a.unit_id, a.variation_key, a.variation_index, a.assigned_at, a.id from experiments.assignments a
         where a.tenant_id = core.current_tenant_id() and a.experiment_id = e.id and a.phase = e.phase and a.lead_id = any(v_persons)
        union all
        select a.unit_id, a.variation_key, a.variation_index, a.assigned_at, a.id from experiments.assignments a
         where v_anonymous is not null and a.tenant_id = core.current_tenant_id() and a.experiment_id = e.id and a.phase = e.phase
           and a.unit_id = v_anonymous
        union all
        select a.unit_id, a.variation_key, a.variation_index, a.assigned_at, a.id from experiments.assignments a
         where cardinality(v_adopt) > 0 and a.tenant_id = core.current_tenant_id() and a.anonymous_id = any(v_adopt)
           and a.lead_id is null and a.experiment_id = e.id and a.phase = e.phase
      ) c
       order by c.assigned_at, c.id limit 1
    ) s on true
   where e.status in ('running', 'paused', 'stopped');

  return jsonb_build_object('found', true, 'lead', v_lead, 'person', v_person, 'visitors', to_jsonb(v_visitors),
                            'adopt', to_jsonb(v_adopt), 'candidates', v_candidates);
end $$;

-- The probes' own indexes. With the tenant only in the policy's expression, a plan made while the table was small
-- (PL/pgSQL keeps it for the session) took (experiment_id, phase, variation_index) and filtered every assignment of
-- the phase; these lead with the columns every probe has.
create index assignments_phase_lead_idx on experiments.assignments (experiment_id, phase, lead_id) where lead_id is not null;
create index assignments_phase_unit_idx on experiments.assignments (experiment_id, phase, unit_id);
