import jsonPatch from 'fast-json-patch'
import { z } from 'zod'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../../lib/pagination.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { computeEstimates, MissingBenchmark } from './estimates.js'
import * as q from './queries.js'
import {
  type AllocationView, type CreatePlanBody, CompletePlan, EXPORT_SCHEMA_VERSION, type ExportFile, type PatchPlanBody, type PlanDocument,
  type PlanView, type SnapshotView, type TemplateBody, TemplateBody as TemplateBodySchema, type TemplateView,
} from './schemas.js'
import { BUILTIN_PREFIX, BUILTIN_TEMPLATES, builtinTemplate } from './templates.js'

/** Who changes a plan, for the audit log and created_by. */
export interface Actor { tenantId: string; actor: string; requestId: string | null }

const audit = (tx: Tx, who: Actor, action: string, planId: string, details: Record<string, unknown> = {}) =>
  insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action, targetType: 'media_plan', targetId: planId, details, requestId: who.requestId ?? undefined })

const notFound = (id: string) => new AppError('NOT_FOUND', `media plan ${id} not found`)

/** A zod failure of a document assembled here (template + body, plan + patch) in the shape route validation answers. */
function invalid(error: z.ZodError, where = 'body'): AppError {
  const details = error.issues.map((i) => ({ in: where, path: i.path.join('.'), message: i.message }))
  return new AppError('BAD_REQUEST', `invalid ${details.map((d) => (d.path ? `${where}.${d.path}` : where)).join(', ')}`, { details })
}

// ---------------------------------------------------------------------------------------------------------------
// Views and documents.

const toAllocationRows = (allocations: PlanDocument['allocations']): AllocationView[] =>
  allocations.map((a) => ({ platform: a.platform, percent: a.percent ?? null, amount: a.amount ?? null, cpl: a.cpl ?? null, ctr: a.ctr ?? null, cpc: a.cpc ?? null }))

/** Trailing zeros of a stored numeric dropped ("25.0000" → "25"), money kept with its two decimals. */
const trim = (v: string | null) => (v === null ? null : v.includes('.') ? v.replace(/\.?0+$/, '') : v)

function toView(row: q.PlanRow, allocations: readonly AllocationView[]): PlanView {
  const allocs = allocations.map((a) => ({ platform: a.platform, percent: trim(a.percent), amount: a.amount, cpl: trim(a.cpl), ctr: trim(a.ctr), cpc: trim(a.cpc) }))
  const view = { ...row, leadToSalePct: trim(row.leadToSalePct)!, allocations: allocs } as Omit<PlanView, 'estimates'>
  return { ...view, goal: row.goal as PlanView['goal'], estimates: computeEstimates(view) }
}

/** The plan as a document (snapshot, export): its fields, allocations with only the keys they have, and fullState. */
export function documentOf(p: Omit<PlanView, 'estimates'>): PlanDocument {
  return {
    name: p.name, campaignId: p.campaignId, budget: p.budget, currency: p.currency, market: p.market, goal: p.goal, niche: p.niche,
    leadToSalePct: p.leadToSalePct, revenuePerSale: p.revenuePerSale, manualSplit: p.manualSplit,
    allocations: p.allocations.map((a) => Object.fromEntries(Object.entries(a).filter(([, v]) => v !== null)) as PlanDocument['allocations'][number]),
    fullState: p.fullState,
  }
}

async function loadView(tx: Tx, row: q.PlanRow): Promise<PlanView> {
  return toView(row, await q.allocationsOf(tx, [row.id]))
}

/**
 * A complete plan from its parts, checked as a whole (percentages sum, manual amounts within the budget) and
 * estimable (every platform without a benchmark brings its own CPL, CTR and CPC): a 400 naming the fields otherwise.
 */
function completePlan(input: unknown): PlanDocument {
  const parsed = CompletePlan.safeParse(input)
  if (!parsed.success) throw invalid(parsed.error)
  try {
    computeEstimates(parsed.data)
  } catch (err) {
    if (!(err instanceof MissingBenchmark)) throw err
    const i = parsed.data.allocations.findIndex((a) => a.platform === err.platform)
    throw new AppError('BAD_REQUEST', `invalid body.allocations.${i}.${err.field}: ${err.message}`, { details: [{ in: 'body', path: `allocations.${i}.${err.field}`, message: err.message }] })
  }
  return parsed.data
}

async function checkCampaign(tx: Tx, campaignId: string | null) {
  if (campaignId && !(await q.liveCampaignExists(tx, campaignId))) throw new AppError('NOT_FOUND', `campaign ${campaignId} not found`)
}

