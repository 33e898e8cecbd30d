import { z } from 'zod'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../lib/pagination.js'
import { goalTotalsFrom } from '../analytics/service.js'
import { linkAnonymousIds, recordPlatformEvents } from '../analytics/platform-events.js'
import { leadTargeting } from '../marketing/leads/service.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { compileBucketing } from './hashing.js'
import { type ExperimentDefinitions, forgetExperimentsLocally } from './definitions-cache.js'
import * as q from './queries.js'
import {
  type AssignmentView, type Attributes, BUCKETING_FIELDS, type Condition, type CreateExperimentBody, type ExperimentView, type Goal, type NewPhaseBody,
  type PatchExperimentBody,
} from './schemas.js'
import { chanceToBeatControl, sampleRatioMismatch, twoProportionTest, welchTTest } from './statistics.js'
import { matches } from './targeting.js'

/** Who changes an experiment, for the audit log. */
export interface Actor { tenantId: string; actor: string; requestId: string | null }

/**
 * A change to the tenant's experiments, in its transaction; once committed, this process's definition caches forget
 * the tenant at once (other processes when migration 0051's NOTIFY reaches them).
 */
async function changing<T>(sql: Sql, who: Actor, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const result = await withTenant(sql, who.tenantId, fn)
  forgetExperimentsLocally(sql, who.tenantId)
  return result
}

const audit = (tx: Tx, who: Actor, action: string, e: ExperimentView, details: unknown = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType: 'experiment', targetId: e.id, details: { key: e.key, ...(details as object) }, requestId: who.requestId ?? undefined })

export const createExperiment = (sql: Sql, who: Actor, body: CreateExperimentBody): Promise<ExperimentView> =>
  changing(sql, who, async (tx) => {
    const e = await q.insertExperiment(tx, who.tenantId, { ...body, seed: body.seed ?? body.key })
    await audit(tx, who, 'experiment.created', e)
    return e
  })

const ExperimentCursor = keysetCursor(z.uuid())
export const listExperiments = (sql: Sql, tenantId: string, query: { status?: string; limit: number; cursor?: string }) =>
  withTenant(sql, tenantId, async (tx) => {
    const after = query.cursor ? decodeCursor(query.cursor, ExperimentCursor) : null
    const rows = await q.listExperiments(tx, query.status, query.limit, after)
    const data = rows.slice(0, query.limit).map(({ cursorAt: _c, ...e }) => e)
    const last = rows[query.limit - 1]
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null }
  })

export const getExperiment = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const e = await q.findExperiment(tx, id)
    return e ? { ...e, phases: await q.listPhases(tx, id) } : null
  })

const notFound = (id: string) => new AppError('NOT_FOUND', `experiment ${id} not found`)
const conflict = (message: string) => new AppError('CONFLICT', message)

/** Locks the experiment for a change: concurrent starts, stops and phase changes run one after another. */
async function lockExperiment(tx: Tx, id: string): Promise<ExperimentView> {
  const e = await q.findExperiment(tx, id, true)
  if (!e) throw notFound(id)
  return e
}

/**
 * Changes the definition. Once started, what decides who gets which variation (variations, weights, coverage, unit,
 * seed, hash version, namespace) is frozen: a 409 that says to start a new phase. Name, hypothesis, targeting and goals
 * may change at any time (a unit already assigned keeps its variation whatever the targeting says now).
 */
export const patchExperiment = (sql: Sql, who: Actor, id: string, body: PatchExperimentBody): Promise<ExperimentView> =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    const frozen = BUCKETING_FIELDS.filter((f) => body[f] !== undefined)
    if (e.status !== 'draft' && frozen.length > 0) {
      throw conflict(`experiment ${e.key} is ${e.status}: ${frozen.join(', ')} cannot change in place; POST /v1/experiments/${id}/phases starts a new phase with new variations`)
    }
    const updated = await q.updateExperiment(tx, id, body)
    // New goals: the maintained results are rebuilt for them by the task (results count from scratch meanwhile).
    if (body.goals !== undefined && e.status !== 'draft') await q.enqueueResultsMaintenance(tx, who.tenantId)
    await audit(tx, who, 'experiment.updated', updated, { fields: Object.keys(body) })
    return updated
  })

