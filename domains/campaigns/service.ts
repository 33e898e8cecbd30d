import fastJsonPatch from 'fast-json-patch'
import { z } from 'zod'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../lib/pagination.js'
import { recordPlatformEvents, campaignCreated, campaignStatusChanged } from '../analytics/platform-events.js'
import { insertAuditEntry, listAuditEntriesFor } from '../tenancy/queries.js'
import { allowedFrom, canMove, missingFor } from './lifecycle.js'
import * as q from './queries.js'
import {
  type CampaignPatch, type CampaignState, JsonPatchOp, type CampaignStatus, type CampaignView, type CreateCampaignBody, SNAPSHOT_FIELDS, type SnapshotView,
} from './schemas.js'

/** Who changes a campaign, for the audit log. */
export interface Actor { tenantId: string; actor: string; requestId: string | null }

export const auditCampaign = (tx: Tx, who: Actor, action: string, c: { id: string; version?: number }, details: Record<string, unknown> = {}) =>
  insertAuditEntry(tx, {
    tenantId: who.tenantId, actor: who.actor, action, targetType: 'campaign', targetId: c.id,
    details: { ...(c.version !== undefined ? { version: c.version } : {}), ...details }, requestId: who.requestId ?? undefined,
  })

const notFound = (id: string) => new AppError('NOT_FOUND', `campaign ${id} not found`)

/** 409 for a save made from an older version than the one stored (If-Match or `version`). */
export function assertVersion(kind: string, id: string, current: number, expected: number | undefined): void {
  if (expected !== undefined && expected !== current) {
    throw new AppError('CONFLICT', `${kind} ${id} is at version ${current}, not ${expected}: reload it and apply the change again`, { details: { currentVersion: current } })
  }
}

/** A campaign's state as a snapshot keeps it: JSON-ready (dates as ISO text), in a fixed key order. */
export function stateOf(c: CampaignView): CampaignState {
  const out: Record<string, unknown> = {}
  for (const f of SNAPSHOT_FIELDS) {
    const v = c[f]
    out[f] = v instanceof Date ? v.toISOString() : v
  }
  return out as CampaignState
}

/** A campaign's final state must still hold together after a partial change (a budget has its currency, dates in order). */
function checkWhole(c: Pick<CampaignView, 'budget' | 'currency' | 'startsAt' | 'endsAt'>): void {
  const details: { in: string; path: string; message: string }[] = []
  if (c.budget !== null && c.currency === null) details.push({ in: 'body', path: 'currency', message: 'a budget needs its currency' })
  if (c.startsAt && c.endsAt && c.endsAt < c.startsAt) details.push({ in: 'body', path: 'endsAt', message: 'endsAt must not be before startsAt' })
  if (details.length) throw new AppError('BAD_REQUEST', `invalid ${details.map((d) => `body.${d.path}`).join(', ')}`, { details })
}

async function checkProduct(tx: Tx, productId: string | null | undefined): Promise<void> {
  if (productId && !(await q.productExists(tx, productId))) throw new AppError('NOT_FOUND', `product ${productId} not found`)
}

/**
 * A unique violation of `constraint` is a 409 that says what is taken (the generic handler would name only the
 * constraint); anything else is rethrown. Run `fn` in a savepoint: the caller's transaction stays usable.
 */
export async function conflictOnUnique<T>(fn: () => Promise<T>, constraint: string, message: string, field: string): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    const pg = err as { code?: string; constraint_name?: string }
    if (pg.code === '23505' && pg.constraint_name === constraint) throw new AppError('CONFLICT', message, { details: { field } })
    throw err
  }
}

const guardUtm = <T>(fn: () => Promise<T>, utm: string | null | undefined) =>
  conflictOnUnique(fn, 'campaigns_utm_campaign_key', `another campaign already uses utm_campaign ${utm}`, 'utmCampaign')

export async function createCampaignIn(tx: Tx, who: Actor, body: CreateCampaignBody): Promise<CampaignView> {
  await checkProduct(tx, body.productId)
  const c = await tx.savepoint((sp) => guardUtm(() => q.insertCampaign(sp, who.tenantId, { ...body, createdBy: who.actor }), body.utmCampaign))
  await auditCampaign(tx, who, 'campaign.created', c, { name: c.name })
  await recordPlatformEvents(tx, [campaignCreated({ campaignId: c.id, at: c.createdAt, type: c.type, status: c.status, productId: c.productId })])
  return c
}

