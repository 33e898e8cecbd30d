import type postgres from 'postgres'
import type { Queryable, Tx } from '../../lib/db.js'
import type { ExperimentView, Variation } from './schemas.js'

const experimentColumns = (tx: Tx) => tx`
  e.id, e.key, e.name, e.hypothesis, e.status, e.unit, e.seed, e.hash_version, e.coverage, e.variations, e.targeting, e.namespace,
  e.goals, e.phase, e.created_at, e.updated_at, e.started_at, e.stopped_at`

export interface ExperimentInsert {
  key: string; name: string; hypothesis: string; unit: string; seed: string; hashVersion: number; coverage: number
  variations: Variation[]; targeting: unknown; namespace: unknown; goals: unknown
}

export const insertExperiment = (tx: Tx, tenantId: string, e: ExperimentInsert) =>
  tx<ExperimentView[]>`
    insert into experiments.experiments as e (tenant_id, key, name, hypothesis, unit, seed, hash_version, coverage, variations, targeting, namespace, goals)
    values (${tenantId}, ${e.key}, ${e.name}, ${e.hypothesis}, ${e.unit}, ${e.seed}, ${e.hashVersion}, ${e.coverage}, ${tx.json(e.variations as never)},
            ${e.targeting === null ? null : tx.json(e.targeting as never)}, ${e.namespace === null ? null : tx.json(e.namespace as never)}, ${tx.json(e.goals as never)})
    returning ${experimentColumns(tx)}`.then((r) => r[0]!)