export const deleteExperiment = (sql: Sql, who: Actor, id: string): Promise<void> =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    if (e.status === 'running' || e.status === 'paused') throw conflict(`experiment ${e.key} is ${e.status}: stop it before deleting it`)
    await q.deleteExperiment(tx, id)
    await audit(tx, who, 'experiment.deleted', e)
  })

/** draft → running (phase 1 opens), paused → running (the same phase goes on); running again is harmless. */
export const startExperiment = (sql: Sql, who: Actor, id: string) =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    if (e.status === 'running') return e
    if (e.status === 'stopped') throw conflict(`experiment ${e.key} is stopped; a stopped experiment does not run again (create a new one)`)
    if (e.status === 'draft') await q.openPhase(tx, who.tenantId, id, 1, e.variations, e.coverage)
    const updated = await q.updateExperiment(tx, id, { status: 'running', phase: e.status === 'draft' ? 1 : e.phase, startedAt: 'now' })
    await audit(tx, who, 'experiment.started', updated, { phase: updated.phase })
    return updated
  })

/** running → paused: no new assignments, stored ones still served. */
export const pauseExperiment = (sql: Sql, who: Actor, id: string) =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    if (e.status === 'paused') return e
    if (e.status !== 'running') throw conflict(`experiment ${e.key} is ${e.status}; only a running experiment can be paused`)
    const updated = await q.updateExperiment(tx, id, { status: 'paused' })
    await audit(tx, who, 'experiment.paused', updated)
    return updated
  })

/** running or paused → stopped: the phase ends; nothing new is assigned, stored assignments are still served. */
export const stopExperiment = (sql: Sql, who: Actor, id: string) =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    if (e.status === 'stopped') return e
    if (e.status === 'draft') throw conflict(`experiment ${e.key} never started; delete it instead`)
    await q.endPhase(tx, id)
    const updated = await q.updateExperiment(tx, id, { status: 'stopped', stoppedAt: 'now' })
    await audit(tx, who, 'experiment.stopped', updated, { phase: updated.phase })
    return updated
  })

/** New variations or weights for a started experiment: the phase in force ends, the next one starts with them, and every unit is assigned afresh. */
export const startNewPhase = (sql: Sql, who: Actor, id: string, body: NewPhaseBody) =>
  changing(sql, who, async (tx) => {
    const e = await lockExperiment(tx, id)
    if (e.status === 'draft') throw conflict(`experiment ${e.key} has not started; change its variations with PATCH`)
    if (e.status === 'stopped') throw conflict(`experiment ${e.key} is stopped`)
    const coverage = body.coverage ?? e.coverage
    await q.openPhase(tx, who.tenantId, id, e.phase + 1, body.variations, coverage)
    const updated = await q.updateExperiment(tx, id, { variations: body.variations, coverage, phase: e.phase + 1 })
    await audit(tx, who, 'experiment.phase_started', updated, { phase: updated.phase })
    return updated
  })

// ---------------------------------------------------------------------------------------------------------------
// Assignment.

export interface AssignInput {
  leadId?: string
  anonymousId?: string
  attributes: Attributes
  /** Who asked: 'api', 'site' (the public variant endpoint), 'flow', 'template'. */
  source: string
  /** Only these experiments (a bot flow's experiment nodes); all started ones when absent. */
  experimentKeys?: readonly string[]
}

/**
 * Every started experiment the unit takes part in, with its variation: stored assignments first (they win whatever
 * changed since: weights, targeting, status), then, for running experiments the unit qualifies for and is bucketed
 * into, new assignments, recorded in one statement. A lead id that is not this tenant's is a 404; a merged lead
 * answers as its survivor. With a lead id and an anonymous id, the visitor's assignments become the lead's first.
 * Inside the caller's transaction (a bot flow's, a template send's).
 */
