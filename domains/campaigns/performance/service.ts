import { Decimal } from 'decimal.js'
import type { Config } from '../../../lib/config.js'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { runQuery } from '../../analytics/query/service.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { campaignOfPlan, planEstimatesOf } from '../media-plans/service.js'
import { platformOf } from './platforms.js'
import * as q from './queries.js'
import type { PerformanceView, SpendBody } from './schemas.js'

/**
 * Plan vs reality for a campaign: planned leads, budget and CPL per platform (its media plan's estimates) beside the
 * actual leads, qualified and converted leads (the analytics rollups' lead.created / lead.qualified / lead.converted
 * events whose campaign_id is the campaign's, grouped by the platform of their acquisition source and channel), the
 * spend entered per platform and day, and the actual CPL (spend / leads, half-even to cents).
 */

export interface Actor { tenantId: string; actor: string; requestId: string | null }

const notFound = (id: string) => new AppError('NOT_FOUND', `campaign ${id} not found`)
const LEAD_EVENTS = ['lead.created', 'lead.qualified', 'lead.converted'] as const

async function liveCampaign(tx: Tx, id: string, lock = false) {
  const c = await q.findCampaign(tx, id, lock)
  if (!c || c.deletedAt) throw notFound(id)
  return c
}

// ---------------------------------------------------------------------------------------------------------------
// Spend and ad ids.

export const enterSpend = (sql: Sql, who: Actor, campaignId: string, body: SpendBody) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const c = await liveCampaign(tx, campaignId)
    const rows = body.entries.map((e, i) => {
      const currency = e.currency ?? c.currency
      if (!currency) throw new AppError('BAD_REQUEST', `invalid body.entries.${i}.currency: the campaign has no currency, so each entry names its own`, { details: [{ in: 'body', path: `entries.${i}.currency`, message: 'required: the campaign has no currency' }] })
      if (c.currency && currency !== c.currency) throw new AppError('BAD_REQUEST', `invalid body.entries.${i}.currency: the campaign is in ${c.currency}, not ${currency}`, { details: [{ in: 'body', path: `entries.${i}.currency`, message: `must be ${c.currency}` }] })
      return { platform: e.platform, day: e.day, amount: e.amount, currency, source: e.source }
    })
    const saved = await q.upsertSpend(tx, who.tenantId, campaignId, rows, who.actor)
    const total = rows.reduce((s, r) => s.plus(r.amount), new Decimal(0))
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'campaign.spend_entered', targetType: 'campaign', targetId: campaignId, details: { entries: rows.length, total: total.toFixed(2) }, requestId: who.requestId ?? undefined })
    return saved
  })

export const listSpend = (sql: Sql, tenantId: string, campaignId: string, range: { from?: string; to?: string }) =>
  withTenant(sql, tenantId, async (tx) => {
    await liveCampaign(tx, campaignId)
    return q.listSpend(tx, campaignId, range.from ?? null, range.to ?? null)
  })

export const deleteSpend = (sql: Sql, who: Actor, campaignId: string, platform: string, day: string) =>
  withTenant(sql, who.tenantId, async (tx) => {
    await liveCampaign(tx, campaignId)
    if ((await q.deleteSpend(tx, campaignId, platform, day)) === 0) throw new AppError('NOT_FOUND', `no spend on ${platform} on ${day} for campaign ${campaignId}`)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'campaign.spend_deleted', targetType: 'campaign', targetId: campaignId, details: { platform, day }, requestId: who.requestId ?? undefined })
  })

/** The campaign's click-to-WhatsApp ad ids (what leads' referrals are matched on); a new campaign version, If-Match like any save. */
export const setAdSources = (sql: Sql, who: Actor, campaignId: string, adSourceIds: string[], expected: number | undefined) =>
  withTenant(sql, who.tenantId, async (tx) => {
    const current = (await liveCampaign(tx, campaignId, true)).version
    if (expected !== undefined && expected !== current) {
      throw new AppError('CONFLICT', `campaign ${campaignId} is at version ${current}, not ${expected}`, { details: { currentVersion: current } })
    }
    const ids = [...new Set(adSourceIds)].sort()
    const saved = await q.setAdSourceIds(tx, campaignId, ids)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'campaign.ad_sources_set', targetType: 'campaign', targetId: campaignId, details: { count: ids.length, version: saved.version }, requestId: who.requestId ?? undefined })
    return saved
  })

// ---------------------------------------------------------------------------------------------------------------
// Reports.

interface Counts { leads: number; qualified: number; converted: number }

/** The campaign's lead events per platform, from the analytics query API (rollups, raw only for the newest buckets). */
export async function actualLeads(sql: Sql, config: Config, tenantId: string, campaignId: string, range: { from?: string; to?: string }, opts: { raw?: boolean } = {}) {
  const res = await runQuery(sql, config, tenantId, {
    metrics: ['events'],
    dateRange: range.from || range.to ? [range.from ?? '2000-01-01', range.to ?? new Date().toISOString().slice(0, 10)] : 'all',
    dimensions: ['event:name', 'visit:source', 'visit:channel'],
    filters: [['is', 'event:campaign', [campaignId]], ['is', 'event:name', [...LEAD_EVENTS]]],
    limit: 10_000, offset: 0,
    ...(opts.raw ? { source: 'raw' as const } : {}),
  })
  const byPlatform = new Map<string, Counts>()
  for (const r of res.results) {
    const [name, source, channel] = r.dimensions as [string, string | null, string | null]
    const platform = platformOf(source, channel)
    const c = byPlatform.get(platform) ?? { leads: 0, qualified: 0, converted: 0 }
    const n = Number(r.metrics[0] ?? 0)
    if (name === 'lead.created') c.leads += n
    else if (name === 'lead.qualified') c.qualified += n
    else if (name === 'lead.converted') c.converted += n
    byPlatform.set(platform, c)
  }
  return { byPlatform, source: res.meta.source, dateRange: res.meta.dateRange }
}