export const listExperiments = (tx: Tx, status: string | undefined, limit: number, after: { at: string; id: string } | null) =>
  tx<(ExperimentView & { cursorAt: string })[]>`
    select ${experimentColumns(tx)}, e.created_at::text as cursor_at from experiments.experiments e
     where ${status ? tx`e.status = ${status}` : tx`true`}
       and ${after ? tx`(e.created_at, e.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx`true`}
     order by e.created_at desc, e.id desc limit ${limit + 1}`

export const findExperiment = (tx: Tx, id: string, lock = false) =>
  tx<ExperimentView[]>`select ${experimentColumns(tx)} from experiments.experiments e where e.id = ${id} ${lock ? tx`for update` : tx``}`
    .then((r) => r[0] ?? null)

export const findExperimentByKey = (tx: Tx, key: string) =>
  tx<ExperimentView[]>`select ${experimentColumns(tx)} from experiments.experiments e where e.key = ${key}`.then((r) => r[0] ?? null)

/** Only the fields given change (undefined leaves a column alone; null clears targeting or namespace). */
export const updateExperiment = (tx: Tx, id: string, p: Partial<ExperimentInsert> & { status?: string; phase?: number; startedAt?: 'now'; stoppedAt?: 'now' }) => {
  const json = (v: unknown) => (v === null ? null : tx.json(v as never))
  const sets = [
    p.name !== undefined && tx`name = ${p.name}`,
    p.hypothesis !== undefined && tx`hypothesis = ${p.hypothesis}`,
    p.unit !== undefined && tx`unit = ${p.unit}`,
    p.seed !== undefined && tx`seed = ${p.seed}`,
    p.hashVersion !== undefined && tx`hash_version = ${p.hashVersion}`,
    p.coverage !== undefined && tx`coverage = ${p.coverage}`,
    p.variations !== undefined && tx`variations = ${json(p.variations)}`,
    p.targeting !== undefined && tx`targeting = ${json(p.targeting)}`,
    p.namespace !== undefined && tx`namespace = ${json(p.namespace)}`,
    p.goals !== undefined && tx`goals = ${json(p.goals)}`,
    p.status !== undefined && tx`status = ${p.status}`,
    p.phase !== undefined && tx`phase = ${p.phase}`,
    p.startedAt !== undefined && tx`started_at = coalesce(started_at, now())`,
    p.stoppedAt !== undefined && tx`stopped_at = now()`,
  ].filter((s) => s !== false)
  return tx<ExperimentView[]>`
    update experiments.experiments e set ${sets.map((s, i) => tx`${i > 0 ? tx`, ` : tx``}${s}`)}, updated_at = now()
     where e.id = ${id} returning ${experimentColumns(tx)}`.then((r) => r[0]!)
}

export const deleteExperiment = (tx: Tx, id: string) => tx`delete from experiments.experiments where id = ${id}`.then((r) => r.count)

/** Ends the phase in force (if any) and opens `phase` with the definition's variations and coverage, in one statement. */
export const openPhase = (tx: Tx, tenantId: string, experimentId: string, phase: number, variations: Variation[], coverage: number) =>
  tx`
    with ended as (
      update experiments.phases set ended_at = now() where experiment_id = ${experimentId} and ended_at is null returning 1
    )
    insert into experiments.phases (tenant_id, experiment_id, phase, variations, coverage)
    values (${tenantId}, ${experimentId}, ${phase}, ${tx.json(variations as never)}, ${coverage})`

export const endPhase = (tx: Tx, experimentId: string) =>
  tx`update experiments.phases set ended_at = now() where experiment_id = ${experimentId} and ended_at is null`

export interface PhaseRow { phase: number; variations: Variation[]; coverage: number; startedAt: Date; endedAt: Date | null }
export const listPhases = (tx: Tx, experimentId: string) =>
  tx<PhaseRow[]>`select phase, variations, coverage, started_at, ended_at from experiments.phases where experiment_id = ${experimentId} order by phase`

// ---------------------------------------------------------------------------------------------------------------
// Assignment: the hot path (two calls per request at most: assignContext, and insertAssignments when something is new).

/** An experiment that has started, with its phase in force and the unit's winning stored assignment, if any. */
export interface Candidate {
  id: string; key: string; status: 'running' | 'paused' | 'stopped'; unit: 'lead' | 'anonymous'; seed: string; hashVersion: number
  targeting: unknown; namespace: { id: string; start: number; end: number } | null
  phase: number; variations: Variation[]; coverage: number
  storedUnitId: string | null; storedVariationKey: string | null; storedVariationIndex: number | null; storedAssignedAt: string | null
}

export type AssignContext =
  | { found: false }
  | {
    found: true
    lead: { id: string; status: string; source: string; tags: string[] } | null
    /** The lead the unit is (a visitor linked to a lead is that lead), or null for an unknown visitor. */
    person: string | null
    visitors: string[]
    /** Visitors of the person holding assignments that are not the person's yet (adoptVisitorAssignments makes them so). */
    adopt: string[]
    candidates: Candidate[]
  }

/**
 * Everything an assignment decides on, in one call of experiments.assign_context (migration 0043): the lead's targeting
 * fields (a merged lead as its survivor), its visitors, and every started experiment with the unit's winning stored
 * assignment (the earliest row held by the person, by its visitors, or by the visitor's id). With a tenant id the call
 * sets the tenant itself, for use outside a transaction (the pool: one round trip); inside one, pass null.
 */
export const assignContext = (db: Queryable, tenantId: string | null, leadId: string | null, anonymousId: string | null) =>
  db<{ ctx: AssignContext }[]>`select experiments.assign_context(${tenantId}::uuid, ${leadId}::uuid, ${anonymousId}::text) as ctx`.then((r) => r[0]!.ctx)

/** A started experiment with its phase in force: what the in-process definitions cache holds per tenant. */
export type StartedExperiment = Omit<Candidate, 'storedUnitId' | 'storedVariationKey' | 'storedVariationIndex' | 'storedAssignedAt'>

/** Every started experiment of the current tenant (running, paused or stopped) with the variations and coverage of its phase in force, by key. */
export const listStartedExperiments = (tx: Tx) =>
  tx<StartedExperiment[]>`
    select e.id, e.key, e.status, e.unit, e.seed, e.hash_version, e.targeting, e.namespace, e.phase, p.variations, p.coverage
      from experiments.experiments e join experiments.phases p on p.experiment_id = e.id and p.phase = e.phase
     where e.status in ('running', 'paused', 'stopped')
     order by e.key`

export interface StoredWinner { experimentId: string; phase: number; unitId: string; variationKey: string; variationIndex: number; assignedAt: string }
export type UnitAssignments =
  | { found: false }
  | (Omit<Extract<AssignContext, { found: true }>, 'candidates'> & { stored: StoredWinner[] })

/**
 * The unit's side of assignContext, for a caller holding the tenant's started experiments in memory, for several units
 * of one tenant in one statement (the assign route's batched reads), in order: each unit's lead, visitors, visitors to
 * adopt, and winning stored assignment per experiment and phase (experiments.unit_assignments, migration 0051: index
 * probes by person and visitor, no per-experiment work; it sets the tenant itself).
 */
export const unitAssignmentsMany = (db: Queryable, tenantId: string | null, units: { leadId: string | null; anonymousId: string | null }[]) =>
  db<{ u: UnitAssignments }[]>`
    select experiments.unit_assignments(${tenantId}::uuid, r.lead_id, r.anonymous_id) as u
      from jsonb_to_recordset(${db.json(units.map((x, ord) => ({ ord, lead_id: x.leadId, anonymous_id: x.anonymousId })) as never)}::jsonb)
        as r(ord int, lead_id uuid, anonymous_id text)
     order by r.ord`.then((rows) => rows.map((r) => r.u))

export interface AssignmentInsert {
  experiment_id: string; phase: number; unit_id: string; lead_id: string | null; anonymous_id: string | null
  variation_key: string; variation_index: number; source: string
}

/**
 * New assignments in one statement (experiments.insert_assignments, which sets the tenant itself when given one, as
 * assignContext); a unit already assigned to the phase (a concurrent request) keeps its row.
 */
export const insertAssignments = (db: Queryable, tenantId: string | null, rows: AssignmentInsert[]) =>
  db<{ experimentId: string; unitId: string; assignedAt: Date }[]>`
    select experiment_id, unit_id, assigned_at from experiments.insert_assignments(${tenantId}::uuid, ${db.json(rows as never)}::jsonb)`

/**
 * A visitor became a lead: its assignments now belong to the lead. Where the lead already held an assignment to the
 * same phase, the earliest of the two wins (read time, findCandidates) and the pair is recorded as a conflict. One
 * statement for a batch of links; returns how many assignments were adopted.
 */
export const adoptVisitorAssignments = (tx: Tx, links: { anonymous_id: string; lead_id: string }[]) =>
  tx<{ adopted: number }[]>`
    with link as (
      select distinct on (l.anonymous_id) l.anonymous_id, l.lead_id
        from jsonb_to_recordset(${tx.json(links as never)}::jsonb) as l(anonymous_id text, lead_id uuid)
       order by l.anonymous_id
    ), adopted as (
      update experiments.assignments a set lead_id = link.lead_id
        from link where a.anonymous_id = link.anonymous_id and a.lead_id is null
      returning a.id, a.experiment_id, a.phase, a.lead_id, a.unit_id, a.variation_key, a.assigned_at
    ), conflicts as (
      insert into experiments.assignment_conflicts (tenant_id, experiment_id, phase, lead_id, merged_lead_id, kept_unit_id, kept_variation_key,
                                                    dropped_unit_id, dropped_variation_key, reason)
      select (select core.current_tenant_id()), n.experiment_id, n.phase, n.lead_id, null,
             case when (o.assigned_at, o.id) <= (n.assigned_at, n.id) then o.unit_id else n.unit_id end,
             case when (o.assigned_at, o.id) <= (n.assigned_at, n.id) then o.variation_key else n.variation_key end,
             case when (o.assigned_at, o.id) <= (n.assigned_at, n.id) then n.unit_id else o.unit_id end,
             case when (o.assigned_at, o.id) <= (n.assigned_at, n.id) then n.variation_key else o.variation_key end,
             'identify'
        from adopted n
        join lateral (
          select a.id, a.unit_id, a.variation_key, a.assigned_at from experiments.assignments a
           where a.lead_id = n.lead_id and a.experiment_id = n.experiment_id and a.phase = n.phase and a.id <> n.id
           order by a.assigned_at, a.id limit 1
        ) o on true
    )
    select count(*)::int as adopted from adopted`.then((r) => r[0]!.adopted)

/**
 * Leads merge: the merged lead's assignments move to the survivor. For each phase both held, the earliest wins
 * (read time) and the loser is recorded; one statement.
 */
export const adoptMergedLeadAssignments = (tx: Tx, survivorId: string, mergedId: string) =>
  tx`
    with s as (
      select distinct on (experiment_id, phase) id, experiment_id, phase, unit_id, variation_key, assigned_at
        from experiments.assignments where lead_id = ${survivorId} order by experiment_id, phase, assigned_at, id
    ), m as (
      select distinct on (experiment_id, phase) id, experiment_id, phase, unit_id, variation_key, assigned_at
        from experiments.assignments where lead_id = ${mergedId} order by experiment_id, phase, assigned_at, id
    ), conflicts as (
      insert into experiments.assignment_conflicts (tenant_id, experiment_id, phase, lead_id, merged_lead_id, kept_unit_id, kept_variation_key,
                                                    dropped_unit_id, dropped_variation_key, reason)
      select (select core.current_tenant_id()), s.experiment_id, s.phase, ${survivorId}, ${mergedId},
             case when (s.assigned_at, s.id) <= (m.assigned_at, m.id) then s.unit_id else m.unit_id end,
             case when (s.assigned_at, s.id) <= (m.assigned_at, m.id) then s.variation_key else m.variation_key end,
             case when (s.assigned_at, s.id) <= (m.assigned_at, m.id) then m.unit_id else s.unit_id end,
             case when (s.assigned_at, s.id) <= (m.assigned_at, m.id) then m.variation_key else s.variation_key end,
             'merge'
        from s join m using (experiment_id, phase)
    )
    update experiments.assignments set lead_id = ${survivorId} where lead_id = ${mergedId}`

export interface ConflictRow {
  experimentId: string; phase: number; leadId: string; mergedLeadId: string | null; keptUnitId: string; keptVariationKey: string
  droppedUnitId: string; droppedVariationKey: string; reason: string; recordedAt: Date
}
export const listConflicts = (tx: Tx, experimentId: string) =>
  tx<ConflictRow[]>`
    select experiment_id, phase, lead_id, merged_lead_id, kept_unit_id, kept_variation_key, dropped_unit_id, dropped_variation_key, reason, recorded_at
      from experiments.assignment_conflicts where experiment_id = ${experimentId} order by id`

/**
 * Exposures of leads to the variation they hold (their winning assignment in the phase in force), once per unit,
 * phase and variation: a repeated exposure adds nothing. Returns the new ones, for their analytics events.
 */
export const insertExposures = (tx: Tx, rows: { lead_id: string; experiment_key: string; variation_key: string; source: string; exposed_at: string }[]) =>
  tx<{ experimentId: string; experimentKey: string; phase: number; unitId: string; leadId: string; variationKey: string; exposedAt: Date }[]>`
    with r as (
      select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
        as r(lead_id uuid, experiment_key text, variation_key text, source text, exposed_at timestamptz)
    ), held as (
      select distinct on (e.id, r.lead_id) e.id as experiment_id, e.key as experiment_key, e.phase, a.unit_id, a.anonymous_id, r.lead_id,
             a.variation_key, r.variation_key as used_key, r.source, r.exposed_at
        from r
        join experiments.experiments e on e.key = r.experiment_key
        join experiments.assignments a on a.experiment_id = e.id and a.phase = e.phase and a.lead_id = r.lead_id
       order by e.id, r.lead_id, a.assigned_at, a.id
    ), added as (
      insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, anonymous_id, variation_key, exposed_at, source)
      select (select core.current_tenant_id()), experiment_id, phase, unit_id, lead_id, anonymous_id, variation_key, exposed_at, source
        from held where variation_key = used_key
      on conflict (tenant_id, experiment_id, phase, unit_id, variation_key) do nothing
      returning experiment_id, phase, unit_id, lead_id, variation_key, exposed_at
    )
    select a.experiment_id, h.experiment_key, a.phase, a.unit_id, a.lead_id, a.variation_key, a.exposed_at
      from added a join (select distinct experiment_id, experiment_key from held) h using (experiment_id)`

export type PhaseCount =
  | { kind: 'units'; variationKey: string; ord: null; n: number; total: null; totalSq: null }
  | { kind: 'exposed'; variationKey: string | null; ord: null; n: number; total: null; totalSq: null }
  | { kind: 'goal'; variationKey: string; ord: number; n: number; total: number; totalSq: number }

/**
 * Everything the results of a phase count, in one statement: units per variation (one per person: a lead holding
 * several assignments, after merges or as a visitor and a lead, counts once, in its earliest; a visitor that is no lead
 * is its own unit), units exposed per variation and people exposed to more than one (variation null), and per goal
 * (`goalTotals`, analytics' CTE body over the lead units) the units converted and the sums of their values.
 * Built for a million units: the leads' units come off assignments_person_idx in (lead, time) order (an index-only
 * scan with no sort), exposures off exposures_person_idx; visitors without a lead are counted apart (each row is one).
 */
export const countPhase = (tx: Tx, experimentId: string, phase: number, goalTotals: ((units: postgres.Fragment) => postgres.Fragment) | null) =>
  tx<PhaseCount[]>`
    with lu as materialized (
      select distinct on (a.lead_id) a.lead_id, a.assigned_at, a.variation_key
        from experiments.assignments a
       where a.experiment_id = ${experimentId} and a.phase = ${phase} and a.lead_id is not null
       order by a.lead_id, a.assigned_at, a.id
    ), units as (
      select variation_key, count(*)::int as n from lu group by 1
      union all
      select variation_key, count(*)::int from experiments.assignments
       where experiment_id = ${experimentId} and phase = ${phase} and lead_id is null group by 1
    ), xl as (
      select distinct on (x.lead_id, x.variation_key) x.lead_id, x.variation_key from experiments.exposures x
       where x.experiment_id = ${experimentId} and x.phase = ${phase} and x.lead_id is not null
       order by x.lead_id, x.variation_key
    ), xv as (
      select x.unit_id, x.variation_key from experiments.exposures x
       where x.experiment_id = ${experimentId} and x.phase = ${phase} and x.lead_id is null
    )
    select 'units' as kind, variation_key, null::int as ord, sum(n)::int as n, null::float8 as total, null::float8 as total_sq from units group by 2
    union all
    select 'exposed', variation_key, null, count(*)::int, null, null from (select variation_key from xl union all select variation_key from xv) e group by 2
    union all
    select 'exposed', null, null, count(*)::int, null, null from (
      select 1 from xl group by lead_id having count(*) > 1
      union all
      select 1 from xv group by unit_id having count(*) > 1
    ) m
    ${goalTotals ? tx`union all select 'goal', g.variation_key, g.ord, g.converted, g.total, g.total_sq from (${goalTotals(tx`select lead_id, assigned_at, variation_key from lu`)}) g` : tx``}`

/**
 * The same counts as countPhase, read from the maintained totals (migrations 0050, 0057): the folded totals, plus the
 * deltas not folded yet, plus the correction for the persons still queued (their rows as they should be now minus
 * their maintained rows, experiments.queued_result_corrections), in one snapshot, so the answer is exact whether or
 * not the drain and the fold ran. A handful of rows per variation, and a recompute per queued person.
 */
export const readPhaseTotals = (tx: Tx, experimentId: string, phase: number) =>
  tx<PhaseCount[]>`
    select case when metric = 'multi' then 'exposed' else metric end as kind,
           case when metric = 'multi' then null else variation_key end as variation_key,
           case when metric = 'goal' then ord end as ord,
           sum(n)::int as n,
           case when metric = 'goal' then sum(total)::float8 end as total,
           case when metric = 'goal' then sum(total_sq)::float8 end as total_sq
      from (
        select metric, variation_key, ord, n, total, total_sq from experiments.result_totals
         where tenant_id = core.current_tenant_id() and experiment_id = ${experimentId} and phase = ${phase}
        union all
        select metric, variation_key, ord, n, total, total_sq from experiments.result_deltas
         where tenant_id = core.current_tenant_id() and experiment_id = ${experimentId} and phase = ${phase}
        union all
        select metric, variation_key, ord, n, total, total_sq from experiments.queued_result_corrections(${experimentId}, ${phase})
      ) t
     group by metric, variation_key, ord
    having sum(n) <> 0`

/** Whether the maintained rows were built for the experiment's goals as they are now (a goal change needs a rebuild). */
export const resultsMaintainedFor = (tx: Tx, experimentId: string) =>
  tx<{ current: boolean }[]>`
    select results_goals is not null and results_goals = goals as current from experiments.experiments where id = ${experimentId}`
    .then((r) => r[0]?.current ?? false)

/**
 * Folds the tenant's deltas into its totals, in one statement (at most `limit` deltas, oldest first). One folder per
 * tenant at a time (a second returns -1 at once); writers never wait for it: they only append deltas.
 */
export async function foldResultDeltas(tx: Tx, limit: number): Promise<number> {
  const [lock] = await tx<{ locked: boolean }[]>`
    select pg_try_advisory_xact_lock(hashtext('experiments.result_totals'), hashtext(core.current_tenant_id()::text)) as locked`
  if (!lock!.locked) return -1
  const [r] = await tx<{ folded: number }[]>`
    with d as (
      delete from experiments.result_deltas
       where id in (select id from experiments.result_deltas where tenant_id = core.current_tenant_id() order by id limit ${limit})
      returning tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq
    ), s as (
      select tenant_id, experiment_id, phase, metric, variation_key, ord, sum(n) as n, sum(total) as total, sum(total_sq) as total_sq
        from d group by 1, 2, 3, 4, 5, 6
    ), up as (
      insert into experiments.result_totals as t (tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq)
      select * from s order by 1, 2, 3, 4, 5, 6
      on conflict (tenant_id, experiment_id, phase, metric, variation_key, ord) do update
         set n = t.n + excluded.n, total = t.total + excluded.total, total_sq = t.total_sq + excluded.total_sq
      returning 1
    )
    select (select count(*) from d)::int as folded, (select count(*) from up)::int as totals`
  return r!.folded
}

/**
 * Recomputes up to `limit` queued persons of the tenant (experiments.drain_result_queue: the queue rows taken, skip
 * locked, then 0050's locked recompute, whose changes append deltas). Returns how many queue rows were taken.
 */
export const drainResultQueue = (tx: Tx, limit: number) =>
  tx<{ n: number }[]>`select experiments.drain_result_queue(${limit}) as n`.then((r) => r[0]!.n ?? 0)

/** How many keys wait in the tenant's queue (of one experiment, if given). */
export const countQueuedResults = (tx: Tx, experimentId?: string) =>
  tx<{ n: number }[]>`
    select count(*)::int as n from experiments.result_queue
     where tenant_id = core.current_tenant_id() ${experimentId ? tx`and experiment_id = ${experimentId}` : tx``}`.then((r) => r[0]!.n)

/** Started experiments whose maintained rows are not for their goals as they are now (changed, or from before 0050). */
export const staleResultExperiments = (tx: Tx) =>
  tx<{ id: string }[]>`select id from experiments.experiments where results_goals is distinct from goals order by id`.then((r) => r.map((x) => x.id))

/** Every person of every phase of the experiment recomputed from scratch (experiments.rebuild_result_units). */
export const rebuildResultUnits = (tx: Tx, experimentId: string) =>
  tx`select experiments.rebuild_result_units(${experimentId}) as goals`

/** Cross-tenant: the tenants with queued persons, deltas to fold or an experiment to rebuild (ids only). */
export const resultsWorkTenants = (sql: Queryable, limit: number) =>
  sql<{ tenantId: string }[]>`select tenant_id from experiments.results_work_tenants(${limit})`.then((r) => r.map((x) => x.tenantId))

/** The maintenance task, at once (a goal change): one job per tenant waiting at a time. Task name: schemas.ts MAINTAIN_RESULTS_TASK. */
export const enqueueResultsMaintenance = (tx: Tx, tenantId: string) =>
  tx`select graphile_worker.add_job('experiments__maintain_results', json_build_object('tenantId', ${tenantId}::text), job_key := ${`experiments:results:${tenantId}`}, max_attempts := 5)`

/**
 * The maintenance task again in `seconds` (cross-tenant), after a run that found persons queued: while assignments
 * keep coming the queue is drained every few seconds instead of once a minute, so a read recomputes few. One such job
 * waits at a time (job key); the crontab line restarts the chain should it break.
 */
export const enqueueResultsFollowUp = (sql: Queryable, seconds: number) =>
  sql`select graphile_worker.add_job('experiments__maintain_results', '{}'::json, job_key := 'experiments:results:follow-up',
        run_at := now() + make_interval(secs => ${seconds}), max_attempts := 1)`

// ---------------------------------------------------------------------------------------------------------------
// Template sends naming an experiment: pending until Meta says delivered.

/**
 * A template send to a lead picked by its variation: pending with the message (its wamid comes later), for the lead's
 * winning assignment in the phase (whose unit id the exposure will carry). One statement; a message recorded twice
 * keeps its first row. Returns false when the lead holds no assignment of that phase.
 */
export const insertPendingExposure = (tx: Tx, p: { messageId: string; experimentId: string; phase: number; leadId: string; variationKey: string; templateName: string }) =>
  tx`
    insert into experiments.pending_exposures (tenant_id, message_id, experiment_id, phase, unit_id, lead_id, variation_key, template_name)
    select (select core.current_tenant_id()), ${p.messageId}, a.experiment_id, a.phase, a.unit_id, a.lead_id, ${p.variationKey}, ${p.templateName}
      from experiments.assignments a
     where a.experiment_id = ${p.experimentId} and a.phase = ${p.phase} and a.lead_id = ${p.leadId}
     order by a.assigned_at, a.id limit 1
    on conflict (tenant_id, message_id) where message_id is not null do nothing`.then((r) => r.count > 0)

/** insertPendingExposure for a batch of messages, in one statement (a broadcast's step). Returns how many were recorded. */
export const insertPendingExposures = (tx: Tx, rows: { message_id: string; experiment_id: string; phase: number; lead_id: string; variation_key: string; template_name: string }[]) =>
  tx`
    insert into experiments.pending_exposures (tenant_id, message_id, experiment_id, phase, unit_id, lead_id, variation_key, template_name)
    select (select core.current_tenant_id()), r.message_id, a.experiment_id, a.phase, a.unit_id, a.lead_id, r.variation_key, r.template_name
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as r(message_id uuid, experiment_id uuid, phase int, lead_id uuid, variation_key text, template_name text)
      cross join lateral (
        select a.experiment_id, a.phase, a.unit_id, a.lead_id from experiments.assignments a
         where a.experiment_id = r.experiment_id and a.phase = r.phase and a.lead_id = r.lead_id
         order by a.assigned_at, a.id limit 1
      ) a
    on conflict (tenant_id, message_id) where message_id is not null do nothing`.then((r) => r.count)

/**
 * A CTE (`experiment_pending_wamid`) for the statement that stores a message's wamid when Meta accepts it: the
 * message's pending exposure, if any, is keyed by that wamid from then on. `relation` has columns message_id, wamid.
 */
export const attachPendingExposureWamidFrom = (tx: Tx, relation: postgres.Fragment) => tx`
  experiment_pending_wamid as (
    update experiments.pending_exposures p set wamid = r.wamid
      from (${relation}) r
     where p.message_id = r.message_id and p.wamid is null
    returning p.message_id
  )`

/** A status Meta reported for an outbound message, as far as exposures care: delivered (or read/played), or failed. */
export interface TemplateOutcome { message_id: string | null; wamid: string; outcome: 'delivered' | 'failed'; at: string }

/**
 * Resolves pending template exposures from statuses, matched by message id (what the status's
 * biz_opaque_callback_data carries, so this works even before the wamid is committed) or by wamid. Delivered: the
 * pending row becomes `exposed` and the exposure is recorded once per unit, phase and variation (a repeat, a replay
 * or the other path racing adds nothing: the row is resolved once, under its row lock, and exposures are unique).
 * Failed: `failed`, no exposure; a later delivered still counts. One statement; returns the new exposures.
 */
export const resolvePendingExposures = (tx: Tx, outcomes: TemplateOutcome[]) =>
  tx<{ experimentId: string; experimentKey: string; phase: number; unitId: string; leadId: string | null; variationKey: string; exposedAt: Date }[]>`
    with o as (
      select * from jsonb_to_recordset(${tx.json(outcomes as never)}::jsonb) as o(message_id uuid, wamid text, outcome text, at timestamptz)
    ), hits as (
      -- Two index probes (by message id, by wamid) rather than one OR join, which would scan the table.
      select p.message_id, p.wamid as pending_wamid, p.state, o.outcome, o.at, o.wamid
        from o join experiments.pending_exposures p on p.message_id = o.message_id
      union all
      select p.message_id, p.wamid, p.state, o.outcome, o.at, o.wamid
        from o join experiments.pending_exposures p on p.wamid = o.wamid
    ), matched as (
      -- Per pending row (by its message, or its wamid for rows without one): delivered wins over failed, earliest first.
      select distinct on (coalesce(h.message_id::text, h.pending_wamid)) h.message_id as pending_message_id, h.pending_wamid, h.outcome, h.at, h.wamid
        from hits h
       where h.state = 'pending' or (h.state = 'failed' and h.outcome = 'delivered')
       order by coalesce(h.message_id::text, h.pending_wamid), h.outcome = 'delivered' desc, h.at
    ), resolved as (
      update experiments.pending_exposures p
         set state = case when m.outcome = 'delivered' then 'exposed' else 'failed' end, resolved_at = m.at, wamid = coalesce(p.wamid, m.wamid)
        from matched m
       -- By key, not by row version: a concurrent wamid attach (the accept path) must not make this update skip the row.
       where (case when m.pending_message_id is not null then p.message_id = m.pending_message_id else p.wamid = m.pending_wamid end)
         and (p.state = 'pending' or (p.state = 'failed' and m.outcome = 'delivered'))
      returning p.experiment_id, p.phase, p.unit_id, p.lead_id, p.variation_key, p.state, m.at
    ), added as (
      insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, anonymous_id, variation_key, exposed_at, source)
      select distinct on (r.experiment_id, r.phase, r.unit_id, r.variation_key)
             (select core.current_tenant_id()), r.experiment_id, r.phase, r.unit_id, r.lead_id, null::text, r.variation_key, r.at, 'template'
        from resolved r where r.state = 'exposed'
       order by r.experiment_id, r.phase, r.unit_id, r.variation_key, r.at
      on conflict (tenant_id, experiment_id, phase, unit_id, variation_key) do nothing
      returning experiment_id, phase, unit_id, lead_id, variation_key, exposed_at
    )
    select a.experiment_id, e.key as experiment_key, a.phase, a.unit_id, a.lead_id, a.variation_key, a.exposed_at
      from added a join experiments.experiments e on e.id = a.experiment_id`

export interface PendingExposureRow { messageId: string | null; wamid: string | null; variationKey: string; templateName: string | null; state: string; resolvedAt: Date | null }
export const listPendingExposures = (tx: Tx, experimentId: string) =>
  tx<PendingExposureRow[]>`
    select message_id, wamid, variation_key, template_name, state, resolved_at from experiments.pending_exposures
     where experiment_id = ${experimentId} order by created_at, message_id`

/** Template sends per variation of a phase by state (pending, exposed, failed). */
export const countTemplateSends = (tx: Tx, experimentId: string, phase: number) =>
  tx<{ variationKey: string; state: string; sends: number }[]>`
    select variation_key, state, count(*)::int as sends from experiments.pending_exposures
     where experiment_id = ${experimentId} and phase = ${phase} group by 1, 2`
