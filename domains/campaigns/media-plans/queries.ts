import type { Tx } from '../../../lib/db.js'
import type { AllocationView } from './schemas.js'

/**
 * SQL of media plans (migration 0032). Every function runs under the transaction's tenant (withTenant): row-level
 * security makes another tenant's plan invisible, so a foreign id reads as absent.
 */

export interface PlanRow {
  id: string; campaignId: string | null; name: string; budget: string; currency: string; market: string; goal: string; niche: string
  leadToSalePct: string; revenuePerSale: string; manualSplit: boolean; fullState: Record<string, unknown>; templateRef: string | null
  version: number; deletedAt: Date | null; createdBy: string; createdAt: Date; updatedAt: Date
}

/** What a save writes: the plan's fields (allocations go separately). */
export interface PlanFields {
  campaignId: string | null; name: string; budget: string; currency: string; market: string; goal: string; niche: string
  leadToSalePct: string; revenuePerSale: string; manualSplit: boolean; fullState: Record<string, unknown>
}

const planColumns = (tx: Tx) => tx`
  p.id, p.campaign_id, p.name, p.budget::text, p.currency, p.market, p.goal, p.niche, p.lead_to_sale_pct::text, p.revenue_per_sale::text,
  p.manual_split, p.full_state, p.template_ref, p.version, p.deleted_at, p.created_by, p.created_at, p.updated_at`

export const insertPlan = (tx: Tx, tenantId: string, f: PlanFields, extra: { templateRef: string | null; createdBy: string }) =>
  tx<PlanRow[]>`
    insert into campaigns.media_plans as p (tenant_id, campaign_id, name, budget, currency, market, goal, niche, lead_to_sale_pct,
                                            revenue_per_sale, manual_split, full_state, template_ref, created_by)
    values (${tenantId}, ${f.campaignId}, ${f.name}, ${f.budget}, ${f.currency}, ${f.market}, ${f.goal}, ${f.niche}, ${f.leadToSalePct},
            ${f.revenuePerSale}, ${f.manualSplit}, ${tx.json(f.fullState as never)}, ${extra.templateRef}, ${extra.createdBy})
    returning ${planColumns(tx)}`.then((r) => r[0]!)

/** The new fields and the next version, in one statement; the caller has locked the row and checked the version. */
export const updatePlan = (tx: Tx, id: string, f: PlanFields) =>
  tx<PlanRow[]>`
    update campaigns.media_plans p
       set campaign_id = ${f.campaignId}, name = ${f.name}, budget = ${f.budget}, currency = ${f.currency}, market = ${f.market},
           goal = ${f.goal}, niche = ${f.niche}, lead_to_sale_pct = ${f.leadToSalePct}, revenue_per_sale = ${f.revenuePerSale},
           manual_split = ${f.manualSplit}, full_state = ${tx.json(f.fullState as never)}, version = p.version + 1, updated_at = now()
     where p.id = ${id}
    returning ${planColumns(tx)}`.then((r) => r[0]!)

/** Soft delete (deleted = true) or restore, as a new version. */
export const setPlanDeleted = (tx: Tx, id: string, deleted: boolean) =>
  tx<PlanRow[]>`
    update campaigns.media_plans p
       set deleted_at = ${deleted ? tx`now()` : null}, version = p.version + 1, updated_at = now()
     where p.id = ${id}
    returning ${planColumns(tx)}`.then((r) => r[0]!)

