import { type Sql, withTenant, withTenantStatement } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import * as q from './queries.js'
import { type Actor, applyChange, assertVersion, lockCampaign } from './service.js'
import { DRAFT_TTL_DAYS, DraftCampaignFields, type DraftView, type SaveDraftBody } from './schemas.js'

/**
 * Drafts: the builder auto-saves its step data on every pause in typing, so a save is one statement (the campaign's
 * existence and version are read by the upsert itself). A draft lives DRAFT_TTL_DAYS after its last save: reads
 * ignore an expired one at once, and campaigns__expire_drafts deletes them in batches.
 */

const notFound = (id: string) => new AppError('NOT_FOUND', `campaign ${id} not found`)

export async function saveDraft(sql: Sql, tenantId: string, campaignId: string, body: SaveDraftBody): Promise<DraftView> {
  const d = await withTenantStatement(sql, tenantId, (tx) =>
    q.upsertDraft(tx, tenantId, campaignId, { step: body.step ?? null, data: body.data, baseVersion: body.baseVersion ?? null, ttlDays: DRAFT_TTL_DAYS }))
  if (!d) throw notFound(campaignId)
  return d
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
