-- A goal event whose lead's first assignment was still uncommitted queued nothing (its trigger saw neither a
-- maintained row nor a queued key of that lead), and when a drain took the assignment's key before the event
-- committed, that goal was never counted (found by CI: results-queue.int.test.ts, writers beside drains). Inserted
-- goal events now also queue their lead for the current phase of every running experiment that has the event as a
-- goal, assigned or not. The queued key commits with the event, so a drain after it sees both the event and (once it
-- has committed) the assignment; a lead that is never assigned is dropped by the drain as a person with no
-- variation. An assigned lead already had that key queued, so only goal events of unassigned leads add rows.
create or replace function experiments.refresh_results_of_new_events() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  if not exists (select 1 from experiments.experiments e where e.status <> 'draft' and e.goals <> '[]'::jsonb) then
    return null;
  end if;
  insert into experiments.result_queue (tenant_id, experiment_id, phase, person, lead_id)
  select distinct r.tenant_id, r.experiment_id, r.phase, r.person, r.lead_id
    from (select distinct n.tenant_id, n.lead_id, n.name from new_rows n where n.lead_id is not null) n
    join lateral (
      select u.tenant_id, u.experiment_id, u.phase, u.person, u.lead_id from experiments.result_units u where u.tenant_id = n.tenant_id and u.lead_id = n.lead_id
      union all
      select q.tenant_id, q.experiment_id, q.phase, q.person, q.lead_id from experiments.result_queue q where q.tenant_id = n.tenant_id and q.lead_id = n.lead_id
      union all
      -- The lead's key in the phase it may be being assigned to right now (the events' foreign key has checked the lead).
      select x.tenant_id, x.id, x.phase, n.lead_id::text, n.lead_id from experiments.experiments x
       where x.tenant_id = n.tenant_id and x.status = 'running'
    ) r on true
    join experiments.experiments e on e.id = r.experiment_id and e.goals @> jsonb_build_array(jsonb_build_object('event', n.name));
  return null;
end $$;
