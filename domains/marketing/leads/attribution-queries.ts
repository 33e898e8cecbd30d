import type { Tx } from '../../../lib/db.js'

/** SQL of marketing.lead_attributions (migration 0041): the leads domain alone writes it. */

export interface AttributionInsert {
  leadId: string; campaignId: string; matchedOn: 'utm_campaign' | 'ctwa_ad'; matchValue: string; platform: string
  acqSource: string; acqChannel: string; ctwaClid: string | null; attributedAt: string
}

/** First touch wins: a lead that already has its campaign keeps it. */
export const insertAttributions = (tx: Tx, tenantId: string, rows: readonly AttributionInsert[]) =>
  tx`
    insert into marketing.lead_attributions ${tx(rows.map((r) => ({ tenantId, ...r })), 'tenantId', 'leadId', 'campaignId', 'matchedOn', 'matchValue', 'platform', 'acqSource', 'acqChannel', 'ctwaClid', 'attributedAt')}
    on conflict (tenant_id, lead_id) do nothing`.then((r) => r.count)

export const attributionsOf = (tx: Tx, leadIds: readonly string[]) =>
  tx<{ leadId: string; campaignId: string; platform: string; acqSource: string; acqChannel: string }[]>`
    select lead_id, campaign_id, platform, acq_source, acq_channel from marketing.lead_attributions where lead_id = any(${leadIds as string[]}::uuid[])`

/**
 * A merge: the survivor keeps the earlier of the two first touches. The merged lead's row is taken off it and, when it
 * is earlier than the survivor's (or the survivor has none), becomes the survivor's.
 */
export const adoptMergedAttribution = (tx: Tx, survivorId: string, mergedId: string) =>
  tx`
    with gone as (delete from marketing.lead_attributions where lead_id = ${mergedId} returning *)
    insert into marketing.lead_attributions as a (tenant_id, lead_id, campaign_id, matched_on, match_value, platform, acq_source, acq_channel, ctwa_clid, attributed_at, created_at)
    select tenant_id, ${survivorId}, campaign_id, matched_on, match_value, platform, acq_source, acq_channel, ctwa_clid, attributed_at, created_at from gone
    on conflict (tenant_id, lead_id) do update
       set campaign_id = excluded.campaign_id, matched_on = excluded.matched_on, match_value = excluded.match_value, platform = excluded.platform,
           acq_source = excluded.acq_source, acq_channel = excluded.acq_channel, ctwa_clid = excluded.ctwa_clid, attributed_at = excluded.attributed_at
     where excluded.attributed_at < a.attributed_at`

export interface CampaignLeadCounts { platform: string; leads: number; qualified: number; converted: number }

/**
 * The naive count of a campaign's leads per platform straight from the attribution rows and the leads' current status
 * (qualified counts converted leads too: they passed qualification). The performance report reads the rollups
 * instead; this is its cross-check and the bench's baseline.
 */
export const countCampaignLeads = (tx: Tx, campaignId: string) =>
  tx<CampaignLeadCounts[]>`
    select a.platform, count(*)::int as leads,
           count(*) filter (where l.status in ('qualified', 'converted'))::int as qualified,
           count(*) filter (where l.status = 'converted')::int as converted
      from marketing.lead_attributions a join marketing.leads l on l.id = a.lead_id
     where a.campaign_id = ${campaignId} and l.merged_into is null
     group by 1 order by 1`