export const createCampaign = (sql: Sql, who: Actor, body: CreateCampaignBody) => withTenant(sql, who.tenantId, (tx) => createCampaignIn(tx, who, body))

export const getCampaign = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => (await q.findCampaign(tx, id, { includeDeleted: true })) ?? null)

const CampaignCursor = keysetCursor(z.uuid())
export const listCampaigns = (sql: Sql, tenantId: string, query: q.CampaignFilter & { limit: number; cursor?: string }) =>
  withTenant(sql, tenantId, async (tx) => {
    const after = query.cursor ? decodeCursor(query.cursor, CampaignCursor) : null
    const rows = await q.listCampaigns(tx, query, query.limit, after)
    const data = rows.slice(0, query.limit).map(({ cursorAt: _c, ...c }) => c)
    const last = rows[query.limit - 1]
    return { data, nextCursor: rows.length > query.limit && last ? encodeCursor({ at: last.cursorAt, id: last.id }) : null }
  })

/** Locks the live (not deleted) campaign for a change and checks the version the client saw. */
export async function lockCampaign(tx: Tx, id: string, expected?: number): Promise<CampaignView> {
  const c = await q.findCampaign(tx, id, { lock: true })
  if (!c) throw notFound(id)
  assertVersion('campaign', id, c.version, expected)
  return c
}

/** Applies a change to a locked campaign (a PATCH, a published draft, a rollback): checks, saves (version + 1), audits. */
export async function applyChange(tx: Tx, who: Actor, current: CampaignView, change: CampaignPatch, action: string, details: Record<string, unknown> = {}): Promise<CampaignView> {
  checkWhole({ ...current, ...change } as CampaignView)
  if (change.productId !== undefined && change.productId !== current.productId) await checkProduct(tx, change.productId)
  const updated = await tx.savepoint((sp) => guardUtm(() => q.updateCampaign(sp, current.id, change), change.utmCampaign))
  const before = stateOf(current)
  const after = stateOf(updated)
  const fields = SNAPSHOT_FIELDS.filter((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]))
  await auditCampaign(tx, who, action, updated, { fields, ...details })
  return updated
}

/** A PATCH without fields is no save: it answers the campaign as it is (its version unchanged). */
export const updateCampaign = (sql: Sql, who: Actor, id: string, change: CampaignPatch, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await lockCampaign(tx, id, expected)
    return Object.keys(change).length === 0 ? c : applyChange(tx, who, c, change, 'campaign.updated')
  })

/** Moves the campaign along its lifecycle; anything but an allowed move is a 409 naming the allowed ones. */
export const changeStatus = (sql: Sql, who: Actor, id: string, to: CampaignStatus, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await lockCampaign(tx, id, expected)
    if (c.status === to) return c
    if (!canMove(c.status, to)) {
      const allowed = allowedFrom(c.status)
      throw new AppError('CONFLICT', `campaign ${id} is ${c.status}: it can move to ${allowed.length ? allowed.join(', ') : 'nothing (archived is final)'}, not ${to}`,
        { details: { from: c.status, to, allowed } })
    }
    const missing = missingFor(to, c)
    if (missing) throw new AppError('UNPROCESSABLE', missing, { details: { from: c.status, to } })
    const updated = await q.updateCampaign(tx, id, { status: to })
    await auditCampaign(tx, who, 'campaign.status_changed', updated, { from: c.status, to })
    await recordPlatformEvents(tx, [campaignStatusChanged({ campaignId: id, from: c.status, to, version: updated.version, at: updated.statusChangedAt })])
    return updated
  })

export const deleteCampaign = (sql: Sql, who: Actor, id: string, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await lockCampaign(tx, id, expected)
    const updated = await q.updateCampaign(tx, id, { deletedAt: 'now' })
    await auditCampaign(tx, who, 'campaign.deleted', updated, { status: c.status })
    return updated
  })