export async function assignInTx(tx: Tx, input: AssignInput): Promise<AssignmentView[]> {
  // A caller that knows both says the visitor is this lead (an identify call): analytics links them, the first link of a
  // visitor winning (a shared device does not hand one person's visits to another).
  if (input.leadId !== undefined && input.anonymousId !== undefined) {
    const lead = await leadTargeting(tx, input.leadId)
    if (!lead) throw new AppError('NOT_FOUND', `lead ${input.leadId} not found`)
    await linkAnonymousIds(tx, [{ anonymousId: input.anonymousId, leadId: lead.id, via: 'api' }])
  }
  return assignWith(tx, null, input, (links) => q.adoptVisitorAssignments(tx, links))
}

/**
 * The same for a caller without a transaction (the assign route, the public variant endpoint). With the tenant's
 * started experiments held in memory (`definitions`), one call (experiments.unit_assignments, which sets the tenant
 * itself) reads what is stored for the unit, the variations are decided here, and one more call stores what is new,
 * each shared with the requests that arrive together (definitions.batches) and answered once committed;
 * without them, experiments.assign_context reads the experiments too. Only the rare requests that must write first (an
 * identify call naming both ids) or adopt a visitor's assignments take a transaction.
 */
export const assign = (sql: Sql, tenantId: string, input: AssignInput, definitions?: ExperimentDefinitions): Promise<AssignmentView[]> => {
  if (input.leadId !== undefined && input.anonymousId !== undefined) return withTenant(sql, tenantId, (tx) => assignInTx(tx, input))
  const adopt = (links: { anonymous_id: string; lead_id: string }[]) => withTenant(sql, tenantId, (tx) => q.adoptVisitorAssignments(tx, links))
  if (!definitions?.enabled) return assignWith(sql, tenantId, input, adopt)
  return assignWith(sql, tenantId, input, adopt, async () => {
    const [experiments, unit] = await Promise.all([definitions.forTenant(tenantId), definitions.batches.readUnit(tenantId, input.leadId ?? null, input.anonymousId ?? null)])
    if (!unit.found) return unit
    const { stored, ...rest } = unit
    const winners = new Map(stored.map((w) => [`${w.experimentId}:${w.phase}`, w]))
    const candidates = experiments.map((e) => {
      const w = winners.get(`${e.id}:${e.phase}`)
      return { ...e, storedUnitId: w?.unitId ?? null, storedVariationKey: w?.variationKey ?? null, storedVariationIndex: w?.variationIndex ?? null, storedAssignedAt: w?.assignedAt ?? null }
    })
    return { ...rest, candidates }
  }, (rows) => definitions.batches.store(tenantId, rows))
}

type Candidate = q.Candidate & { bucket?: (unitId: string) => number }

async function assignWith(
  db: Sql | Tx, tenantId: string | null, input: AssignInput, adopt: (links: { anonymous_id: string; lead_id: string }[]) => Promise<number>,
  readContext: () => Promise<q.AssignContext> = () => q.assignContext(db, tenantId, input.leadId ?? null, input.anonymousId ?? null),
  store: (rows: q.AssignmentInsert[]) => Promise<Map<string, Date>> = async (rows) => new Map((await q.insertAssignments(db, tenantId, rows)).map((r) => [r.experimentId, r.assignedAt])),
): Promise<AssignmentView[]> {
  const ctx = await readContext()
  if (!ctx.found) throw new AppError('NOT_FOUND', `lead ${input.leadId} not found`)
  // Visitors' assignments become the person's (the context already counted them as such, so the answer is the same).
  if (ctx.person && ctx.adopt.length > 0) await adopt(ctx.adopt.map((a) => ({ anonymous_id: a, lead_id: ctx.person! })))
  const { out, fresh } = decideAssignments(ctx, input)
  if (fresh.length === 0) return out
  const inserted = await store(fresh)
  const byId = new Map(ctx.candidates.map((c) => [c.id, c]))
  for (const f of fresh) {
    // Not inserted: a concurrent request assigned this unit a moment ago; within a phase the hash gives it the same variation.
    out.push(view(byId.get(f.experiment_id)!, f.variation_key, f.variation_index, inserted.has(f.experiment_id), inserted.get(f.experiment_id) ?? new Date()))
  }
  return out.sort((a, b) => (a.experimentKey < b.experimentKey ? -1 : 1))
}

