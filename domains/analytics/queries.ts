import type postgres from 'postgres'
import type { Sql, Tx } from '../../lib/db.js'

/** An event as the insert takes it: snake_case keys for jsonb_to_recordset. */
export interface EventRecord {
  name: string
  lead_id: string | null
  occurred_at: string
  properties: unknown
  dedupe_key: string | null
  source: string | null
  event_id?: string | null
  type?: string | null
  anonymous_id?: string | null
  session_id?: string | null
  context?: unknown
  /** Enrichment columns (migration 0020); absent or null for events that were not enriched. */
  acq_source?: string | null
  acq_channel?: string | null
  referrer_host?: string | null
  utm?: unknown
  click_id?: unknown
  device?: string | null
  browser?: string | null
  browser_version?: string | null
  os?: string | null
  os_version?: string | null
  is_bot?: boolean | null
  country?: string | null
  country_from?: string | null
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
  tx`
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source, event_id, type, anonymous_id, session_id, context,
                                  acq_source, acq_channel, referrer_host, utm, click_id, device, browser, browser_version, os, os_version, is_bot,
                                  country, country_from)
    select (select core.current_tenant_id()), r.name, r.lead_id, r.occurred_at, coalesce(r.properties, '{}'), r.dedupe_key, r.source,
           r.event_id, r.type, r.anonymous_id, r.session_id, r.context,
           r.acq_source, r.acq_channel, r.referrer_host, r.utm, r.click_id, r.device, r.browser, r.browser_version, r.os, r.os_version, r.is_bot,
           r.country, r.country_from
      from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
        as r(name text, lead_id uuid, occurred_at timestamptz, properties jsonb, dedupe_key text, source text,
             event_id uuid, type text, anonymous_id text, session_id text, context jsonb,
             acq_source text, acq_channel text, referrer_host text, utm jsonb, click_id jsonb, device text, browser text,
             browser_version text, os text, os_version text, is_bot boolean, country text, country_from text)
    on conflict (tenant_id, dedupe_key) do nothing`.then((r) => r.count)

/** Retention: up to `limit` of a tenant's events older than `days` days, oldest first; returns how many went. */
export const deleteEventsOlderThan = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx`
    delete from analytics.events where id in (
      select id from analytics.events
       where tenant_id = ${tenantId} and occurred_at < now() - make_interval(days => ${days})
       order by occurred_at limit ${limit})`
    .then((r) => r.count)

// ---------------------------------------------------------------------------------------------------------------
// Site keys and the event inbox (POST /v1/events).

export interface SiteKeyRow {
  id: string
  name: string
  publicKey: string
  allowedOrigins: string[]
  status: 'active' | 'archived'
  createdAt: Date
  archivedAt: Date | null
}
const siteKeyColumns = (tx: Tx) => tx`id, name, public_key, allowed_origins, status, created_at, archived_at`

export const insertSiteKey = (tx: Tx, tenantId: string, row: { name: string; publicKey: string; allowedOrigins: string[] }) =>
  tx<SiteKeyRow[]>`
    insert into analytics.site_keys (tenant_id, name, public_key, allowed_origins)
    values (${tenantId}, ${row.name}, ${row.publicKey}, ${row.allowedOrigins})
    returning ${siteKeyColumns(tx)}`.then((r) => r[0]!)

export const listSiteKeys = (tx: Tx, includeArchived: boolean) =>
  tx<SiteKeyRow[]>`
    select ${siteKeyColumns(tx)} from analytics.site_keys
     where ${includeArchived ? tx`true` : tx`status = 'active'`}
     order by created_at desc, id`

export const archiveSiteKey = (tx: Tx, id: string) =>
  tx<SiteKeyRow[]>`
    update analytics.site_keys set status = 'archived', archived_at = coalesce(archived_at, now())
     where id = ${id} returning ${siteKeyColumns(tx)}`.then((r) => r[0] ?? null)

export interface PublicSiteKeyRow { id: string; tenantId: string; status: string; allowedOrigins: string[]; tenantStatus: string }
/** Before the tenant is known: the narrow security-definer lookup of migration 0019. */
export const findSiteKey = (sql: Sql, publicKey: string) =>
  sql<PublicSiteKeyRow[]>`select * from analytics.find_site_key(${publicKey})`.then((r) => r[0] ?? null)

/** An inbox row as the group commit sends it (snake_case for jsonb_to_recordset). */
export interface InboxEventRecord {
  id: string
  name: string
  type: string
  occurred_at: string
  anonymous_id: string | null
  lead_id: string | null
  session_id: string | null
  properties: unknown
  context: unknown
  source: 'api' | 'site'
}

/** Every tenant's rows of a group commit, with one job per tenant, in one statement. Returns the ids that were new. */
export const storeInboxEvents = (sql: Sql, batches: { tenantId: string; rows: InboxEventRecord[] }[]) =>
  sql<{ tenantId: string; id: string }[]>`select tenant_id, id from analytics.store_events(${sql.json(batches as never)}::jsonb)`

export interface InboxEventRow {
  id: string
  name: string
  type: string
  occurredAt: Date
  anonymousId: string | null
  leadId: string | null
  /** The lead id came with the event (an API key's), not from the visitor's link. */
  clientLead: boolean
  sessionId: string | null
  properties: Record<string, unknown>
  context: Record<string, unknown>
  source: string
}

/**
 * The inbox rows to move, locked (a concurrent job for the same ids waits, then finds them gone). A client's lead id
 * that names no lead of this tenant is dropped; a merged lead's becomes its survivor's. An event without one gets its
 * visitor's linked lead, if any (`clientLead` false).
 */
export const lockInboxEvents = (tx: Tx, ids: string[]) =>
  tx<InboxEventRow[]>`
    select i.id, i.name, i.type, i.occurred_at, i.anonymous_id, coalesce(l.merged_into, l.id, vl.merged_into, vl.id) as lead_id,
           i.lead_id is not null as client_lead, i.session_id, i.properties, i.context, i.source
      from analytics.event_inbox i
      left join marketing.leads l on l.id = i.lead_id
      -- A visitor already linked to a lead (analytics.identities, migration 0026): the event counts for that lead.
      left join analytics.identities v on i.lead_id is null and v.anonymous_id = i.anonymous_id
      left join marketing.leads vl on vl.id = v.lead_id
     where i.id = any(${ids}::uuid[]) and i.status = 'received'
     order by i.occurred_at, i.id
       for update of i`

export const deleteInboxEvents = (tx: Tx, ids: string[]) =>
  tx`delete from analytics.event_inbox where id = any(${ids}::uuid[])`

export const parkInboxEvent = (tx: Tx, id: string, error: string) =>
  tx`update analytics.event_inbox set status = 'parked', attempts = attempts + 1, last_error = ${error} where id = ${id}`

/**
 * Experiment goals: for each unit of `units` (columns lead_id, assigned_at, variation_key) and each goal, whether the
 * lead had the event within the window after its assignment, counted per variation and goal. One indexed probe per
 * unit and goal (events by lead), never a scan of the tenant's events.
 */
export const countGoalConversionsFrom = (tx: Tx, units: postgres.Fragment, goals: { event: string; windowHours: number }[]) =>
  tx<{ variationKey: string; event: string; conversions: number }[]>`
    select u.variation_key, g.event,
           count(*) filter (where exists (
             select 1 from analytics.events e
              where e.lead_id = u.lead_id and e.name = g.event
                and e.occurred_at >= u.assigned_at and e.occurred_at < u.assigned_at + make_interval(hours => w.window_hours)))::int as conversions
      from (${units}) u
      cross join jsonb_to_recordset(${tx.json(goals as never)}::jsonb) as g(event text, "windowHours" int)
      cross join lateral (select g."windowHours" as window_hours) w
     where u.lead_id is not null
     group by 1, 2`

export interface ParkedEventRow { id: string; name: string; type: string; occurredAt: Date; receivedAt: Date; source: string; attempts: number; lastError: string | null }

/** Parked events for an operator, newest first: what they are and why they failed (never their properties). */
export const listParkedEvents = (tx: Tx, query: { limit: number; beforeReceivedAt: Date | null }) =>
  tx<ParkedEventRow[]>`
    select id, name, type, occurred_at, received_at, source, attempts, last_error
      from analytics.event_inbox
     where status = 'parked' ${query.beforeReceivedAt ? tx`and received_at < ${query.beforeReceivedAt}` : tx``}
     order by received_at desc, id desc
     limit ${query.limit}`

/**
 * A parked event back to 'received' with its job, in one statement (the job commits with the change or neither
 * does). Processing dedupes by `evt:<id>`, so replaying an event twice still records it once. The task name is
 * schemas.ts PROCESS_EVENTS_TASK.
 */
export const replayParkedEvent = (tx: Tx, tenantId: string, id: string) =>
  tx<{ id: string }[]>`
    with replayed as (
      update analytics.event_inbox set status = 'received', last_error = null
       where id = ${id} and status = 'parked'
      returning id
    )
    select r.id, graphile_worker.add_job('analytics__process_events', json_build_object('tenantId', ${tenantId}::text, 'eventIds', array[r.id])) is not null as queued
      from replayed r`.then((r) => r.length > 0)
