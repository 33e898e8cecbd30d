import type { Queryable, Tx } from '../../lib/db.js'
import type { CampaignConfig, CampaignStatus, CampaignView, DraftView, SnapshotView } from './schemas.js'

/** Campaigns, their drafts and snapshots: the SQL of domains/campaigns (the catalog's is in catalog-queries.ts). */

const campaignColumns = (tx: Tx) => tx`
  c.id, c.name, c.type, c.status, c.description, c.budget::text as budget, c.currency, c.starts_at, c.ends_at, c.product_id, c.utm_campaign,
  c.config, c.version, c.deleted_at, c.created_at, c.updated_at, c.status_changed_at`

export interface CampaignInsert {
  name: string; type: string; description: string; budget: string | null; currency: string | null; startsAt: Date | null; endsAt: Date | null
  productId: string | null; utmCampaign: string | null; config: CampaignConfig; createdBy: string; legacyKey?: string | null
  status?: CampaignStatus
}

export const insertCampaign = (tx: Tx, tenantId: string, c: CampaignInsert) =>
  tx<CampaignView[]>`
    insert into campaigns.campaigns as c (tenant_id, name, type, status, description, budget, currency, starts_at, ends_at, product_id, utm_campaign, config, created_by, legacy_key)
    values (${tenantId}, ${c.name}, ${c.type}, ${c.status ?? 'draft'}, ${c.description}, ${c.budget}, ${c.currency}, ${c.startsAt}, ${c.endsAt}, ${c.productId},
            ${c.utmCampaign}, ${tx.json(c.config as never)}, ${c.createdBy}, ${c.legacyKey ?? null})
    returning ${campaignColumns(tx)}`.then((r) => r[0]!)

