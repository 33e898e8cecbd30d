import type postgres from 'postgres'
import type { Tx } from '../../lib/db.js'

/** An event as the insert takes it: snake_case keys for jsonb_to_recordset. */
export interface EventRecord {
  name: string
  lead_id: string | null
  occurred_at: string
  properties: unknown
  dedupe_key: string | null
  source: string | null
}

/**
 * Events from a relation the caller selects: columns name, lead_id, occurred_at, properties, dedupe_key, source, in
 * the order to add them, under the transaction's tenant (withTenant), so a caller cannot file an event under another
 * tenant. A statement of its own, or a part of the caller's (a data-modifying CTE: postgres.js nests queries), so a hot
 * path stays one round trip. A dedupe key already stored (or repeated) adds nothing.
 */
export const insertEventsFrom = (tx: Tx, relation: postgres.Fragment) =>
  tx`
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source)
    select (select core.current_tenant_id()), r.name, r.lead_id, r.occurred_at, coalesce(r.properties, '{}'), r.dedupe_key, r.source
      from (${relation}) r
    on conflict (tenant_id, dedupe_key) do nothing`

/** Every event of a batch in one statement, in the order given (a function scan keeps the array's order). Returns how many were new. */
export const insertEvents = (tx: Tx, rows: EventRecord[]) =>
  insertEventsFrom(tx, tx`
    select * from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
      as x(name text, lead_id uuid, occurred_at timestamptz, properties jsonb, dedupe_key text, source text)`).then((r) => r.count)

/** Retention: up to `limit` of a tenant's events older than `days` days, oldest first; returns how many went. */
export const deleteEventsOlderThan = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx`
    delete from analytics.events where id in (
      select id from analytics.events
       where tenant_id = ${tenantId} and occurred_at < now() - make_interval(days => ${days})
       order by occurred_at limit ${limit})`
    .then((r) => r.count)