/**
 * What one unit gets, from its context: its stored winners as they are, and, for running experiments it qualifies for
 * (targeting, coverage, namespace) and has no assignment in, the new assignments to store. Pure; every path of
 * assignment decides through here, so stickiness and identity are the same everywhere.
 */
function decideAssignments(ctx: Extract<q.AssignContext, { found: true }>, input: AssignInput): { out: AssignmentView[]; fresh: q.AssignmentInsert[] } {
  const leadId = ctx.lead?.id ?? null
  // A visitor known to be a lead (a form, a WhatsApp click) answers with the lead's assignments; it is not bucketed into
  // lead experiments by a public page, though. A lead's visitor experiments use the visitor's id only if it is the lead's.
  const anonymousId = input.leadId === undefined ? input.anonymousId! : input.anonymousId !== undefined && ctx.visitors.includes(input.anonymousId) ? input.anonymousId : null
  const attributes = ctx.lead ? { status: ctx.lead.status, source: ctx.lead.source, tags: ctx.lead.tags, ...input.attributes } : input.attributes

  const out: AssignmentView[] = []
  const fresh: q.AssignmentInsert[] = []
  for (const c of ctx.candidates as Candidate[]) {
    if (input.experimentKeys && !input.experimentKeys.includes(c.key)) continue
    if (c.storedVariationKey !== null) {
      out.push(view(c, c.storedVariationKey, c.storedVariationIndex!, false, new Date(c.storedAssignedAt!)))
      continue
    }
    if (c.status !== 'running') continue
    const unitId = c.unit === 'lead' ? leadId : anonymousId
    if (!unitId || !matches(c.targeting as Condition | null, attributes)) continue
    const bucket = c.bucket ?? compileBucketing({
      seed: c.seed, hashVersion: c.hashVersion, coverage: c.coverage, weights: c.variations.map((v) => v.weight),
      namespace: c.namespace && [c.namespace.id, c.namespace.start, c.namespace.end],
    })
    const index = bucket(unitId)
    if (index < 0) continue
    fresh.push({ experiment_id: c.id, phase: c.phase, unit_id: unitId, lead_id: ctx.person, anonymous_id: anonymousId, variation_key: c.variations[index]!.key, variation_index: index, source: input.source })
  }
  return { out, fresh }
}

const view = (c: q.Candidate, variationKey: string, variationIndex: number, isNew: boolean, assignedAt: Date): AssignmentView => {
  const value = c.variations[variationIndex]?.value
  return { experimentId: c.id, experimentKey: c.key, phase: c.phase, variationKey, variationIndex, ...(value !== undefined ? { value } : {}), isNew, assignedAt }
}

/**
 * Visitors became leads (a form submission carrying the visitor's anonymousId, a click-to-WhatsApp link): their
 * assignments now belong to the leads, set-based, inside the caller's transaction. Where a lead already held an
 * assignment to the same phase the earliest wins and the conflict is recorded. Returns how many moved.
 */
export const adoptVisitorAssignments = (tx: Tx, links: readonly { anonymousId: string; leadId: string }[]) =>
  links.length === 0 ? Promise.resolve(0) : q.adoptVisitorAssignments(tx, links.map((l) => ({ anonymous_id: l.anonymousId, lead_id: l.leadId })))

export const listAssignmentConflicts = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findExperiment(tx, id))) return null
    return q.listConflicts(tx, id)
  })

/**
 * A bot flow's experiment nodes: the lead's variation in each named experiment, assigning it first if need be (the
 * first assignment wins), inside the conversation's transaction. Key → variation key, or null when not in it.
 */
export async function variationsForLead(tx: Tx, leadId: string, experimentKeys: readonly string[]): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = Object.fromEntries(experimentKeys.map((k) => [k, null]))
  if (experimentKeys.length === 0) return out
  for (const a of await assignInTx(tx, { leadId, attributes: {}, source: 'flow', experimentKeys })) out[a.experimentKey] = a.variationKey
  return out
}

export interface Exposure { leadId: string; experimentKey: string; variationKey: string; source: 'flow' | 'template'; at: Date }

