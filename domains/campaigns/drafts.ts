import { type Queryable, type Sql, withTenant } from '../../lib/db.js'
import { AppError, isAppError } from '../../lib/errors.js'
import { GroupCommit, type GroupCommitOptions, isUnavailableError } from '../../lib/group-commit.js'
import * as q from './queries.js'
import type { DraftSaveRow } from './queries.js'
import { type Actor, applyChange, assertVersion, lockCampaign } from './service.js'
import { DRAFT_TTL_DAYS, DraftCampaignFields, type DraftView, type SaveDraftBody } from './schemas.js'

/**
 * Drafts: the builder auto-saves its step data on every pause in typing, so saves are group-committed (DraftAutosave):
 * the saves arriving while a flush is in flight are stored together by the next one, in one statement. A draft lives
 * DRAFT_TTL_DAYS after its last save: reads ignore an expired one at once, and campaigns__expire_drafts deletes them
 * in batches.
 */

const notFound = (id: string) => new AppError('NOT_FOUND', `campaign ${id} not found`)

/** One autosave, validated (SaveDraftBody: shape and size) before it is queued. */
export interface DraftSave {
  tenantId: string
  campaignId: string
  body: SaveDraftBody
}

/** PostgreSQL's data exceptions (class 22) and program limits (class 54): this value can never be stored. */
const isUnstorableValue = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)) || err instanceof RangeError
}
// The campaign (or its tenant) was deleted between the statement's read of it and the draft's insert.
const isForeignKeyViolation = (err: unknown) => (err as { code?: unknown } | null)?.code === '23503'

/**
 * Stores `saves` in one statement and answers each with what it would have got alone, in order: its draft as saved
 * (its own step and data, the saves counted up to it, its base version), or a 404 for a campaign its tenant cannot
 * see (another tenant's, deleted, unknown) that fails no neighbour. Several saves of one draft keep the last one's
 * step and data (arrival order: last write wins), count every save, and the last base version one of them named
 * (none: the live draft's, else the campaign's version, as a save alone does). Throws when the statement fails.
 */
export async function saveDrafts(sql: Queryable, saves: DraftSave[]): Promise<(DraftView | AppError)[]> {
  // One row per (tenant, campaign), in arrival order; another tenant's id for the same campaign is a row of its own.
  const groups = new Map<string, { tenantId: string; campaignId: string; members: number[] }>()
  saves.forEach((s, i) => {
    const key = `${s.tenantId}:${s.campaignId}`
    const g = groups.get(key)
    if (g) g.members.push(i)
    else groups.set(key, { tenantId: s.tenantId, campaignId: s.campaignId, members: [i] })
  })
  const byTenant = new Map<string, DraftSaveRow[]>()
  for (const g of groups.values()) {
    const last = saves[g.members.at(-1)!]!.body
    const named = g.members.map((i) => saves[i]!.body.baseVersion).filter((v) => v !== undefined)
    const rows = byTenant.get(g.tenantId) ?? []
    if (rows.length === 0) byTenant.set(g.tenantId, rows)
    rows.push({ campaign_id: g.campaignId, step: last.step ?? null, data: last.data, base_version: named.at(-1) ?? null, n: g.members.length })
  }
  const stored = await q.saveDraftBatches(sql, [...byTenant].map(([tenantId, rows]) => ({ tenantId, rows })), DRAFT_TTL_DAYS)
  const rowOf = new Map(stored.map((r) => [`${r.tenantId}:${r.campaignId}`, r]))

  const out: (DraftView | AppError)[] = new Array(saves.length)
  for (const [key, g] of groups) {
    const row = rowOf.get(key)
    let named: number | undefined
    g.members.forEach((i, k) => {
      if (!row) {
        out[i] = notFound(g.campaignId)
        return
      }
      const body = saves[i]!.body
      named = body.baseVersion ?? named
      const isLast = k === g.members.length - 1
      out[i] = {
        campaignId: g.campaignId, step: body.step ?? null, data: body.data,
        // The last save's answer is the stored row; an earlier one's is the row as it was after that save.
        baseVersion: isLast ? row.baseVersion : named ?? row.implicitBase,
        saves: row.saves - (g.members.length - 1 - k),
        savedAt: row.savedAt, expiresAt: row.expiresAt,
      }
    })
  }
  return out
}

/** One save alone (its own statement and commit): for scripts and tests; the API goes through DraftAutosave. */
export async function saveDraft(sql: Sql, tenantId: string, campaignId: string, body: SaveDraftBody): Promise<DraftView> {
  const [result] = await saveDrafts(sql, [{ tenantId, campaignId, body }])
  if (result instanceof Error) throw result
  return result!
}

export type DraftAutosaveOptions = Omit<GroupCommitOptions, 'noun' | 'maxConcurrentFlushes'> & {
  /**
   * Flushes in flight at once, each over its own share of the drafts (a campaign's saves always go to the same one,
   * by its id): 1 by default. The API uses 2, so that a save arriving while a flush is in flight no longer has to
   * wait for that flush before its own can start (the wait behind the flush in progress was most of the p99).
   */
  lanes?: number
  /** Told about flush failures that are not the saver's to explain (they get a plain 503). */
  onError?: (err: unknown) => void
}

/** The lane of a campaign's saves: from its id's last hex digits (uuids are random there), so stable and spread. */
export const draftLane = (campaignId: string, lanes: number) => (lanes <= 1 ? 0 : (Number.parseInt(campaignId.slice(-4), 16) || 0) % lanes)