/** The version a change is conditional on: If-Match (`"3"`, `W/"3"`, `3`) or the body's, which must agree. */
export function expectedVersion(ifMatch: string | undefined, bodyVersion: number | undefined): number | undefined {
  let header: number | undefined
  if (ifMatch !== undefined && ifMatch.trim() !== '*') {
    const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(ifMatch)
    if (!m) throw new AppError('BAD_REQUEST', 'If-Match: expected the plan version, e.g. "3"')
    header = Number(m[1])
  }
  if (header !== undefined && bodyVersion !== undefined && header !== bodyVersion) {
    throw new AppError('BAD_REQUEST', `If-Match says version ${header}, the body says ${bodyVersion}`)
  }
  return header ?? bodyVersion
}

/** Locks the plan for a change and checks the version the client saw: 404 if absent, 409 with currentVersion if stale. */
async function lockForChange(tx: Tx, id: string, expected: number | undefined, opts: { deleted?: boolean } = {}): Promise<q.PlanRow> {
  const row = await q.findPlan(tx, id, true)
  if (!row) throw notFound(id)
  if (expected !== undefined && expected !== row.version) {
    throw new AppError('CONFLICT', `media plan ${id} is at version ${row.version}, not ${expected}: reload it and apply the change again`, { details: { currentVersion: row.version } })
  }
  const wantDeleted = opts.deleted ?? false
  if ((row.deletedAt !== null) !== wantDeleted) {
    throw new AppError('CONFLICT', wantDeleted ? `media plan ${id} is not deleted` : `media plan ${id} is deleted: restore it first`, { details: { currentVersion: row.version } })
  }
  return row
}

// ---------------------------------------------------------------------------------------------------------------
// Plans.

const DEFAULTS = {
  campaignId: null, market: '', goal: 'leads', niche: 'general', leadToSalePct: '0', revenuePerSale: '0', manualSplit: false, allocations: [], fullState: {},
} as const

async function templateBody(tx: Tx, templateId: string): Promise<TemplateBody> {
  const builtin = builtinTemplate(templateId)
  if (builtin) return builtin.body
  const row = z.uuid().safeParse(templateId).success ? await q.findTemplate(tx, templateId) : null
  if (!row) throw new AppError('NOT_FOUND', `plan template ${templateId} not found`)
  return TemplateBodySchema.parse(row.body)
}

async function insertDocument(tx: Tx, who: Actor, doc: PlanDocument, templateRef: string | null): Promise<PlanView> {
  await checkCampaign(tx, doc.campaignId)
  const { allocations, ...fields } = doc
  const row = await q.insertPlan(tx, who.tenantId, fields, { templateRef, createdBy: who.actor })
  await q.replaceAllocations(tx, who.tenantId, row.id, toAllocationRows(allocations))
  return loadView(tx, row)
}

export const createPlan = (sql: Sql, who: Actor, body: CreatePlanBody): Promise<PlanView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const { templateId, ...given } = body
    const fromTemplate = templateId ? await templateBody(tx, templateId) : {}
    const doc = completePlan({ ...DEFAULTS, ...fromTemplate, ...given })
    const plan = await insertDocument(tx, who, doc, templateId ?? null)
    await audit(tx, who, 'media_plan.created', plan.id, { version: plan.version, ...(templateId ? { templateId } : {}) })
    return plan
  })

const PlanCursor = keysetCursor(z.uuid())
export const listPlans = (sql: Sql, tenantId: string, query: { limit: number; cursor?: string; campaignId?: string; deleted: 'exclude' | 'include' | 'only' }) =>
  withTenant(sql, tenantId, async (tx) => {
    const after = query.cursor ? decodeCursor(query.cursor, PlanCursor) : null
    const rows = await q.listPlans(tx, query, after)
    const page = rows.slice(0, query.limit)
    const allocations = await q.allocationsOf(tx, page.map((r) => r.id))
    const data = page.map(({ cursorAt: _c, ...r }) => toView(r, allocations.filter((a) => a.planId === r.id)))
    const last = rows[query.limit - 1]
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null }
  })

export const getPlan = (sql: Sql, tenantId: string, id: string, opts: { includeDeleted?: boolean } = {}) =>
  withTenant(sql, tenantId, async (tx) => {
    const row = await q.findPlan(tx, id)
    if (!row || (row.deletedAt && !opts.includeDeleted)) throw notFound(id)
    return loadView(tx, row)
  })

const changedKeys = (a: PlanDocument, b: PlanDocument) =>
  (Object.keys(b) as (keyof PlanDocument)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))

