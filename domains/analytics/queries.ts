import type postgres from 'postgres'
import type { Queryable, Sql, Tx } from '../../lib/db.js'

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
 * tenant. Returns CTEs to place in the caller's WITH list (they are data-modifying, so they must sit at its top
 * level): `analytics_event_rows`, `analytics_event_firsts`, `analytics_event_keys_new` and `analytics_events_new`
 * (the events added, `returning id`). A hot path stays one round trip. Exactly once by dedupe key across every
 * partition: the keys go into analytics.event_keys first (`on conflict do nothing`), and only the rows whose key was
 * new (the first of the relation for a key repeated in it) or that have no key become events.
 *
 * The days are not known before the statement: a day without its partition lands in the default partition
 * (migration 0021), which analytics__create_partitions empties into the day's own.
 */
export const insertEventsFrom = (tx: Tx, relation: postgres.Fragment) =>
  tx`
    analytics_event_rows as (
      select (select core.current_tenant_id()) as tenant_id, row_number() over () as ord, r.*
        from (${relation}) r
    ), analytics_event_firsts as (
      select distinct on (dedupe_key) ord, dedupe_key, occurred_at from analytics_event_rows
       where dedupe_key is not null order by dedupe_key, ord
    ), analytics_event_keys_new as (
      insert into analytics.event_keys (tenant_id, dedupe_key, occurred_at)
      select (select core.current_tenant_id()), dedupe_key, occurred_at from analytics_event_firsts
      on conflict (tenant_id, dedupe_key) do nothing
      returning dedupe_key
    ), analytics_events_new as (
      insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source)
      select r.tenant_id, r.name, r.lead_id, r.occurred_at, coalesce(r.properties, '{}'), r.dedupe_key, r.source
        from analytics_event_rows r
       where r.dedupe_key is null
          or r.ord in (select f.ord from analytics_event_firsts f join analytics_event_keys_new k on k.dedupe_key = f.dedupe_key)
       order by r.ord
      returning id
    )`

/**
 * Every event of a batch in one statement, in the order given (`ord`). Exactly once by dedupe key across every
 * partition: the batch's keys (the first row of a key repeated in the batch) go into analytics.event_keys with
 * `on conflict do nothing`, and only the rows whose key that insert returned, plus the rows without a key, become
 * events. A concurrent transaction with the same key waits on the key's row and then adds nothing. Returns how many
 * were new.
 */
export const insertEvents = (tx: Tx, rows: (EventRecord & { ord: number })[]) =>
  tx`
    with r as (
      select (select core.current_tenant_id()) as tenant_id, x.*
        from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
          as x(ord int, name text, lead_id uuid, occurred_at timestamptz, properties jsonb, dedupe_key text, source text,
               event_id uuid, type text, anonymous_id text, session_id text, context jsonb,
               acq_source text, acq_channel text, referrer_host text, utm jsonb, click_id jsonb, device text, browser text,
               browser_version text, os text, os_version text, is_bot boolean, country text, country_from text)
    ), firsts as (
      select distinct on (dedupe_key) ord, dedupe_key, occurred_at from r where dedupe_key is not null order by dedupe_key, ord
    ), keys as (
      insert into analytics.event_keys (tenant_id, dedupe_key, occurred_at)
      select (select core.current_tenant_id()), dedupe_key, occurred_at from firsts
      on conflict (tenant_id, dedupe_key) do nothing
      returning dedupe_key
    )
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source, event_id, type, anonymous_id, session_id, context,
                                  acq_source, acq_channel, referrer_host, utm, click_id, device, browser, browser_version, os, os_version, is_bot,
                                  country, country_from)
    select r.tenant_id, r.name, r.lead_id, r.occurred_at, coalesce(r.properties, '{}'), r.dedupe_key, r.source,
           r.event_id, r.type, r.anonymous_id, r.session_id, r.context,
           r.acq_source, r.acq_channel, r.referrer_host, r.utm, r.click_id, r.device, r.browser, r.browser_version, r.os, r.os_version, r.is_bot,
           r.country, r.country_from
      from r
     where r.dedupe_key is null or r.ord in (select f.ord from firsts f join keys k on k.dedupe_key = f.dedupe_key)
     order by r.ord
    returning event_id`.then((r) => r as unknown as { eventId: string | null }[])