/**
 * Group commit for PUT /v1/campaigns/:id/draft (lib/group-commit.ts, as the WhatsApp, form and event inboxes):
 * saves arriving while a flush is in flight are stored by the next one in one statement (one round trip, one
 * commit), several tenants each under its own row-level security; a save is answered only after its flush has
 * committed. A save whose campaign is gone or another tenant's gets its own 404; one PostgreSQL refuses fails the
 * statement, and the group commit then writes each member alone, so only the offender fails (400).
 *
 * One flush at a time per lane, always: two in flight over the same drafts could take a draft's row lock in either
 * order, and an older save would overwrite a newer one. With one per lane, a later flush of a lane holds only saves
 * that arrived later, and two lanes never hold the same draft (a campaign's id picks its lane), so lanes cannot
 * reorder a draft's saves nor wait for each other's row locks.
 */
export class DraftAutosave {
  private readonly lanes: GroupCommit<DraftSave, DraftView>[]

  constructor(private readonly sql: Sql, private readonly options: DraftAutosaveOptions = {}) {
    const lanes = Math.max(1, Math.floor(options.lanes ?? 1))
    // A draft may be up to 256 KiB: 64 of them bound one statement's document to 16 MiB. The queue bound is shared.
    const maxQueued = Math.ceil((options.maxQueued ?? 10_000) / lanes)
    this.lanes = Array.from({ length: lanes }, () =>
      new GroupCommit<DraftSave, DraftView>((batch, signal) => this.flush(batch, signal), { maxBatch: 64, ...options, maxQueued, maxConcurrentFlushes: 1, noun: 'draft' }))
  }

  save(tenantId: string, campaignId: string, body: SaveDraftBody): Promise<DraftView> {
    return this.lanes[draftLane(campaignId, this.lanes.length)]!.add({ tenantId, campaignId, body })
  }

  private async flush(batch: DraftSave[], signal: AbortSignal): Promise<(DraftView | Error)[]> {
    try {
      const conn = await this.sql.reserve()
      try {
        // Waited too long for a connection: the savers were already told 503, so nothing may be stored now.
        if (signal.aborted) throw new AppError('UNAVAILABLE', 'saving the draft took too long; retry later', { headers: { 'retry-after': '2' } })
        return await saveDrafts(conn, batch)
      } finally {
        conn.release()
      }
    } catch (err) {
      if (isAppError(err)) throw err
      // Alone, the save is the cause: answered on its own. In a group, thrown: the group commit retries each alone.
      if (batch.length === 1 && isUnstorableValue(err)) return [new AppError('BAD_REQUEST', 'the draft holds a value that cannot be stored', { cause: err })]
      if (batch.length === 1 && isForeignKeyViolation(err)) return [notFound(batch[0]!.campaignId)]
      this.options.onError?.(err)
      if (batch.length > 1 && !isUnavailableError(err)) throw err
      throw new AppError('UNAVAILABLE', 'the draft could not be saved; retry later', { headers: { 'retry-after': '2' }, cause: err })
    }
  }
}

export const getDraft = (sql: Sql, tenantId: string, campaignId: string): Promise<DraftView> =>
  withTenant(sql, tenantId, async (tx) => {
    const d = await q.findDraft(tx, campaignId)
    if (d) return d
    throw (await q.findCampaign(tx, campaignId)) ? new AppError('NOT_FOUND', `campaign ${campaignId} has no draft (none saved, or it expired ${DRAFT_TTL_DAYS} days after its last save)`) : notFound(campaignId)
  })

export const discardDraft = (sql: Sql, tenantId: string, campaignId: string): Promise<void> =>
  withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findCampaign(tx, campaignId))) throw notFound(campaignId)
    await q.deleteDraft(tx, campaignId)
  })

/**
 * Applies the draft's campaign fields to the campaign and removes the draft, in one transaction: a draft that does
 * not validate, or was started from an older version than the campaign's (someone else saved meanwhile), changes
 * nothing. `expected` overrides the draft's base version (the client saw the newer version and means to overwrite).
 */
export const publishDraft = (sql: Sql, who: Actor, campaignId: string, expected?: number) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await lockCampaign(tx, campaignId)
    const d = await q.findDraft(tx, campaignId, true)
    if (!d) throw new AppError('NOT_FOUND', `campaign ${campaignId} has no draft to publish`)
    assertVersion('campaign', campaignId, c.version, expected ?? d.baseVersion)
    const fields = DraftCampaignFields.safeParse(pickCampaignFields(d.data))
    if (!fields.success) {
      const details = fields.error.issues.map((i) => ({ in: 'draft', path: ['data', ...i.path].join('.'), message: i.message }))
      throw new AppError('BAD_REQUEST', `the draft does not make a valid campaign: ${details.map((x) => x.path).join(', ')}`, { details })
    }
    const updated = Object.keys(fields.data).length > 0
      ? await applyChange(tx, who, c, fields.data, 'campaign.draft_published', { saves: d.saves, step: d.step })
      : c
    await q.deleteDraft(tx, campaignId)
    return updated
  })

/** The draft's data may hold the builder's own step state next to the campaign's fields: only the fields are applied. */
const CAMPAIGN_KEYS = ['name', 'type', 'description', 'budget', 'currency', 'startsAt', 'endsAt', 'productId', 'utmCampaign', 'config'] as const
function pickCampaignFields(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of CAMPAIGN_KEYS) if (data[k] !== undefined) out[k] = data[k]
  return out
}

/** Cross-tenant: deletes expired drafts in batches of `batch` until none is left or `budgetMs` is spent. */
export async function expireDrafts(sql: Sql, opts: { batch: number; budgetMs: number }): Promise<{ deleted: number; incomplete: boolean }> {
  const started = Date.now()
  let deleted = 0
  for (;;) {
    const n = await q.expireDrafts(sql, opts.batch)
    deleted += n
    if (n < opts.batch) return { deleted, incomplete: false }
    if (Date.now() - started > opts.budgetMs) return { deleted, incomplete: true }
  }
}
