/**
 * A partner-link visitor becoming a lead. The visitor id (the `wa_lv` cookie) is the anonymous id of the visitor's
 * link.clicked and link.started events, so the analytics link of that anonymous id to a lead (analytics.identities,
 * domains/analytics/platform-events.ts linkAnonymousIds: a form submission, a WhatsApp message, a server's identify)
 * is also the moment the visitor's clicks and attribution become the lead's. It runs in that link's transaction.
 */
import type { Sql, Tx } from '../../../lib/db.js'
import { VISITOR_ID } from './privacy.js'
import * as q from './queries.js'

/** Only a cookie's shape can name clicks: other anonymous ids (a site's own) are skipped without a statement. */
export const isLinkVisitorId = (v: string) => VISITOR_ID.test(v)

/**
 * Joins each visitor to its lead (clicks get the lead, the visitor's attribution merges into the lead's; see
 * queries.ts joinVisitorsToLeads). The first lead given for a visitor counts. One statement, none when no id has the
 * cookie's shape.
 */
export async function joinVisitorsToLeads(tx: Tx, links: readonly { visitorId: string; leadId: string }[]): Promise<{ clicks: number; attributions: number }> {
  const leadOf = new Map<string, string>()
  for (const l of links) if (isLinkVisitorId(l.visitorId) && !leadOf.has(l.visitorId)) leadOf.set(l.visitorId, l.leadId)
  if (leadOf.size === 0) return { clicks: 0, attributions: 0 }
  const pairs = [...leadOf].map(([visitor_id, lead_id]) => ({ visitor_id, lead_id }))
    .sort((a, b) => (a.lead_id < b.lead_id ? -1 : a.lead_id > b.lead_id ? 1 : a.visitor_id < b.visitor_id ? -1 : 1))
  return q.joinVisitorsToLeads(tx, pairs)
}

/**
 * Visitors who never become leads: one bounded step of the hourly prune (assessments__prune_click_details, across
 * tenants). Up to `limit` clicks naming no lead, older than their tenant's retention setting `linkClickDetailsDays`
 * (`defaultDays` without settings), keep the row (the partner's counts) but lose the network, address hash, user
 * agent and referrer. Returns how many were pruned; running it again prunes nothing more.
 */
export const pruneClickDetails = (sql: Sql, limit: number, defaultDays: number): Promise<number> => q.pruneLinkClickDetails(sql, limit, defaultDays)
