import type { Tx } from '../../../lib/db.js'
import type { EventRow } from '../../analytics/service.js'
import { campaignsForTouches, type CampaignTouchRow } from '../../campaigns/performance/queries.js'
import { platformOf } from '../../campaigns/performance/platforms.js'
import * as aq from './attribution-queries.js'

/**
 * Which campaign brought a lead: its first touch, decided once when the lead is created, from what brought it.
 * - A click-to-WhatsApp ad: the first message's referral (Meta's `referral.source_id`, the ad id) matches a campaign
 *   whose ad ids (campaigns.campaigns.ad_source_ids) hold it.
 * - A form submission (or an API lead) with UTM: its `utm_campaign` matches a campaign's `utm_campaign` code,
 *   case-insensitively.
 * An ad id wins over a code; among campaigns matching the same way, the oldest. A lead matching nothing has no row.
 * The lead's lead.created event carries the campaign id (`campaignId`, the rollups' campaign_id dimension), and its
 * later lead.qualified / lead.converted carry it too, with the same acquisition source and channel, so the
 * performance report counts all three per campaign and platform from the rollups.
 */

export interface NewLead { leadId: string; at: Date | string; sourceDetails: unknown; event: EventRow }

const field = (v: unknown, key: string): unknown => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined)
const text = (v: unknown) => (typeof v === 'string' && v.trim() !== '' && v.length <= 200 ? v.trim() : null)

/** The touch a new lead carries: the referral's ad id and click id, or the UTM campaign code. */
export function touchOf(sourceDetails: unknown): { adId: string | null; ctwaClid: string | null; code: string | null } {
  const referral = field(sourceDetails, 'referral')
  const utm = field(sourceDetails, 'utm')
  return {
    adId: text(field(referral, 'sourceId')),
    ctwaClid: typeof field(referral, 'ctwaClid') === 'string' ? (field(referral, 'ctwaClid') as string).slice(0, 500) : null,
    code: text(field(utm, 'utm_campaign') ?? field(utm, 'campaign')),
  }
}

function match(campaigns: readonly CampaignTouchRow[], touch: ReturnType<typeof touchOf>) {
  if (touch.adId) {
    const c = campaigns.find((x) => x.adSourceIds.includes(touch.adId!))
    if (c) return { campaignId: c.id, matchedOn: 'ctwa_ad' as const, matchValue: touch.adId }
  }
  if (touch.code) {
    const code = touch.code.toLowerCase()
    const c = campaigns.find((x) => x.utmCampaign?.toLowerCase() === code)
    if (c) return { campaignId: c.id, matchedOn: 'utm_campaign' as const, matchValue: touch.code }
  }
  return null
}

/**
 * Attributes leads created just now and puts the campaign id on their lead.created events (mutating `event`). No
 * query at all when none of them carries a touch (most WhatsApp senders, forms without UTM).
 */
export async function attributeNewLeads(tx: Tx, leads: readonly NewLead[]): Promise<void> {
  const touches = leads.map((l) => touchOf(l.sourceDetails))
  const codes = [...new Set(touches.flatMap((t) => (t.code ? [t.code] : [])))]
  const adIds = [...new Set(touches.flatMap((t) => (t.adId ? [t.adId] : [])))]
  if (codes.length === 0 && adIds.length === 0) return
  const campaigns = await campaignsForTouches(tx, codes, adIds)
  if (campaigns.length === 0) return
  const rows: aq.AttributionInsert[] = []
  leads.forEach((lead, i) => {
    const m = match(campaigns, touches[i]!)
    if (!m) return
    const acq = lead.event.attribution ?? null
    const acqSource = acq?.source ?? ''
    const acqChannel = acq?.channel ?? ''
    rows.push({
      leadId: lead.leadId, ...m, platform: platformOf(acqSource, acqChannel), acqSource, acqChannel,
      ctwaClid: m.matchedOn === 'ctwa_ad' ? touches[i]!.ctwaClid : null,
      attributedAt: (lead.at instanceof Date ? lead.at : new Date(lead.at)).toISOString(),
    })
    lead.event.properties = { ...lead.event.properties, campaignId: m.campaignId }
  })
  // The campaigns are the transaction's tenant's (row-level security): their tenant is the leads' tenant.
  if (rows.length > 0) await aq.insertAttributions(tx, campaigns[0]!.tenantId, rows)
}

const MILESTONES = new Set(['lead.qualified', 'lead.converted'])

/**
 * The lead's campaign (and acquisition source and channel) on its lead.qualified / lead.converted events, so the
 * rollups count them per campaign and platform like its lead.created. One query, only when there is such an event.
 */
export async function withLeadCampaigns(tx: Tx, rows: EventRow[]): Promise<EventRow[]> {
  const leadIds = [...new Set(rows.flatMap((r) => (MILESTONES.has(r.name) && r.leadId ? [r.leadId] : [])))]
  if (leadIds.length === 0) return rows
  const byLead = new Map((await aq.attributionsOf(tx, leadIds)).map((a) => [a.leadId, a]))
  return rows.map((r) => {
    const a = MILESTONES.has(r.name) && r.leadId ? byLead.get(r.leadId) : undefined
    return a
      ? { ...r, properties: { ...r.properties, campaignId: a.campaignId }, attribution: { source: a.acqSource || null, channel: a.acqChannel } }
      : r
  })
}

export { countCampaignLeads } from './attribution-queries.js'
