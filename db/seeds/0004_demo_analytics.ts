/**
 * Thirty days of analytics history for the demo clinic (db/demo-history.ts), so the dashboard has something to
 * show on the first `npm start`. Written the way the product writes it: leads through marketing/leads (WhatsApp
 * senders by identity key, form leads through the batch resolver), statuses through changeLeads, and every event
 * through analytics' recordEvents, the only writer of analytics.events. Idempotent: leads are found again by their
 * keys, and every event has a dedupe key, so running it again adds only what the clock has reached since.
 */
import type { Tx } from '../../lib/db.js'
import { setTenant } from '../../lib/db.js'
import { type EventRow, recordEvents } from '../../domains/analytics/service.js'
import { changeLeads, upsertWhatsAppSenders } from '../../domains/marketing/leads/service.js'
import { resolveLeadsBatch } from '../../domains/marketing/leads/resolve-batch.js'
import { DEMO_TENANT_ID, type DemoEvent, type DemoHistory, generateDemoHistory } from '../demo-history.js'

/** Events per recordEvents statement: one JSON document of a few MB at most. */
const EVENTS_PER_STATEMENT = 5000

export async function seed(tx: Tx, options: { now?: Date } = {}): Promise<{ leads: number; events: number }> {
  const history = generateDemoHistory({ now: options.now ?? new Date() })
  await setTenant(tx, DEMO_TENANT_ID)
  const leadIds = await writeLeads(tx, history)
  let added = 0
  for (let i = 0; i < history.events.length; i += EVENTS_PER_STATEMENT) {
    added += await recordEvents(tx, history.events.slice(i, i + EVENTS_PER_STATEMENT).map((e) => eventRow(e, leadIds)))
  }
  // The statuses last: the history's lead.qualified / lead.converted (at their own times, keyed as the leads domain
  // keys them) are already recorded, so the leads domain recording the same facts now adds nothing.
  await setStatuses(tx, history, leadIds)
  // A bulk load into fresh tables: without statistics the planner guesses, and the dashboard's first reads crawl.
  if (added > 0) await tx`analyze analytics.events`
  return { leads: leadIds.size, events: added }
}

export default seed

async function writeLeads(tx: Tx, history: DemoHistory): Promise<Map<string, string>> {
  const ids = new Map<string, string>()
  const wa = history.leads.filter((l) => l.via === 'whatsapp')
  const senders = await upsertWhatsAppSenders(tx, DEMO_TENANT_ID, wa.map((l) => ({
    phoneKey: l.phoneKey, phoneE164: l.phoneE164, waId: l.waId, profileName: l.name, source: l.source,
    sourceDetails: l.sourceDetails, at: l.firstSeenAt,
  })))
  for (const [key, id] of senders) ids.set(key, id)

  const forms = history.leads.filter((l) => l.via === 'form')
  const resolutions = await resolveLeadsBatch(tx, DEMO_TENANT_ID, forms.map((l) => ({
    sighting: {
      email: l.email, phoneE164: l.phoneE164, phoneKey: l.phoneKey, name: l.name, company: null, fields: {},
      source: l.source, sourceDetails: l.sourceDetails, at: l.firstSeenAt,
    },
    actor: 'seed', reason: 'demo_seed', requestId: null,
  })))
  resolutions.forEach((r, i) => ids.set(forms[i]!.phoneKey, r.leadId))
  return ids
}

/** Each lead to the last status its history reaches (one already there changes nothing, so a second run adds nothing). */
async function setStatuses(tx: Tx, history: DemoHistory, ids: Map<string, string>): Promise<void> {
  for (const status of ['qualified', 'converted'] as const) {
    await changeLeads(tx, history.leads.filter((l) => l.status === status).map((l) => ids.get(l.phoneKey)!), { type: 'set_status', status })
  }
}

/**
 * Lead lifecycle keys are the leads domain's (`lead:created:<leadId>`, `lead:qualified:<leadId>`), so where the
 * product records the same fact itself (creating the lead, changing its status) the two are one event.
 */
const eventRow = (e: DemoEvent, leadIds: Map<string, string>): EventRow => {
  const leadId = e.leadKey ? leadIds.get(e.leadKey) ?? null : null
  return {
    name: e.name, leadId, occurredAt: e.occurredAt, properties: e.properties, source: e.source,
    dedupeKey: e.dedupeKey.startsWith('lead:') ? `${e.dedupeKey}:${leadId}` : e.dedupeKey,
    anonymousId: e.anonymousId, sessionId: e.sessionId, type: e.type, context: e.context, enrichment: e.enrichment,
  }
}