/**
 * The variation was used (a flow's experiment node ran, a template was delivered): recorded once per unit, phase and
 * variation in experiments.exposures, with an analytics event experiment.exposure {experimentKey, variationKey} for
 * each new one (deduplicated by the same key), set-based, in the caller's transaction. An exposure to a variation the
 * lead does not hold is not one. Returns how many were new.
 */
export async function recordExposures(tx: Tx, rows: readonly Exposure[]): Promise<number> {
  if (rows.length === 0) return 0
  const added = await q.insertExposures(tx, rows.map((r) => ({ lead_id: r.leadId, experiment_key: r.experimentKey, variation_key: r.variationKey, source: r.source, exposed_at: r.at.toISOString() })))
  await recordExposureEvents(tx, added)
  return added.length
}

type NewExposure = { experimentId: string; experimentKey: string; phase: number; unitId: string; leadId: string | null; variationKey: string; exposedAt: Date }
const recordExposureEvents = (tx: Tx, added: readonly NewExposure[]) =>
  added.length === 0 ? Promise.resolve(0) : recordPlatformEvents(tx, added.map((a) => ({
    name: 'experiment.exposure', leadId: a.leadId, occurredAt: a.exposedAt, source: 'experiments',
    properties: { experimentKey: a.experimentKey, variationKey: a.variationKey, phase: a.phase },
    dedupeKey: `experiment:exposure:${a.experimentId}:${a.phase}:${a.unitId}:${a.variationKey}`,
  })))

// ---------------------------------------------------------------------------------------------------------------
// Template sends naming an experiment (domains/whatsapp/outbound calls these in its own transactions).

export interface TemplateVariation { experimentId: string; experimentKey: string; phase: number; variationKey: string; value: unknown }

/**
 * The lead's variation in the experiment a template send names, assigned now if need be (the first assignment wins,
 * as everywhere), so the variation can pick the template or its parameters. Null when the lead is not in it (not
 * targeted, outside coverage, or the experiment is paused or stopped and the lead was never assigned): the send's own
 * template goes out, with no exposure. An unknown key is a 404; a draft experiment a 422 (start it first).
 */
export async function templateVariationFor(tx: Tx, leadId: string, experimentKey: string): Promise<TemplateVariation | null> {
  const [a] = await assignInTx(tx, { leadId, attributes: {}, source: 'template', experimentKeys: [experimentKey] })
  if (a) return { experimentId: a.experimentId, experimentKey: a.experimentKey, phase: a.phase, variationKey: a.variationKey, value: a.value }
  const e = await q.findExperimentByKey(tx, experimentKey)
  if (!e) throw new AppError('NOT_FOUND', `experiment ${experimentKey} not found`)
  if (e.status === 'draft') throw new AppError('UNPROCESSABLE', `experiment ${experimentKey} is a draft; start it (POST /v1/experiments/${e.id}/start) before sending with it`)
  return null
}

/** The template message queued for a variation: pending until Meta reports it delivered. False when the lead holds no assignment. */
export const recordPendingTemplateExposure = (tx: Tx, p: { messageId: string; leadId: string; variation: TemplateVariation; templateName: string }) =>
  q.insertPendingExposure(tx, { messageId: p.messageId, experimentId: p.variation.experimentId, phase: p.variation.phase, leadId: p.leadId, variationKey: p.variation.variationKey, templateName: p.templateName })

/** Set-based recordPendingTemplateExposure, for a batch of template messages (a broadcast's step). Returns how many were recorded. */
export const recordPendingTemplateExposures = (tx: Tx, rows: readonly { messageId: string; leadId: string; variation: TemplateVariation; templateName: string }[]) =>
  rows.length === 0 ? Promise.resolve(0) : q.insertPendingExposures(tx, rows.map((p) => ({
    message_id: p.messageId, experiment_id: p.variation.experimentId, phase: p.variation.phase, lead_id: p.leadId, variation_key: p.variation.variationKey, template_name: p.templateName,
  })))

/** The experiment a template send names, by key or id (the tenant's own: RLS), with the variations of its phase in force. */
export const findTemplateExperiment = (tx: Tx, by: { key: string } | { id: string }): Promise<ExperimentView | null> =>
  'key' in by ? q.findExperimentByKey(tx, by.key) : q.findExperiment(tx, by.id)