export const findCampaign = (tx: Tx, id: string, opts: { lock?: boolean; includeDeleted?: boolean } = {}) =>
  tx<CampaignView[]>`
    select ${campaignColumns(tx)} from campaigns.campaigns c
     where c.id = ${id} ${opts.includeDeleted ? tx`` : tx`and c.deleted_at is null`} ${opts.lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export interface CampaignFilter { status?: string; productId?: string; deleted?: boolean; q?: string }
export const listCampaigns = (tx: Tx, f: CampaignFilter, limit: number, after: { at: string; id: string } | null) =>
  tx<(CampaignView & { cursorAt: string })[]>`
    select ${campaignColumns(tx)}, c.created_at::text as cursor_at from campaigns.campaigns c
     where ${f.deleted ? tx`c.deleted_at is not null` : tx`c.deleted_at is null`}
       and ${f.status ? tx`c.status = ${f.status}` : tx`true`}
       and ${f.productId ? tx`c.product_id = ${f.productId}` : tx`true`}
       and ${f.q ? tx`c.name ilike ${'%' + f.q.replace(/[\\%_]/g, (m) => '\\' + m) + '%'}` : tx`true`}
       and ${after ? tx`(c.created_at, c.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx`true`}
     order by c.created_at desc, c.id desc limit ${limit + 1}`

/** A campaign's fields as a save sets them; every save bumps the version. */
export type CampaignChange = Partial<Omit<CampaignInsert, 'createdBy' | 'legacyKey' | 'status'>> & {
  status?: CampaignStatus; deletedAt?: 'now' | null
}

export const updateCampaign = (tx: Tx, id: string, p: CampaignChange) => {
  const sets = [
    p.name !== undefined && tx`name = ${p.name}`,
    p.type !== undefined && tx`type = ${p.type}`,
    p.description !== undefined && tx`description = ${p.description}`,
    p.budget !== undefined && tx`budget = ${p.budget}`,
    p.currency !== undefined && tx`currency = ${p.currency}`,
    p.startsAt !== undefined && tx`starts_at = ${p.startsAt}`,
    p.endsAt !== undefined && tx`ends_at = ${p.endsAt}`,
    p.productId !== undefined && tx`product_id = ${p.productId}`,
    p.utmCampaign !== undefined && tx`utm_campaign = ${p.utmCampaign}`,
    p.config !== undefined && tx`config = ${tx.json(p.config as never)}`,
    p.status !== undefined && tx`status = ${p.status}, status_changed_at = now()`,
    p.deletedAt !== undefined && (p.deletedAt === null ? tx`deleted_at = null` : tx`deleted_at = now()`),
  ].filter((s) => s !== false)
  return tx<CampaignView[]>`
    update campaigns.campaigns c set ${sets.map((s) => tx`${s}, `)}version = version + 1, updated_at = now()
     where c.id = ${id} returning ${campaignColumns(tx)}`.then((r) => r[0]!)
}

/** Whether a product of this tenant exists (and is not deleted): a campaign may only point at such a one. */
export const productExists = (tx: Tx, id: string) =>
  tx`select 1 from campaigns.products where id = ${id} and deleted_at is null`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------------
// Drafts: an autosave flush is one statement (each campaign's existence and version, and the upsert, together).

const draftColumns = (tx: Tx) => tx`d.campaign_id, d.step, d.data, d.base_version, d.saves, d.saved_at, d.expires_at`

/** One draft of a grouped autosave: the last save of the flush for it, and how many saves it folds. */
export interface DraftSaveRow { campaign_id: string; step: string | null; data: unknown; base_version: number | null; n: number }
export interface SavedDraftRow { tenantId: string; campaignId: string; baseVersion: number; saves: number; savedAt: Date; expiresAt: Date; implicitBase: number }

/**
 * Stores a group commit's drafts in one statement, each tenant's rows under its own row-level security
 * (campaigns.save_drafts, migration 0052). A row whose campaign its tenant cannot see comes back absent.
 */
export const saveDraftBatches = (sql: Queryable, batches: { tenantId: string; rows: DraftSaveRow[] }[], ttlDays: number) =>
  sql<SavedDraftRow[]>`
    select tenant_id, campaign_id, base_version, saves, saved_at, expires_at, implicit_base
      from campaigns.save_drafts(${sql.json(batches as never)}::jsonb, ${ttlDays}::int)`

export const findDraft = (tx: Tx, campaignId: string, lock = false) =>
  tx<DraftView[]>`
    select ${draftColumns(tx)} from campaigns.campaign_drafts d
     where d.campaign_id = ${campaignId} and d.expires_at > now() ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const deleteDraft = (tx: Tx, campaignId: string) => tx`delete from campaigns.campaign_drafts where campaign_id = ${campaignId}`.then((r) => r.count)

/** The legacy import's draft: kept if the campaign has none yet (a second import changes nothing). */
export const insertDraftIfAbsent = (tx: Tx, tenantId: string, campaignId: string, d: { step: string | null; data: unknown; baseVersion: number; savedAt: Date; ttlDays: number }) =>
  tx`
    insert into campaigns.campaign_drafts (campaign_id, tenant_id, step, data, base_version, saved_at, expires_at)
    values (${campaignId}, ${tenantId}, ${d.step}, ${tx.json(d.data as never)}, ${d.baseVersion}, ${d.savedAt}, ${d.savedAt}::timestamptz + make_interval(days => ${d.ttlDays}))
    on conflict (campaign_id) do nothing`.then((r) => r.count)

/** Cross-tenant (security definer): deletes up to `limit` expired drafts; returns how many. */
export const expireDrafts = (tx: Tx | import('../../lib/db.js').Sql, limit: number) =>
  tx<{ n: number }[]>`select campaigns.expire_drafts(${limit}) as n`.then((r) => r[0]!.n)

// ---------------------------------------------------------------------------------------------------------------
// Snapshots.

const snapshotColumns = (tx: Tx) => tx`s.id, s.campaign_id, s.label, s.version, s.state, s.created_by, s.created_at`

export const insertSnapshot = (tx: Tx, tenantId: string, s: { campaignId: string; label: string; version: number; state: unknown; createdBy: string }) =>
  tx<SnapshotView[]>`
    insert into campaigns.campaign_snapshots as s (tenant_id, campaign_id, label, version, state, created_by)
    values (${tenantId}, ${s.campaignId}, ${s.label}, ${s.version}, ${tx.json(s.state as never)}, ${s.createdBy})
    on conflict (tenant_id, campaign_id, label) do nothing
    returning ${snapshotColumns(tx)}`.then((r) => r[0] ?? null)

export const listSnapshots = (tx: Tx, campaignId: string) =>
  tx<SnapshotView[]>`select ${snapshotColumns(tx)} from campaigns.campaign_snapshots s where s.campaign_id = ${campaignId} order by s.created_at desc, s.id desc`

export const findSnapshot = (tx: Tx, campaignId: string, id: string) =>
  tx<SnapshotView[]>`select ${snapshotColumns(tx)} from campaigns.campaign_snapshots s where s.campaign_id = ${campaignId} and s.id = ${id}`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Legacy import bookkeeping: one row per imported key of a browser dump.

/** Claims a legacy key for a new row; false when it was imported before (the dump is then left alone for that key). */
export const claimLegacyKey = (tx: Tx, tenantId: string, k: { legacyKey: string; targetType: string; targetId: string; importedBy: string }) =>
  tx`
    insert into campaigns.legacy_imports (tenant_id, legacy_key, target_type, target_id, imported_by)
    values (${tenantId}, ${k.legacyKey}, ${k.targetType}, ${k.targetId}, ${k.importedBy})
    on conflict (tenant_id, legacy_key) do nothing`.then((r) => r.count === 1)

export const findLegacyImports = (tx: Tx, keys: string[]) =>
  tx<{ legacyKey: string; targetType: string; targetId: string; importedAt: Date }[]>`
    select legacy_key, target_type, target_id, imported_at from campaigns.legacy_imports where legacy_key = any(${keys}::text[])`
