import type { Tx } from '../../../lib/db.js'

/**
 * SQL of campaign performance and attribution lookups (migration 0041). Runs under the transaction's tenant: another
 * tenant's campaign is invisible, so a foreign id reads as absent.
 */

export interface CampaignTouchRow { tenantId: string; id: string; utmCampaign: string | null; adSourceIds: string[]; createdAt: Date }

/**
 * Live campaigns whose UTM code (case-insensitively) or ad ids match what new leads carry, oldest first (the oldest
 * campaign wins a code two campaigns share in different case). Used by the leads domain when it creates leads.
 */
export const campaignsForTouches = (tx: Tx, codes: readonly string[], adIds: readonly string[]) =>
  tx<CampaignTouchRow[]>`
    select tenant_id, id, utm_campaign, ad_source_ids, created_at from campaigns.campaigns
     where deleted_at is null
       and (lower(utm_campaign) = any(${codes.map((c) => c.toLowerCase())}::text[]) or ad_source_ids && ${adIds as string[]}::text[])
     order by created_at, id`

export interface CampaignRow { id: string; version: number; name: string; status: string; budget: string | null; currency: string | null; utmCampaign: string | null; adSourceIds: string[]; startsAt: Date | null; endsAt: Date | null; deletedAt: Date | null }

export const findCampaign = (tx: Tx, id: string, lock = false) =>
  tx<CampaignRow[]>`
    select id, version, name, status, budget::text, currency, utm_campaign, ad_source_ids, starts_at, ends_at, deleted_at
      from campaigns.campaigns where id = ${id} ${lock ? tx`for update` : tx``}`.then((r) => r[0] ?? null)

/** The campaign's ad ids replaced (a new version of the campaign, like any other save of it). */
export const setAdSourceIds = (tx: Tx, id: string, adSourceIds: readonly string[]) =>
  tx<{ adSourceIds: string[]; version: number }[]>`
    update campaigns.campaigns set ad_source_ids = ${adSourceIds as string[]}::text[], version = version + 1, updated_at = now()
     where id = ${id} returning ad_source_ids, version`.then((r) => r[0]!)

export interface SpendRow { platform: string; day: string; amount: string; currency: string; source: string; enteredBy: string; updatedAt: Date }

/** Entering a (platform, day) again replaces its amount. */
export const upsertSpend = (tx: Tx, tenantId: string, campaignId: string, rows: readonly { platform: string; day: string; amount: string; currency: string; source: string }[], enteredBy: string) =>
  tx<SpendRow[]>`
    insert into campaigns.spend_entries ${tx(rows.map((r) => ({ tenantId, campaignId, ...r, enteredBy })), 'tenantId', 'campaignId', 'platform', 'day', 'amount', 'currency', 'source', 'enteredBy')}
    on conflict (tenant_id, campaign_id, platform, day) do update
       set amount = excluded.amount, currency = excluded.currency, source = excluded.source, entered_by = excluded.entered_by, updated_at = now()
    returning platform, to_char(day, 'YYYY-MM-DD') as day, amount::text, currency, source, entered_by, updated_at`

export const deleteSpend = (tx: Tx, campaignId: string, platform: string, day: string) =>
  tx`delete from campaigns.spend_entries where campaign_id = ${campaignId} and platform = ${platform} and day = ${day}::date`.then((r) => r.count)

export const listSpend = (tx: Tx, campaignId: string, from: string | null, to: string | null) =>
  tx<SpendRow[]>`
    select platform, to_char(day, 'YYYY-MM-DD') as day, amount::text, currency, source, entered_by, updated_at
      from campaigns.spend_entries
     where campaign_id = ${campaignId}
       and ${from ? tx`day >= ${from}::date` : tx`true`} and ${to ? tx`day <= ${to}::date` : tx`true`}
     order by day, platform`

/** Spend per platform and currency over the days (inclusive; null: all). */
export const spendByPlatform = (tx: Tx, campaignId: string, from: string | null, to: string | null) =>
  tx<{ platform: string; currency: string; amount: string }[]>`
    select platform, currency, sum(amount)::text as amount from campaigns.spend_entries
     where campaign_id = ${campaignId}
       and ${from ? tx`day >= ${from}::date` : tx`true`} and ${to ? tx`day <= ${to}::date` : tx`true`}
     group by 1, 2 order by 1, 2`