/** A lead's variation for a template send, and the person holding it (the lead, or its survivor if it was merged since). */
export interface LeadTemplateVariation extends TemplateVariation { personId: string }

/**
 * Many leads' variations in one experiment, for a broadcast's batch of recipients, in at most three statements whatever
 * the batch's size: what is stored for the leads (experiments.unit_assignments, one call for all), the adoption of
 * their visitors' assignments when there is any, and one insert of the new ones. Decided exactly as one lead's
 * (decideAssignments): the first assignment wins; new ones only while running, by targeting, coverage and namespace;
 * a paused or stopped experiment serves only what is stored. Leads not in the experiment are absent from the map.
 * Inside the caller's transaction.
 */
export async function templateVariationsForLeads(tx: Tx, e: ExperimentView, leadIds: readonly string[]): Promise<Map<string, LeadTemplateVariation>> {
  const result = new Map<string, LeadTemplateVariation>()
  if (leadIds.length === 0 || e.status === 'draft' || e.unit !== 'lead') return result
  const bucket = compileBucketing({
    seed: e.seed, hashVersion: e.hashVersion, coverage: e.coverage, weights: e.variations.map((v) => v.weight),
    namespace: e.namespace && [e.namespace.id, e.namespace.start, e.namespace.end],
  })
  const started: q.StartedExperiment = {
    id: e.id, key: e.key, status: e.status, unit: e.unit, seed: e.seed, hashVersion: e.hashVersion, targeting: e.targeting,
    namespace: e.namespace, phase: e.phase, variations: e.variations, coverage: e.coverage,
  }
  const units = await q.unitAssignmentsMany(tx, null, leadIds.map((leadId) => ({ leadId, anonymousId: null })))
  const adopt = units.flatMap((u) => (u.found && u.person ? u.adopt.map((a) => ({ anonymous_id: a, lead_id: u.person! })) : []))
  if (adopt.length > 0) await q.adoptVisitorAssignments(tx, adopt)
  const decided = units.map((u, i) => {
    if (!u.found || !u.person) return null
    const { stored, ...rest } = u
    const w = stored.find((x) => x.experimentId === e.id && x.phase === e.phase)
    const candidate: Candidate = {
      ...started, bucket, storedUnitId: w?.unitId ?? null, storedVariationKey: w?.variationKey ?? null,
      storedVariationIndex: w?.variationIndex ?? null, storedAssignedAt: w?.assignedAt ?? null,
    }
    const leadId = leadIds[i]!
    return { leadId, personId: u.person, ...decideAssignments({ ...rest, candidates: [candidate] }, { leadId, attributes: {}, source: 'broadcast', experimentKeys: [e.key] }) }
  })
  const fresh = decided.flatMap((d) => d?.fresh ?? [])
  // A unit another send assigned a moment ago keeps its row; within a phase the hash gives it the same variation.
  if (fresh.length > 0) await q.insertAssignments(tx, null, fresh)
  for (const d of decided) {
    if (!d) continue
    const variationKey = d.out[0]?.variationKey ?? d.fresh[0]?.variation_key
    if (variationKey === undefined) continue
    const value = e.variations.find((v) => v.key === variationKey)?.value
    result.set(d.leadId, { experimentId: e.id, experimentKey: e.key, phase: e.phase, variationKey, value, personId: d.personId })
  }
  return result
}

/** A CTE for the statement storing a message's wamid (Meta accepted it): its pending exposure is keyed by the wamid too. */
export const attachPendingExposureWamidFrom = q.attachPendingExposureWamidFrom

export type TemplateOutcome = q.TemplateOutcome

/**
 * Meta's statuses of outbound messages (delivered, read or played: delivered; failed): pending template exposures
 * they name become exposures (with an experiment.exposure event each) or failures, once, whatever the order, the
 * repeats, or which of the two paths (the status webhook, or the sender storing the wamid after statuses came) gets
 * there first. Set-based: one statement, plus the events when there are new exposures. Returns how many were new.
 */
