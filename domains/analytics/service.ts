import type { Tx } from '../../lib/db.js'
import * as q from './queries.js'
import type { EventRow } from './schemas.js'

export type { EventRow } from './schemas.js'

/**
 * Records analytics events, set-based: one statement for the whole batch, inside the caller's transaction and under
 * its tenant, so an event commits with the fact it describes (a stored message, an applied submission) or not at
 * all. Idempotent by `dedupeKey`: recording the same key again, in this batch or any later one, adds nothing; rows
 * without a key are always added. Returns how many events were new.
 *
 * The only code that writes analytics.events (domains/one-writer.test.ts keeps it so). Rows come from producers
 * that validated their own input; outside input is parsed with `EventRow` (schemas.ts) before it gets here.
 */
export async function recordEvents(tx: Tx, rows: readonly EventRow[]): Promise<number> {
  if (rows.length === 0) return 0
  return q.insertEvents(tx, rows.map((r) => ({
    name: r.name,
    lead_id: r.leadId ?? null,
    occurred_at: r.occurredAt instanceof Date ? r.occurredAt.toISOString() : r.occurredAt,
    properties: r.properties ?? {},
    dedupe_key: r.dedupeKey ?? null,
    source: r.source ?? null,
  })))
}

/**
 * The same, for a producer that derives its events from rows it writes in the same statement (WhatsApp ingestion
 * records each new message's event in the statement that stores the messages): returns the insert as a part to
 * embed as a CTE. `relation` selects name, lead_id, occurred_at, properties, dedupe_key and source.
 */
export const recordEventsFrom = q.insertEventsFrom