/**
 * A group commit's client events (POST /v1/events) as columns: one array per column, all of the same length, in the
 * order to add them. Ids are distinct (the caller keeps the first of an id repeated in its flush). JSON columns come
 * as their JSON text (`context` as the validated objects, serialized here), enrichment columns null for none.
 */
export interface IntakeColumns {
  eventId: string[]
  name: string[]
  type: string[]
  occurredAt: string[]
  leadId: (string | null)[]
  anonymousId: (string | null)[]
  sessionId: (string | null)[]
  /** JSON texts of objects (schemas.ts propertiesJson: the text whose size was validated). */
  properties: string[]
  /** The validated context objects (JSON values), serialized once for the whole column. */
  context: unknown[]
  source: string[]
  acqSource: (string | null)[]
  acqChannel: (string | null)[]
  referrerHost: (string | null)[]
  utm: (string | null)[]
  clickId: (string | null)[]
  device: (string | null)[]
  browser: (string | null)[]
  browserVersion: (string | null)[]
  os: (string | null)[]
  osVersion: (string | null)[]
  /** 't' or 'f'. */
  isBot: ('t' | 'f' | null)[]
  country: (string | null)[]
  countryFrom: (string | null)[]
}

/**
 * The intake's insert: every client event of a group commit in one statement, from arrays (unnest: no per-row JSON
 * keys to send and take apart, measured cheaper than jsonb_to_recordset of the same rows), under the transaction's
 * tenant. Exactly once across partitions as insertEvents: the keys (`evt:<id>`, the id in PostgreSQL's own spelling)
 * go into analytics.event_keys with `on conflict do nothing`, and only the rows whose key that insert returned become
 * events; a concurrent transaction with the same id waits on its key and then adds nothing. The ids being distinct,
 * no "first of the batch" step is needed. Returns the ids stored now.
 */
export const insertIntakeEvents = (tx: Tx, c: IntakeColumns) => {
  // Each column as one array literal, written here: postgres.js would run every element through its serializer (JSON
  // text through JSON.stringify again) and two regex passes; a string passes through its array serializer as it is.
  const a = (values: (string | null)[]) => arrayLiteral(values) as never
  const j = (values: (string | null)[]) => arrayLiteral(values, true) as never
  // The two large JSON columns as one JSON array each (a `text` parameter: postgres.js would JSON.stringify a jsonb
  // one again), taken apart by jsonb_array_elements in the same ROWS FROM: as a jsonb[] literal every `"` of every
  // document was escaped once more in JavaScript and read back character by character by array_in. `properties` are
  // already JSON texts (joined, not serialized again); the contexts are serialized in one call.
  const properties = `[${c.properties.join(',')}]` as never
  const context = JSON.stringify(c.context) as never
  return tx<{ eventId: string }[]>`
    with r as (
      select 'evt:' || x.event_id::text as dedupe_key, x.*
        from rows from (
               unnest(${a(c.eventId)}::uuid[], ${a(c.name)}::text[], ${a(c.type)}::text[], ${a(c.occurredAt)}::timestamptz[],
                      ${a(c.leadId)}::uuid[], ${a(c.anonymousId)}::text[], ${a(c.sessionId)}::text[]),
               jsonb_array_elements(${properties}::text::jsonb),
               jsonb_array_elements(${context}::text::jsonb),
               unnest(${a(c.source)}::text[], ${a(c.acqSource)}::text[], ${a(c.acqChannel)}::text[],
                      ${a(c.referrerHost)}::text[], ${j(c.utm)}::jsonb[], ${j(c.clickId)}::jsonb[], ${a(c.device)}::text[],
                      ${a(c.browser)}::text[], ${a(c.browserVersion)}::text[], ${a(c.os)}::text[], ${a(c.osVersion)}::text[],
                      ${a(c.isBot)}::boolean[], ${a(c.country)}::text[], ${a(c.countryFrom)}::text[]))
          with ordinality
          as x(event_id, name, type, occurred_at, lead_id, anonymous_id, session_id, properties, context, source, acq_source, acq_channel,
               referrer_host, utm, click_id, device, browser, browser_version, os, os_version, is_bot, country, country_from, ord)
    ), keys as (
      insert into analytics.event_keys (tenant_id, dedupe_key, occurred_at)
      select (select core.current_tenant_id()), dedupe_key, occurred_at from r
      on conflict (tenant_id, dedupe_key) do nothing
      returning dedupe_key
    )
    insert into analytics.events (tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source, event_id, type, anonymous_id, session_id, context,
                                  acq_source, acq_channel, referrer_host, utm, click_id, device, browser, browser_version, os, os_version, is_bot,
                                  country, country_from)
    select (select core.current_tenant_id()), r.name, r.lead_id, r.occurred_at, r.properties, r.dedupe_key, r.source,
           r.event_id, r.type, r.anonymous_id, r.session_id, r.context,
           r.acq_source, r.acq_channel, r.referrer_host, r.utm, r.click_id, r.device, r.browser, r.browser_version, r.os, r.os_version, r.is_bot,
           r.country, r.country_from
      from r
     where r.dedupe_key in (select k.dedupe_key from keys k)
     order by r.ord
    returning event_id`
}