export const findPlan = (tx: Tx, id: string, lock = false) =>
  tx<PlanRow[]>`select ${planColumns(tx)} from campaigns.media_plans p where p.id = ${id} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

export const listPlans = (tx: Tx, q: { limit: number; campaignId?: string; deleted: 'exclude' | 'include' | 'only' }, after: { at: string; id: string } | null) =>
  tx<(PlanRow & { cursorAt: string })[]>`
    select ${planColumns(tx)}, p.created_at::text as cursor_at from campaigns.media_plans p
     where ${q.deleted === 'exclude' ? tx`p.deleted_at is null` : q.deleted === 'only' ? tx`p.deleted_at is not null` : tx`true`}
       and ${q.campaignId ? tx`p.campaign_id = ${q.campaignId}` : tx`true`}
       and ${after ? tx`(p.created_at, p.id) < (${after.at}::timestamptz, ${after.id}::uuid)` : tx`true`}
     order by p.created_at desc, p.id desc limit ${q.limit + 1}`

/** The live plans of a campaign, most recently changed first. */
export const plansOfCampaign = (tx: Tx, campaignId: string) =>
  tx<PlanRow[]>`
    select ${planColumns(tx)} from campaigns.media_plans p
     where p.campaign_id = ${campaignId} and p.deleted_at is null order by p.updated_at desc, p.id desc`

export const allocationsOf = (tx: Tx, planIds: readonly string[]) =>
  planIds.length === 0
    ? Promise.resolve([] as (AllocationView & { planId: string })[])
    : tx<(AllocationView & { planId: string })[]>`
        select plan_id, platform, percent::text, amount::text, cpl::text, ctr::text, cpc::text
          from campaigns.media_plan_allocations where plan_id = any(${planIds as string[]}::uuid[]) order by plan_id, position`

/** The plan's allocations replaced whole (a save sends them all), in two statements of the caller's transaction. */
export async function replaceAllocations(tx: Tx, tenantId: string, planId: string, rows: readonly Omit<AllocationView, never>[]) {
  await tx`delete from campaigns.media_plan_allocations where plan_id = ${planId}`
  if (rows.length === 0) return
  await tx`
    insert into campaigns.media_plan_allocations ${tx(rows.map((a, position) => ({
      tenantId, planId, platform: a.platform, position, percent: a.percent, amount: a.amount, cpl: a.cpl, ctr: a.ctr, cpc: a.cpc,
    })), 'tenantId', 'planId', 'platform', 'position', 'percent', 'amount', 'cpl', 'ctr', 'cpc')}`
}

/** A campaign of this tenant that is not deleted (the plan's link is checked against it). */
export const liveCampaignExists = (tx: Tx, id: string) =>
  tx<{ id: string }[]>`select id from campaigns.campaigns where id = ${id} and deleted_at is null`.then((r) => r.length > 0)

// ---------------------------------------------------------------------------------------------------------------
// Snapshots.

export interface SnapshotRow { id: string; planId: string; name: string; planVersion: number; createdBy: string; createdAt: Date; state: Record<string, unknown> }

/** Null when the plan already has a snapshot of that name (the unique constraint decides). */
export const insertSnapshot = (tx: Tx, tenantId: string, s: { planId: string; name: string; planVersion: number; state: unknown; createdBy: string }) =>
  tx<SnapshotRow[]>`
    insert into campaigns.media_plan_snapshots (tenant_id, plan_id, name, plan_version, state, created_by)
    values (${tenantId}, ${s.planId}, ${s.name}, ${s.planVersion}, ${tx.json(s.state as never)}, ${s.createdBy})
    on conflict (tenant_id, plan_id, name) do nothing
    returning id, plan_id, name, plan_version, created_by, created_at, state`.then((r) => r[0] ?? null)

export const listSnapshots = (tx: Tx, planId: string) =>
  tx<Omit<SnapshotRow, 'state'>[]>`
    select id, plan_id, name, plan_version, created_by, created_at from campaigns.media_plan_snapshots
     where plan_id = ${planId} order by created_at desc, id desc`

export const findSnapshot = (tx: Tx, planId: string, id: string) =>
  tx<SnapshotRow[]>`
    select id, plan_id, name, plan_version, created_by, created_at, state from campaigns.media_plan_snapshots
     where plan_id = ${planId} and id = ${id}`.then((r) => r[0] ?? null)

// ---------------------------------------------------------------------------------------------------------------
// Templates.

export interface TemplateRow { id: string; name: string; description: string; body: Record<string, unknown>; createdAt: Date }

export const insertTemplate = (tx: Tx, tenantId: string, t: { name: string; description: string; body: unknown; createdBy: string }) =>
  tx<TemplateRow[]>`
    insert into campaigns.media_plan_templates (tenant_id, name, description, body, created_by)
    values (${tenantId}, ${t.name}, ${t.description}, ${tx.json(t.body as never)}, ${t.createdBy})
    returning id, name, description, body, created_at`.then((r) => r[0]!)

export const listTemplates = (tx: Tx) =>
  tx<TemplateRow[]>`
    select id, name, description, body, created_at from campaigns.media_plan_templates
     where deleted_at is null order by lower(name), id`

export const findTemplate = (tx: Tx, id: string) =>
  tx<TemplateRow[]>`
    select id, name, description, body, created_at from campaigns.media_plan_templates
     where id = ${id} and deleted_at is null`.then((r) => r[0] ?? null)

export const deleteTemplate = (tx: Tx, id: string) =>
  tx`update campaigns.media_plan_templates set deleted_at = now() where id = ${id} and deleted_at is null`.then((r) => r.count)