export async function resolveTemplateExposures(tx: Tx, outcomes: readonly TemplateOutcome[]): Promise<number> {
  if (outcomes.length === 0) return 0
  const added = await q.resolvePendingExposures(tx, [...outcomes])
  await recordExposureEvents(tx, added)
  return added.length
}

/**
 * What the results count of a phase, counted from assignments, exposures and the goals' events as they are now: the
 * reference the maintained totals (migration 0050, readPhaseTotals) must equal, and the answer while an experiment's
 * maintained rows wait for a rebuild (its goals changed).
 */
export const countPhaseFromScratch = (tx: Tx, experimentId: string, phase: number, goals: readonly Goal[], since: Date) =>
  q.countPhase(tx, experimentId, phase, goals.length === 0 ? null
    : (units) => goalTotalsFrom(tx, units, goals.map((g, ord) => ({ ord, event: g.event, windowHours: g.windowHours, property: g.aggregate === 'sum' ? g.property ?? null : null })), since))

/** The maintained counts of a phase (folded totals, pending deltas, and the correction for persons still queued). */
export const readPhaseTotals = q.readPhaseTotals

export interface MaintainResultsOptions { tenantIds?: readonly string[]; drainLimit?: number; foldLimit?: number; budgetMs?: number }

// Persons recomputed per drain transaction: each takes an advisory lock until commit (the lock table holds
// max_locks_per_transaction × connections, 6,400 by default, for every session at once).
const DRAIN_LIMIT = 1000

/**
 * The results' upkeep (experiments__maintain_results): per tenant with work, the persons its assignments, exposures
 * and goal events queued recomputed (migration 0057, in transactions of `drainLimit` queue rows, while the queue is not
 * empty and within the budget), its deltas folded into its totals (repeated while a fold fills its limit), then every
 * experiment whose maintained rows are not for its current goals rebuilt, each in its own transaction. Cross-tenant
 * only in finding the tenants; the work runs under each. Safe to repeat and to run twice at once (drains skip each
 * other's queue rows and lock each person, the fold is one per tenant, a rebuild is idempotent).
 */
export async function maintainResults(sql: Sql, options: MaintainResultsOptions = {}): Promise<{ tenants: number; drained: number; folded: number; rebuilt: number; incomplete: boolean }> {
  const started = Date.now()
  const budgetMs = options.budgetMs ?? 50_000
  const drainLimit = options.drainLimit ?? DRAIN_LIMIT
  const foldLimit = options.foldLimit ?? 50_000
  const tenantIds = options.tenantIds ?? (await q.resultsWorkTenants(sql, 1000))
  let drained = 0
  let folded = 0
  let rebuilt = 0
  for (const tenantId of tenantIds) {
    for (;;) {
      const n = await withTenant(sql, tenantId, (tx) => q.drainResultQueue(tx, drainLimit))
      drained += n
      if (n < drainLimit || Date.now() - started > budgetMs) break
    }
    for (;;) {
      const n = await withTenant(sql, tenantId, (tx) => q.foldResultDeltas(tx, foldLimit))
      if (n > 0) folded += n
      if (n < foldLimit || Date.now() - started > budgetMs) break
    }
    for (const id of await withTenant(sql, tenantId, (tx) => q.staleResultExperiments(tx))) {
      if (Date.now() - started > budgetMs) return { tenants: tenantIds.length, drained, folded, rebuilt, incomplete: true }
      await withTenant(sql, tenantId, (tx) => q.rebuildResultUnits(tx, id))
      rebuilt++
    }
  }
  return { tenants: tenantIds.length, drained, folded, rebuilt, incomplete: Date.now() - started > budgetMs }
}

/** After a maintenance run that drained persons: the next run in a few seconds rather than at the next minute. */
export const scheduleResultsFollowUp = (sql: Sql) => q.enqueueResultsFollowUp(sql, 2)