export const restoreCampaign = (sql: Sql, who: Actor, id: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await q.findCampaign(tx, id, { lock: true, includeDeleted: true })
    if (!c) throw notFound(id)
    if (!c.deletedAt) return c
    // Its utm_campaign may have been taken meanwhile: the restore is then a 409 (the unique index says so).
    const updated = await tx.savepoint((sp) => guardUtm(() => q.updateCampaign(sp, id, { deletedAt: null }), c.utmCampaign))
    await auditCampaign(tx, who, 'campaign.restored', updated)
    return updated
  })

// ---------------------------------------------------------------------------------------------------------------
// Snapshots: a name for the campaign's state at one version; diffs between two (JSON Patch); rollback to one.

export const createSnapshot = (sql: Sql, who: Actor, id: string, label: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await q.findCampaign(tx, id, { lock: true })
    if (!c) throw notFound(id)
    const s = await q.insertSnapshot(tx, who.tenantId, { campaignId: id, label, version: c.version, state: stateOf(c), createdBy: who.actor })
    if (!s) throw new AppError('CONFLICT', `campaign ${id} already has a snapshot named ${JSON.stringify(label)}`, { details: { field: 'label' } })
    await auditCampaign(tx, who, 'campaign.snapshot_created', c, { snapshotId: s.id, label })
    return s
  })

export const listSnapshots = (sql: Sql, tenantId: string, id: string) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findCampaign(tx, id, { includeDeleted: true }))) throw notFound(id)
    return q.listSnapshots(tx, id)
  })

async function snapshotOrCurrent(tx: Tx, c: CampaignView, ref: string): Promise<{ ref: string; version: number; state: unknown }> {
  if (ref === 'current') return { ref, version: c.version, state: stateOf(c) }
  const s = z.uuid().safeParse(ref).success ? await q.findSnapshot(tx, c.id, ref) : null
  if (!s) throw new AppError('NOT_FOUND', `snapshot ${ref} of campaign ${c.id} not found`)
  return { ref, version: s.version, state: s.state }
}

/** What changed from one snapshot (or `current`) to another, as RFC 6902 operations turning `from` into `to`. */
export const diffSnapshots = (sql: Sql, tenantId: string, id: string, from: string, to: string) =>
  withTenant(sql, tenantId, async (tx) => {
    const c = await q.findCampaign(tx, id, { includeDeleted: true })
    if (!c) throw notFound(id)
    const [a, b] = [await snapshotOrCurrent(tx, c, from), await snapshotOrCurrent(tx, c, to)]
    const patch = fastJsonPatch.compare(a.state as object, b.state as object) as z.infer<typeof JsonPatchOp>[]
    const fields = [...new Set(patch.map((op) => op.path.split('/')[1]!).filter(Boolean))]
    return { from: { ref: a.ref, version: a.version }, to: { ref: b.ref, version: b.version }, fields, patch }
  })

/** Puts the snapshot's state back as a new version (history is never rewritten); the status stays where it is. */
export const rollbackToSnapshot = (sql: Sql, who: Actor, id: string, snapshotId: string, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await lockCampaign(tx, id, expected)
    const s: SnapshotView | null = await q.findSnapshot(tx, id, snapshotId)
    if (!s) throw new AppError('NOT_FOUND', `snapshot ${snapshotId} of campaign ${id} not found`)
    const state = s.state as Record<string, unknown>
    const change: CampaignPatch = {
      name: state.name as string, type: state.type as CampaignPatch['type'], description: state.description as string,
      budget: state.budget as string | null, currency: state.currency as string | null,
      startsAt: state.startsAt ? new Date(state.startsAt as string) : null, endsAt: state.endsAt ? new Date(state.endsAt as string) : null,
      productId: state.productId as string | null, utmCampaign: state.utmCampaign as string | null, config: state.config as CampaignPatch['config'],
    }
    // The snapshot's product may have been deleted since: the rollback then keeps none rather than failing.
    if (change.productId && !(await q.productExists(tx, change.productId))) change.productId = null
    return applyChange(tx, who, c, change, 'campaign.rolled_back', { snapshotId, label: s.label, snapshotVersion: s.version })
  })

/** The campaign's audit entries, newest first: who changed what, at which version (ids and field names, never values). */
export const campaignHistory = (sql: Sql, tenantId: string, id: string, limit: number) =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findCampaign(tx, id, { includeDeleted: true }))) throw notFound(id)
    return listAuditEntriesFor(tx, 'campaign', id, limit)
  })