/** Writes `doc` over the locked plan as its next version. */
async function writeVersion(tx: Tx, who: Actor, row: q.PlanRow, doc: PlanDocument): Promise<PlanView> {
  const { allocations, ...fields } = doc
  const updated = await q.updatePlan(tx, row.id, fields)
  await q.replaceAllocations(tx, who.tenantId, row.id, toAllocationRows(allocations))
  return loadView(tx, updated)
}

export const patchPlan = (sql: Sql, who: Actor, id: string, body: PatchPlanBody, ifMatch?: string): Promise<PlanView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const { version, ...patch } = body
    const row = await lockForChange(tx, id, expectedVersion(ifMatch, version))
    const before = documentOf(await loadView(tx, row))
    const doc = completePlan({ ...before, ...patch })
    if (doc.campaignId !== before.campaignId) await checkCampaign(tx, doc.campaignId)
    const fields = changedKeys(before, doc)
    if (fields.length === 0) return loadView(tx, row)
    const plan = await writeVersion(tx, who, row, doc)
    await audit(tx, who, 'media_plan.updated', id, { version: plan.version, fields })
    return plan
  })

export const deletePlan = (sql: Sql, who: Actor, id: string, ifMatch?: string, bodyVersion?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    await lockForChange(tx, id, expectedVersion(ifMatch, bodyVersion))
    const plan = await loadView(tx, await q.setPlanDeleted(tx, id, true))
    await audit(tx, who, 'media_plan.deleted', id, { version: plan.version })
    return plan
  })

export const restorePlan = (sql: Sql, who: Actor, id: string, ifMatch?: string, bodyVersion?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    await lockForChange(tx, id, expectedVersion(ifMatch, bodyVersion), { deleted: true })
    const plan = await loadView(tx, await q.setPlanDeleted(tx, id, false))
    await audit(tx, who, 'media_plan.restored', id, { version: plan.version })
    return plan
  })

/** Estimates for a plan that is not saved (the builder's live preview). */
export function estimatePlan(body: Record<string, unknown>) {
  return computeEstimates(completePlan({ ...DEFAULTS, ...body, name: body.name ?? 'preview' }))
}

// ---------------------------------------------------------------------------------------------------------------
// Snapshots, diff, rollback.

async function livePlan(tx: Tx, id: string): Promise<q.PlanRow> {
  const row = await q.findPlan(tx, id)
  if (!row || row.deletedAt) throw notFound(id)
  return row
}

export const createSnapshot = (sql: Sql, who: Actor, planId: string, name: string): Promise<SnapshotView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const row = await livePlan(tx, planId)
    const state = documentOf(await loadView(tx, row))
    const snapshot = await q.insertSnapshot(tx, who.tenantId, { planId, name, planVersion: row.version, state, createdBy: who.actor })
    if (!snapshot) throw new AppError('CONFLICT', `media plan ${planId} already has a snapshot named ${JSON.stringify(name)}`)
    await audit(tx, who, 'media_plan.snapshot_created', planId, { snapshotId: snapshot.id, name, version: row.version })
    return snapshot
  })

export const listSnapshots = (sql: Sql, tenantId: string, planId: string) =>
  withTenant(sql, tenantId, async (tx) => {
    await livePlan(tx, planId)
    return q.listSnapshots(tx, planId)
  })

async function snapshotOf(tx: Tx, planId: string, id: string) {
  const s = await q.findSnapshot(tx, planId, id)
  if (!s) throw new AppError('NOT_FOUND', `snapshot ${id} of media plan ${planId} not found`)
  return s
}

export const getSnapshot = (sql: Sql, tenantId: string, planId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    await livePlan(tx, planId)
    return snapshotOf(tx, planId, id)
  })

/** RFC 6902 operations turning one snapshot into the other (or into the plan as it is now), and the fields they touch. */
export const diffSnapshots = (sql: Sql, tenantId: string, planId: string, from: string, to: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const row = await livePlan(tx, planId)
    const a = (await snapshotOf(tx, planId, from)).state
    const b = to === 'current' ? documentOf(await loadView(tx, row)) : (await snapshotOf(tx, planId, to)).state
    const operations = jsonPatch.compare(a as object, b as object)
    const changedFields = [...new Set(operations.map((o) => o.path.split('/')[1]!).filter(Boolean))]
    return { from, to, operations, changedFields }
  })

/** The plan as the snapshot holds it, written as the next version (the history keeps moving forward). */
export const rollbackPlan = (sql: Sql, who: Actor, planId: string, snapshotId: string, ifMatch?: string, bodyVersion?: number): Promise<PlanView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const row = await lockForChange(tx, planId, expectedVersion(ifMatch, bodyVersion))
    const snapshot = await snapshotOf(tx, planId, snapshotId)
    const doc = completePlan(snapshot.state)
    const plan = await writeVersion(tx, who, row, doc)
    await audit(tx, who, 'media_plan.rolled_back', planId, { snapshotId, snapshotName: snapshot.name, fromVersion: row.version, version: plan.version })
    return plan
  })