/**
 * A PostgreSQL array literal of text values (any element type's input function reads them), NULL for null. Built by
 * JSON.stringify, which is native and fast: a JSON array of strings is such a literal once its brackets become braces
 * (both quote every element and escape `"` and `\` alike; an unquoted null is NULL). They differ only where JSON
 * writes other escapes (`\n`, `\u0001`: PostgreSQL would read `n`, `u0001`), i.e. for a value holding a control
 * character, which JSON.stringify's own output never holds: `jsonTexts` says the values are such output (JSON text),
 * otherwise any backslash sends the column the slow way, element by element.
 */
export function arrayLiteral(values: readonly (string | null)[], jsonTexts = false): string {
  const json = JSON.stringify(values)
  if (jsonTexts || json.indexOf('\\') === -1) return `{${json.slice(1, -1)}}`
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    out += (i > 0 ? ',' : '') + (v === null || v === undefined ? 'NULL' : `"${v.replace(/["\\]/g, '\\$&')}"`)
  }
  return out + '}'
}

/** Retention: up to `limit` of a tenant's events older than `days` days, oldest first; returns how many went. */
export const deleteEventsOlderThan = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx`
    delete from analytics.events e using (
      select id, occurred_at from analytics.events
       where tenant_id = ${tenantId} and occurred_at < now() - make_interval(days => ${days})
       order by occurred_at limit ${limit}) d
     where e.id = d.id and e.occurred_at = d.occurred_at`
    .then((r) => r.count)

/** Retention: up to `limit` of a tenant's dedupe keys of events before `before` (days whose partitions were dropped). */
export const deleteEventKeysBefore = (tx: Tx, tenantId: string, before: Date, limit: number) =>
  tx`
    delete from analytics.event_keys k using (
      select dedupe_key from analytics.event_keys
       where tenant_id = ${tenantId} and occurred_at < ${before}
       limit ${limit}) d
     where k.tenant_id = ${tenantId} and k.dedupe_key = d.dedupe_key`
    .then((r) => r.count)

// ---------------------------------------------------------------------------------------------------------------
// Partitions (migration 0021): the runtime role owns nothing, so it asks three narrow definer functions.

/** Creates the partitions of these UTC days (YYYY-MM-DD) that do not exist yet; returns how many it created. */
export const ensureEventPartitions = (tx: Queryable, days: string[]) =>
  tx<{ created: number }[]>`select analytics.ensure_event_partitions(${days}::date[]) as created`.then((r) => r[0]!.created)