/**
 * Results of one phase (the one in force by default): per variation, units assigned (one per person, in its winning
 * assignment), units exposed, and for each goal against the first variation (control): a conversion goal's conversions
 * within its window, rate, relative uplift with its 95% interval, p-value (two-proportion test) and chance to beat
 * control; a mean goal's (events counted or a property summed per unit) mean, standard deviation, difference and
 * relative uplift with their 95% intervals and p-value (Welch's t-test). Then the sample-ratio check of units against the
 * weights, and how many people were exposed to more than one variation. From the per-variation totals that
 * assignments, exposures and goal events maintain (a few rows), or, while those wait for a rebuild after a goal change,
 * counted from scratch; null for no such experiment or phase.
 */
export const experimentResults = (sql: Sql, tenantId: string, id: string, phase?: number, options: { fromScratch?: boolean } = {}) =>
  withTenant(sql, tenantId, async (tx) => {
    const e = await q.findExperiment(tx, id)
    if (!e) return null
    const p = (await q.listPhases(tx, id)).find((x) => x.phase === (phase ?? e.phase))
    if (!p) return null
    const goals = e.goals as Goal[]
    // fromScratch: the reference the bench and tests compare the maintained totals with.
    const counts = !options.fromScratch && (await q.resultsMaintainedFor(tx, id)) ? await q.readPhaseTotals(tx, id, p.phase) : await countPhaseFromScratch(tx, id, p.phase, goals, p.startedAt)
    const unitsOf = (key: string) => counts.find((c) => c.kind === 'units' && c.variationKey === key)?.n ?? 0
    const goalOf = (key: string, ord: number) => counts.find((c) => c.kind === 'goal' && c.variationKey === key && c.ord === ord)
    const convOf = (key: string, ord: number) => goalOf(key, ord)?.n ?? 0
    // Over every unit of the variation (those without an event add 0): mean Σv/n, sample variance (Σv² − (Σv)²/n)/(n − 1).
    const meanOf = (key: string, ord: number) => {
      const n = unitsOf(key)
      const g = goalOf(key, ord)
      const total = g?.total ?? 0
      const totalSq = g?.totalSq ?? 0
      const mean = n > 0 ? total / n : 0
      return { units: n, mean, variance: n > 1 ? Math.max(0, (totalSq - total * mean) / (n - 1)) : 0 }
    }
    const exposedOf = (key: string | null) => counts.find((c) => c.kind === 'exposed' && c.variationKey === key)?.n ?? 0
    const control = p.variations[0]!
    const variations = p.variations.map((v, i) => ({
      key: v.key,
      weight: v.weight,
      units: unitsOf(v.key),
      exposed: exposedOf(v.key),
      goals: goals.map((g, ord) => {
        if (g.aggregate === 'count' || g.aggregate === 'sum') {
          const own = meanOf(v.key, ord)
          const test = welchTTest(meanOf(control.key, ord), own)
          return {
            event: g.event, windowHours: g.windowHours, aggregate: g.aggregate, ...(g.property ? { property: g.property } : {}),
            units: own.units, mean: own.mean, stdDev: Math.sqrt(own.variance),
            ...(i === 0 ? {} : {
              difference: test.difference, differenceCi95: test.differenceCi95, relativeUplift: test.relativeUplift, ci95: test.ci95,
              t: test.t, df: test.df, pValue: test.pValue,
            }),
          }
        }
        const own = { units: unitsOf(v.key), conversions: convOf(v.key, ord) }
        const base = { units: unitsOf(control.key), conversions: convOf(control.key, ord) }
        const test = twoProportionTest(base, own)
        return {
          event: g.event, windowHours: g.windowHours, ...(g.aggregate ? { aggregate: g.aggregate } : {}), conversions: own.conversions, rate: test.rate,
          ...(i === 0 ? {} : { relativeUplift: test.relativeUplift, ci95: test.ci95, pValue: test.pValue, chanceToBeatControl: chanceToBeatControl(base, own) }),
        }
      }),
    }))
    const srm = sampleRatioMismatch(variations.map((v) => v.units), p.variations.map((v) => v.weight))
    return {
      experimentId: id, key: e.key, phase: p.phase, startedAt: p.startedAt, endedAt: p.endedAt, variations,
      srm: { chiSquare: srm.chiSquare, pValue: srm.pValue, flagged: srm.flagged },
      multipleExposures: exposedOf(null),
    }
  })