const cents = (d: Decimal) => d.toDecimalPlaces(2, Decimal.ROUND_HALF_EVEN).toFixed(2)

interface PlanLine { budget: string; leads: string; cpl: string | null }

function line(platform: string, planned: PlanLine | null, actual: Counts, spend: Decimal | null) {
  const cpl = spend && actual.leads > 0 ? cents(spend.div(actual.leads)) : null
  const plannedLeads = planned ? new Decimal(planned.leads) : null
  return {
    platform,
    planned,
    actual: { spend: spend ? spend.toFixed(2) : null, ...actual, cpl },
    leadsDelta: plannedLeads ? new Decimal(actual.leads).minus(plannedLeads).toFixed(2) : null,
    leadsAttainment: plannedLeads && !plannedLeads.isZero() ? new Decimal(actual.leads).div(plannedLeads).toDecimalPlaces(4, Decimal.ROUND_HALF_EVEN).toFixed(4) : null,
    cplDelta: cpl && planned?.cpl ? new Decimal(cpl).minus(planned.cpl).toFixed(2) : null,
  }
}

async function report(sql: Sql, config: Config, tenantId: string, campaignId: string, planId: string | null, range: { from?: string; to?: string }): Promise<PerformanceView> {
  // The campaign's side and the analytics side at once, on two connections: the report waits for the slower one only.
  // The counts run under the caller's tenant, so for a campaign that is not theirs they find nothing (and the 404 wins).
  const [{ campaign, plan, spendRows }, actual] = await Promise.all([
    withTenant(sql, tenantId, async (tx) => {
      // Pipelined: three statements, one round trip.
      const [campaign, plan, spendRows] = await Promise.all([
        liveCampaign(tx, campaignId), planEstimatesOf(tx, campaignId, planId), q.spendByPlatform(tx, campaignId, range.from ?? null, range.to ?? null),
      ])
      return { campaign, plan, spendRows }
    }),
    actualLeads(sql, config, tenantId, campaignId, range),
  ])
  const currency = plan?.currency ?? campaign.currency ?? spendRows[0]?.currency ?? null
  const warnings: string[] = []
  const spend = new Map<string, Decimal>()
  for (const s of spendRows) {
    if (currency && s.currency !== currency) {
      warnings.push(`spend on ${s.platform} in ${s.currency} is left out: the report is in ${currency}`)
      continue
    }
    spend.set(s.platform, (spend.get(s.platform) ?? new Decimal(0)).plus(s.amount))
  }
  const plannedBy = new Map<string, PlanLine>((plan?.estimates.platforms ?? []).map((p) => [p.platform, { budget: p.budget, leads: p.leads, cpl: new Decimal(p.leads).isZero() ? null : cents(new Decimal(p.budget).div(p.leads)) }]))
  const platforms = [...new Set([...plannedBy.keys(), ...actual.byPlatform.keys(), ...spend.keys()])]
  const none: Counts = { leads: 0, qualified: 0, converted: 0 }
  const lines = platforms.map((p) => line(p, plannedBy.get(p) ?? null, actual.byPlatform.get(p) ?? none, spend.get(p) ?? null))
  const sumCounts = lines.reduce((s, l) => ({ leads: s.leads + l.actual.leads, qualified: s.qualified + l.actual.qualified, converted: s.converted + l.actual.converted }), none)
  const totalSpend = spend.size ? [...spend.values()].reduce((s, v) => s.plus(v), new Decimal(0)) : null
  const totals = line('', plan ? { budget: plan.estimates.totals.budget, leads: plan.estimates.totals.leads, cpl: plan.estimates.totals.cpl } : null, sumCounts, totalSpend)
  const { platform: _p, ...totalsView } = totals
  if (!plan) warnings.push('the campaign has no media plan: nothing planned to compare with')
  return {
    campaignId, planId: plan?.planId ?? null, currency, dateRange: actual.dateRange, platforms: lines, totals: totalsView, source: actual.source, warnings,
  }
}

export const campaignPerformance = (sql: Sql, config: Config, tenantId: string, campaignId: string, query: { from?: string; to?: string; planId?: string }) =>
  report(sql, config, tenantId, campaignId, query.planId ?? null, query)

/** The plan's own campaign, compared with this plan (409 when the plan is linked to no campaign). */
export async function planPerformance(sql: Sql, config: Config, tenantId: string, planId: string, query: { from?: string; to?: string }) {
  const campaignId = await withTenant(sql, tenantId, (tx) => campaignOfPlan(tx, planId))
  if (!campaignId) throw new AppError('CONFLICT', `media plan ${planId} is linked to no campaign: set its campaignId to compare it with actual leads`)
  return report(sql, config, tenantId, campaignId, planId, query)
}