// ---------------------------------------------------------------------------------------------------------------
// Export and import.

/** The download: `media-plan-YYYY-MM-DD.json` (UTC date of the export) holding the document under a schema version. */
export const exportPlan = (sql: Sql, tenantId: string, planId: string, now = new Date()) =>
  withTenant(sql, tenantId, async (tx) => {
    const plan = await loadView(tx, await livePlan(tx, planId))
    const file: ExportFile = { schemaVersion: EXPORT_SCHEMA_VERSION, kind: 'media-plan', exportedAt: now.toISOString(), plan: documentOf(plan), estimates: plan.estimates }
    return { filename: `media-plan-${now.toISOString().slice(0, 10)}.json`, file }
  })

/** A new plan from an export file (validated by the route: a wrong shape is a 400 naming the key). */
export const importPlan = (sql: Sql, who: Actor, file: ExportFile): Promise<PlanView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const plan = await insertDocument(tx, who, completePlan(file.plan), null)
    await audit(tx, who, 'media_plan.imported', plan.id, { version: plan.version, schemaVersion: file.schemaVersion, exportedAt: file.exportedAt })
    return plan
  })

// ---------------------------------------------------------------------------------------------------------------
// Templates.

const builtinViews = (): TemplateView[] => BUILTIN_TEMPLATES.map((t) => ({
  id: `${BUILTIN_PREFIX}${t.key}`, builtin: true, name: t.name, description: t.description, body: t.body, createdAt: null,
}))
const tenantView = (t: q.TemplateRow): TemplateView => ({ id: t.id, builtin: false, name: t.name, description: t.description, body: t.body, createdAt: t.createdAt })

export const listTemplates = (sql: Sql, tenantId: string) =>
  withTenant(sql, tenantId, async (tx) => [...builtinViews(), ...(await q.listTemplates(tx)).map(tenantView)])

export const createTemplate = (sql: Sql, who: Actor, t: { name: string; description: string; fromPlanId?: string; body?: TemplateBody }): Promise<TemplateView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    let body = t.body
    if (t.fromPlanId) {
      const { name: _n, campaignId: _c, ...fields } = documentOf(await loadView(tx, await livePlan(tx, t.fromPlanId)))
      body = fields
    }
    const row = await q.insertTemplate(tx, who.tenantId, { name: t.name, description: t.description, body, createdBy: who.actor })
      .catch((err: { code?: string }) => {
        if (err.code === '23505') throw new AppError('CONFLICT', `a plan template named ${JSON.stringify(t.name)} already exists`)
        throw err
      })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'media_plan_template.created', targetType: 'media_plan_template', targetId: row.id, details: { name: t.name, ...(t.fromPlanId ? { fromPlanId: t.fromPlanId } : {}) }, requestId: who.requestId ?? undefined })
    return tenantView(row)
  })

export const deleteTemplate = (sql: Sql, who: Actor, id: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    if (builtinTemplate(id)) throw new AppError('CONFLICT', `${id} is built in and cannot be deleted`)
    const gone = z.uuid().safeParse(id).success ? await q.deleteTemplate(tx, id) : 0
    if (gone === 0) throw new AppError('NOT_FOUND', `plan template ${id} not found`)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'media_plan_template.deleted', targetType: 'media_plan_template', targetId: id, requestId: who.requestId ?? undefined })
  })

// ---------------------------------------------------------------------------------------------------------------
// For the performance report (domains/campaigns/performance).

/** A plan's estimates for a campaign's report: the plan named (it must be the campaign's), else its most recently changed live plan. */
export async function planEstimatesOf(tx: Tx, campaignId: string, planId: string | null) {
  const row = planId ? await q.findPlan(tx, planId) : (await q.plansOfCampaign(tx, campaignId))[0] ?? null
  if (planId && (!row || row.deletedAt || row.campaignId !== campaignId)) throw new AppError('NOT_FOUND', `media plan ${planId} of campaign ${campaignId} not found`)
  if (!row) return null
  const plan = await loadView(tx, row)
  return { planId: plan.id, currency: plan.currency, estimates: plan.estimates }
}

/** The campaign a live plan is linked to (null: none); 404 for a plan that is absent or deleted. */
export async function campaignOfPlan(tx: Tx, planId: string): Promise<string | null> {
  return (await livePlan(tx, planId)).campaignId
}