/** Yesterday through `ahead` days ahead, and the days of rows in the default partition (moved into their own). */
export const prepareEventPartitions = (sql: Queryable, ahead: number) =>
  sql<{ created: number }[]>`select analytics.prepare_event_partitions(${ahead}) as created`.then((r) => r[0]!.created)

/** Drops the day partitions wholly older than `keepDays` days; returns the first moment kept and what went. */
export const dropEventPartitions = (sql: Queryable, keepDays: number) =>
  sql<{ keptFrom: Date; dropped: string[] }[]>`select kept_from, dropped from analytics.drop_event_partitions(${keepDays})`.then((r) => r[0]!)

/** The event partitions that exist, oldest first (for operators and tests). */
export const listEventPartitions = (sql: Queryable) =>
  sql<{ name: string }[]>`
    select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = 'analytics.events'::regclass order by c.relname`.then((r) => r.map((x) => x.name))

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

/**
 * The leads of client events about to be recorded at intake (the same rules as lockInboxEvents): a client's lead id
 * that names no lead of this tenant is dropped, a merged lead's becomes its survivor's, and an event without one gets
 * its visitor's linked lead. Only events that end up with a lead are returned. Arrays, not a document: three columns.
 */
export const resolveIntakeLeads = (tx: Tx, rows: { id: string; leadId: string | null; anonymousId: string | null }[]) =>
  tx<{ id: string; leadId: string; clientLead: boolean; phoneE164: string | null }[]>`
    select x.id, x.lead_id, x.client_lead, p.phone_e164
      from (
        select r.id, coalesce(l.merged_into, l.id, vl.merged_into, vl.id) as lead_id, l.id is not null as client_lead
          from unnest(${arrayLiteral(rows.map((r) => r.id)) as never}::uuid[], ${arrayLiteral(rows.map((r) => r.leadId)) as never}::uuid[],
                      ${arrayLiteral(rows.map((r) => r.anonymousId)) as never}::text[])
                 as r(id, lead_id, anonymous_id)
          left join marketing.leads l on l.id = r.lead_id
          left join analytics.identities v on l.id is null and v.anonymous_id = r.anonymous_id
          left join marketing.leads vl on vl.id = v.lead_id
         where l.id is not null or vl.id is not null
      ) x
      -- The lead's phone, for the country (as leadPhones reads it): in the same round trip, since the 202 waits.
      left join marketing.leads p on p.id = x.lead_id`

export const deleteInboxEvents = (tx: Tx, ids: string[]) =>
  tx`delete from analytics.event_inbox where id = any(${ids}::uuid[])`

export const parkInboxEvent = (tx: Tx, id: string, error: string) =>
  tx`update analytics.event_inbox set status = 'parked', attempts = attempts + 1, last_error = ${error} where id = ${id}`

/**
 * Experiment goals, as the body of a CTE in the results statement: per variation and goal (told apart by `ord`), the
 * units of `units` (columns lead_id, assigned_at, variation_key) with at least one of the goal's events within the
 * window after their assignment (`converted`), and the sum and sum of squares of the per-unit value (the number of
 * events, or the sum of a numeric property; other values count 0), from which the mean and variance over all units
 * follow (units without events add 0). One pass over the goals' events since `since` (the phase's start: no window
 * opens before it), by (tenant, name, occurred_at), hash-joined to the units: never a probe per unit.
 */
export const goalTotalsFrom = (tx: Tx, units: postgres.Fragment, goals: { ord: number; event: string; windowHours: number; property: string | null }[], since: Date) => tx`
  select x.variation_key, x.ord, count(*)::int as converted, sum(x.value)::float8 as total, sum(x.value * x.value)::float8 as total_sq
    from (
      select u.variation_key, g.ord, u.lead_id,
             sum(case when g.property is null then 1
                      when jsonb_typeof(e.properties -> g.property) = 'number' then (e.properties ->> g.property)::numeric
                      else 0 end) as value
        from jsonb_to_recordset(${tx.json(goals as never)}::jsonb) as g(ord int, event text, "windowHours" int, property text)
        join analytics.events e on e.name = g.event
        join (${units}) u on u.lead_id = e.lead_id
       where e.name = any(${goals.map((g) => g.event)}::text[]) and e.occurred_at >= ${since} and e.lead_id is not null
         and e.occurred_at >= u.assigned_at and e.occurred_at < u.assigned_at + make_interval(hours => g."windowHours")
       group by 1, 2, 3
    ) x
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

// ---------------------------------------------------------------------------------------------------------------
// The live feed (GET /v1/analytics/live): events committed after a snapshot, and the notifications that say so.

/**
 * What an API process listens on; the statement trigger (migrations 0024, 0039) notifies it with the inserting tenant
 * (or '*'), or with a small statement's rows themselves (live.ts parseNotification).
 */
export const EVENTS_COMMITTED_CHANNEL = 'analytics_events'

export interface LiveEventRow {
  id: string
  /** The writing transaction (xid8, as text): what the JS side tests against a snapshot. */
  xactId: string
  name: string
  occurredAt: Date
  leadId: string | null
  source: string | null
  acqSource: string | null
  acqChannel: string | null
  country: string | null
  device: string | null
  browser: string | null
  os: string | null
  properties: Record<string, unknown>
}

/**
 * The tenant's events committed after snapshot `after` (pg_snapshot text) and visible now, in transaction then insert
 * order, with the snapshot they were read under: the next call passes it as `after`, so consecutive calls see every
 * commit exactly once whatever the order transactions took ids and committed in. The statement's own snapshot is
 * pg_current_snapshot() (the active one), so rows and snapshot agree. Not visible in `after` means: the writing
 * transaction is at or beyond its xmax, or was in progress (its xip list); both are index ranges. `after` null: only
 * the snapshot. Under withTenant: RLS keeps the rows the tenant's even if the argument lied.
 */
export const eventsCommittedAfter = async (tx: Tx, tenantId: string, after: string | null, limit: number | null) => {
  const columns = tx`e.id::text as id, e.xact_id::text as xact_id, e.name, e.occurred_at, e.lead_id, e.source, e.acq_source, e.acq_channel,
                     e.country, e.device, e.browser, e.os, e.properties`
  // Two index ranges, not one scan with an OR: the tenant's older events are never touched.
  const rows = await tx<(Partial<LiveEventRow> & { snapshot: string })[]>`
    with s as materialized (select pg_current_snapshot() as snap)
    select s.snap::text as snapshot, e.*
      from s left join lateral (
        select * from (
          select ${columns} from analytics.events e
           where ${after === null ? tx`false` : tx`e.tenant_id = ${tenantId} and e.xact_id >= pg_snapshot_xmax(${after}::pg_snapshot)`}
          union all
          select ${columns} from analytics.events e
           where ${after === null ? tx`false` : tx`e.tenant_id = ${tenantId} and e.xact_id = any(array(select pg_snapshot_xip(${after}::pg_snapshot)))`}
        ) e
         order by e.xact_id::xid8, e.id::bigint
         ${limit === null ? tx`` : tx`limit ${limit}`}
      ) e on true`
  return {
    snapshot: rows[0]!.snapshot,
    rows: rows.filter((r) => r.id != null).map(({ snapshot: _, ...r }) => r as LiveEventRow),
  }
}

/**
 * LISTENs on a connection of its own (postgres.js opens one per sql; it reconnects and listens again by itself).
 * `onListen` runs on every (re)connection: notifications sent while it was down are lost, so the caller rereads.
 */
export const listenForCommittedEvents = (sql: Sql, onPayload: (payload: string) => void, onListen: () => void) =>
  sql.listen(EVENTS_COMMITTED_CHANNEL, onPayload, onListen)
