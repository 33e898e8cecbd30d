import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { type Sql, setTenant, type Tx, withTenant } from '../../lib/db.js'
import { AppError, isAppError } from '../../lib/errors.js'
import { GroupCommit, type GroupCommitOptions, isUnavailableError } from '../../lib/group-commit.js'
import { decodeCursor, encodeCursor } from '../../lib/pagination.js'
import { leadPhones } from '../marketing/leads/service.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { enrichEvent } from './enrichment/enrich.js'
import { linkAnonymousIds } from './platform-events.js'
import type { Enrichment } from './enrichment/schemas.js'
import * as q from './queries.js'
import { type Attribution, type CreateSiteKeyBody, type EventRow, type IntakeEvent, propertiesJson, type SiteKeyView } from './schemas.js'

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
  return (await insertEventRows(tx, rows)).length
}

async function insertEventRows(tx: Tx, rows: readonly EventRow[]) {
  const records = rows.map((r, ord) => ({
    ord,
    name: r.name,
    lead_id: r.leadId ?? null,
    occurred_at: r.occurredAt instanceof Date ? r.occurredAt.toISOString() : r.occurredAt,
    properties: r.properties ?? {},
    dedupe_key: r.dedupeKey ?? null,
    source: r.source ?? null,
    event_id: r.eventId ?? null,
    type: r.type ?? null,
    anonymous_id: r.anonymousId ?? null,
    session_id: r.sessionId ?? null,
    context: r.context ?? null,
    ...(r.enrichment ? enrichmentColumns(r.enrichment) : r.attribution ? attributionColumns(r.attribution) : enrichmentColumns(null)),
  }))
  await ensurePartitionsFor(tx, records.map((r) => r.occurred_at))
  return q.insertEvents(tx, records)
}

// ---------------------------------------------------------------------------------------------------------------
// Partitions: analytics.events has one per UTC day (migration 0021).

/** Days ahead the cron task keeps ready, so the day's first events never wait for a partition to be created. */
export const PARTITION_DAYS_AHEAD = 7
/** Days this process knows to have a partition: the common case costs no round trip. */
const knownDays = new Set<string>()
const KNOWN_DAYS_MAX = 2000

const DAY_MS = 86_400_000
/** 'YYYY-MM-DD' per UTC day number: formatting a Date per event cost more than the rest of this check. */
const dayNames = new Map<number, string>()
const utcDay = (iso: string) => {
  const t = Date.parse(iso)
  if (Number.isNaN(t)) return null
  const day = Math.floor(t / DAY_MS)
  let name = dayNames.get(day)
  if (name === undefined) {
    if (dayNames.size >= KNOWN_DAYS_MAX) dayNames.clear()
    dayNames.set(day, (name = new Date(day * DAY_MS).toISOString().slice(0, 10)))
  }
  return name
}

/**
 * Makes sure the days of these timestamps have their partitions, before the insert that needs them: late data (a
 * day long past) or a day the cron task has not reached yet is created on demand, through the narrow definer
 * function (the runtime role cannot create tables). Days seen before cost nothing. Should a day be missing anyway
 * (dropped by retention since), its rows land in the default partition, never in an error.
 */
async function ensurePartitionsFor(tx: Tx, timestamps: string[]): Promise<void> {
  const missing = new Set<string>()
  for (const ts of timestamps) {
    const day = utcDay(ts)
    if (day && !knownDays.has(day)) missing.add(day)
  }
  if (missing.size === 0) return
  const days = [...missing]
  // More than a call may name is a malformed batch (years of late data at once): the default partition takes it.
  if (days.length > 400) return
  await q.ensureEventPartitions(tx, days)
  if (knownDays.size + days.length > KNOWN_DAYS_MAX) knownDays.clear()
  for (const d of days) knownDays.add(d)
}

/** The cron task's work: yesterday through PARTITION_DAYS_AHEAD ahead, and the default partition emptied into days. */
export const prepareEventPartitions = (sql: Sql, ahead = PARTITION_DAYS_AHEAD) => q.prepareEventPartitions(sql, ahead)

/**
 * Retention's cross-tenant part (domains/privacy/retention.ts): drops the day partitions wholly older than
 * `keepDays`, which must be at least the longest period any tenant keeps (the function refuses otherwise). Returns
 * the first moment kept (dedupe keys before it may go) and the partitions dropped.
 */
export async function dropEventPartitionsOlderThan(sql: Sql, keepDays: number): Promise<{ keptFrom: Date; dropped: string[] }> {
  const result = await q.dropEventPartitions(sql, keepDays)
  // A dropped day must be created again if late data for it arrives.
  if (result.dropped.length > 0) knownDays.clear()
  return result
}

export const listEventPartitions = (sql: Sql) => q.listEventPartitions(sql)

/** A platform event's attribution (lead.created) as the acquisition columns; the device columns stay null. */
const attributionColumns = (a: Attribution) => ({
  ...enrichmentColumns(null),
  acq_source: a.source,
  acq_channel: a.channel,
  referrer_host: a.referrerHost ?? null,
  utm: a.utm ?? null,
  country: a.country ?? null,
  country_from: a.countryFrom ?? null,
})

/** An Enrichment as the event's columns (migration 0020); all null when the event was not enriched. */
const enrichmentColumns = (e: Enrichment | null) => ({
  acq_source: e?.source ?? null,
  acq_channel: e?.channel ?? null,
  referrer_host: e?.referrerHost ?? null,
  utm: e?.utm ?? null,
  click_id: e?.clickId ?? null,
  device: e?.device ?? null,
  browser: e?.browser.name ?? null,
  browser_version: e?.browser.version ?? null,
  os: e?.os.name ?? null,
  os_version: e?.os.version ?? null,
  is_bot: e?.isBot ?? null,
  country: e?.country?.code ?? null,
  country_from: e?.country?.from ?? null,
})

/**
 * The same, for a producer that derives its events from rows it writes in the same statement (WhatsApp ingestion
 * records each new message's event in the statement that stores the messages): returns CTEs to place in the
 * caller's WITH list (`analytics_events_new` returns the ids added). `relation` selects name, lead_id, occurred_at,
 * properties, dedupe_key and source. Exactly once by dedupe key, like recordEvents.
 */
export const recordEventsFrom = q.insertEventsFrom

// ---------------------------------------------------------------------------------------------------------------
// Site keys: a website's public credential for sending events.

const newSiteKey = () => `ws_${randomBytes(16).toString('hex')}`

/** Who changes a site key, for the audit log. */
export interface SiteKeyActor { tenantId: string; actor: string; requestId: string | null }

export const createSiteKey = (sql: Sql, who: SiteKeyActor, body: CreateSiteKeyBody): Promise<SiteKeyView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const key = await q.insertSiteKey(tx, who.tenantId, { name: body.name, publicKey: newSiteKey(), allowedOrigins: [...new Set(body.allowedOrigins)] })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'site_key.created', targetType: 'site_key', targetId: key.id, details: { allowedOrigins: key.allowedOrigins }, requestId: who.requestId ?? undefined })
    return key
  })

export const listSiteKeys = (sql: Sql, tenantId: string, includeArchived: boolean): Promise<SiteKeyView[]> =>
  withTenant(sql, tenantId, (tx) => q.listSiteKeys(tx, includeArchived))

/** Archived keys answer 410 within SITE_KEY_TTL_MS (the intake's cache). Archiving twice is harmless. */
export const archiveSiteKey = (sql: Sql, who: SiteKeyActor, id: string): Promise<SiteKeyView | null> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const key = await q.archiveSiteKey(tx, id)
    if (key) await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'site_key.archived', targetType: 'site_key', targetId: id, requestId: who.requestId ?? undefined })
    return key
  })

export interface PublicSiteKey { id: string; tenantId: string; allowedOrigins: string[] }

/** Short, so an archived key or a changed origin list takes effect quickly; long enough that a busy page costs no lookups. */
export const SITE_KEY_TTL_MS = 30_000
const SITE_KEY_CACHE_MAX = 5_000
const siteKeys = new Map<string, { row: q.PublicSiteKeyRow; until: number }>()

/** The site key a request names: 404 for an unknown one, 410 for an archived key (or a tenant no longer active). */
export async function loadSiteKey(sql: Sql, publicKey: string): Promise<PublicSiteKey> {
  let row: q.PublicSiteKeyRow | null = null
  // Keys have one shape; anything else is not worth a database round trip.
  if (/^ws_[a-f0-9]{32}$/.test(publicKey)) {
    const now = Date.now()
    const hit = siteKeys.get(publicKey)
    if (hit && hit.until > now) row = hit.row
    else {
      row = await q.findSiteKey(sql, publicKey)
      // Unknown keys are not cached: random keys must not push real ones out.
      if (row) {
        if (siteKeys.size >= SITE_KEY_CACHE_MAX) siteKeys.delete(siteKeys.keys().next().value!)
        siteKeys.set(publicKey, { row, until: now + SITE_KEY_TTL_MS })
      }
    }
  }
  if (!row) throw new AppError('NOT_FOUND', 'no such site key')
  if (row.status !== 'active' || row.tenantStatus !== 'active') throw new AppError('GONE', 'this site key no longer accepts events')
  return { id: row.id, tenantId: row.tenantId, allowedOrigins: row.allowedOrigins }
}

/** The browser's Origin against the key's list. Absent (a server, curl) is not a browser and not refused. */
export const siteOriginAllowed = (key: PublicSiteKey, origin: string | undefined) =>
  origin === undefined || key.allowedOrigins.includes(origin.toLowerCase())

// ---------------------------------------------------------------------------------------------------------------
// Intake: the event inbox, group-committed with its job.

export interface EventBatch {
  tenantId: string
  source: 'api' | 'site'
  events: IntakeEvent[]
}
export interface BatchResult { accepted: number; duplicates: number }

const isUnstorableValue = (err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code
  return (typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code)) || err instanceof RangeError
}

const inboxRecord = (source: 'api' | 'site') => (e: IntakeEvent): q.InboxEventRecord => ({
  id: e.id, name: e.name, type: e.type, occurred_at: e.occurredAt, anonymous_id: e.anonymousId ?? null, lead_id: e.leadId ?? null,
  session_id: e.sessionId ?? null, properties: e.properties, context: e.context, source,
})

/**
 * Durable intake for event batches (lib/group-commit.ts): requests arriving while a flush is in flight are written
 * together by the next one, which records their events straight into analytics.events (recordIntake: enriched,
 * deduped, each tenant under its row-level security) in one transaction. A request is answered only after that
 * commit. A request PostgreSQL refuses, retried alone, goes to the event inbox with its analytics__process_events
 * job instead (analytics.store_events), where processing records its events one by one and parks the offender.
 */
export class EventInbox {
  private readonly commit: GroupCommit<EventBatch, BatchResult>

  constructor(private readonly sql: Sql, private readonly options: Omit<GroupCommitOptions, 'noun'> & { onError?: (err: unknown) => void } = {}) {
    // A flush carries whole requests; 20 of up to 1,000 events each keeps one statement's document bounded. Two
    // flushes in flight: a flush now records the events themselves (indexes, triggers, enrichment), work that two
    // backends share across cores; commits add no job and no graphile NOTIFY to serialize on. Measured in
    // bench:analytics-intake, same machine state: 0.26× COPY with one, 0.41× with two.
    this.commit = new GroupCommit((batch, signal) => this.flush(batch, signal), { maxBatch: 20, maxConcurrentFlushes: 2, ...options, noun: 'event batch' })
  }

  store(batch: EventBatch): Promise<BatchResult> {
    return this.commit.add(batch)
  }

  private async flush(batch: EventBatch[], signal: AbortSignal): Promise<BatchResult[]> {
    let stored: { tenantId: string; id: string }[]
    try {
      if (signal.aborted) throw new AppError('UNAVAILABLE', 'storing the events took too long; retry later', { headers: { 'retry-after': '2' } })
      stored = await recordIntake(this.sql, batch)
    } catch (err) {
      if (isAppError(err)) throw err
      this.options.onError?.(err)
      if (isUnstorableValue(err)) throw new AppError('BAD_REQUEST', 'the batch holds a value that cannot be stored', { cause: err })
      // Several requests: the group commit retries each alone. One request that PostgreSQL refused for a reason of
      // its own (a constraint, a trigger): the inbox takes it, and processing records its events one by one and
      // parks only the offender.
      if (batch.length > 1 || isUnavailableError(err)) throw new AppError('UNAVAILABLE', 'the events could not be stored; retry later', { headers: { 'retry-after': '2' }, cause: err })
      try {
        // The inbox's rows, built only now: the direct write (the common case) never needs them.
        const byTenant = new Map<string, q.InboxEventRecord[]>()
        for (const b of batch) {
          const rows = byTenant.get(b.tenantId) ?? []
          if (rows.length === 0) byTenant.set(b.tenantId, rows)
          rows.push(...b.events.map(inboxRecord(b.source)))
        }
        stored = await q.storeInboxEvents(this.sql, [...byTenant].map(([tenantId, rows]) => ({ tenantId, rows })))
      } catch (inboxErr) {
        this.options.onError?.(inboxErr)
        throw new AppError('UNAVAILABLE', 'the events could not be stored; retry later', { headers: { 'retry-after': '2' }, cause: inboxErr })
      }
    }
    // Each new id counts for the first request (in arrival order) of this flush that carried it; every other copy is a
    // duplicate. Across the two flushes in flight, the one whose insert takes the key first counts it (the other waits
    // on the key's row and finds it taken).
    // Per tenant, not `tenant:id` strings: two concatenations and their hashing per event saved.
    const fresh = new Map<string, Set<string>>()
    for (const s of stored) {
      let ids = fresh.get(s.tenantId)
      if (!ids) fresh.set(s.tenantId, (ids = new Set()))
      ids.add(s.id)
    }
    return batch.map((b) => {
      const ids = fresh.get(b.tenantId)
      let accepted = 0
      if (ids) for (const e of b.events) if (ids.delete(e.id)) accepted++
      return { accepted, duplicates: b.events.length - accepted }
    })
  }
}

/** A client event of a flush, with its id in PostgreSQL's spelling (lower case), computed once. */
interface IntakeRow { event: IntakeEvent; source: 'api' | 'site'; id: string }

/**
 * The group commit's write: every request's events recorded straight into analytics.events, enriched, in one
 * transaction (one tenant after another, each under its own row-level security), so the 202 means stored, with no
 * second copy in an inbox and no job to move it. Dedupe is by `evt:<id>` in analytics.event_keys, as recordEvents': a
 * repeated id, in this flush or any earlier one, is stored once and counts for the first request that carried it.
 * Leads are resolved as processing does (lockInboxEvents' rules: a lead id not of this tenant dropped, a merged lead's
 * survivor, a linked visitor's lead), with their phones for the country, in one query pipelined with the tenant
 * setting: three round trips a flush (that, the insert, the commit).
 */
async function recordIntake(sql: Sql, batch: EventBatch[]): Promise<{ tenantId: string; id: string }[]> {
  // Per tenant, each id once (the first copy, in arrival order, is the one stored): ids compared in PostgreSQL's
  // spelling (lowercase), the one the stored key and the returned ids use.
  const byTenant = new Map<string, { ids: Set<string>; rows: IntakeRow[] }>()
  for (const b of batch) {
    let tenant = byTenant.get(b.tenantId)
    if (!tenant) byTenant.set(b.tenantId, (tenant = { ids: new Set(), rows: [] }))
    for (const event of b.events) {
      const id = event.id.toLowerCase()
      if (tenant.ids.has(id)) continue
      tenant.ids.add(id)
      tenant.rows.push({ event, source: b.source, id })
    }
  }
  return sql.begin(async (tx) => {
    const stored: { tenantId: string; id: string }[] = []
    for (const [tenantId, { rows }] of byTenant) {
      // The tenant setting and the lookup go together (postgres.js pipelines a transaction's queries in order): the
      // 202 waits for every round trip here.
      const [, resolved] = await Promise.all([
        setTenant(tx, tenantId),
        q.resolveIntakeLeads(tx, rows.map(({ event: e }) => ({ id: e.id, leadId: e.leadId ?? null, anonymousId: e.anonymousId ?? null }))),
      ])
      const leads = new Map(resolved.map((l) => [l.id, l]))
      await ensurePartitionsFor(tx, rows.map(({ event: e }) => e.occurredAt))
      const inserted = await q.insertIntakeEvents(tx, intakeColumns(rows, leads))
      // A tenant's server that knows both (an identify call, any event with leadId and anonymousId) links the visitor.
      await linkAnonymousIds(tx, rows.flatMap(({ event: e, id }) => {
        const lead = leads.get(id)
        return lead?.clientLead && e.anonymousId ? [{ anonymousId: e.anonymousId, leadId: lead.leadId, via: 'api' as const }] : []
      }))
      for (const r of inserted) stored.push({ tenantId, id: r.eventId })
    }
    return stored
  }) as Promise<{ tenantId: string; id: string }[]>
}

/** JSON text of shared read-only values (the memoized enrichment's utm and click id objects): serialized once. */
const jsonTexts = new WeakMap<object, string>()
const jsonTextOf = (value: object | null): string | null => {
  if (value === null) return null
  let text = jsonTexts.get(value)
  if (text === undefined) jsonTexts.set(value, (text = JSON.stringify(value)))
  return text
}

/**
 * A flush's client events as insertIntakeEvents' columns, enriched on the way (enrichEvent: the event's context and,
 * with a lead, the lead's phone), built in one pass: no row objects in between, and `properties` as the JSON text its
 * size was validated on (schemas.ts propertiesJson).
 */
function intakeColumns(rows: IntakeRow[], leads: Map<string, { leadId: string; phoneE164: string | null }>): q.IntakeColumns {
  const n = rows.length
  const c: q.IntakeColumns = {
    eventId: new Array(n), name: new Array(n), type: new Array(n), occurredAt: new Array(n), leadId: new Array(n), anonymousId: new Array(n),
    sessionId: new Array(n), properties: new Array(n), context: new Array(n), source: new Array(n), acqSource: new Array(n), acqChannel: new Array(n),
    referrerHost: new Array(n), utm: new Array(n), clickId: new Array(n), device: new Array(n), browser: new Array(n), browserVersion: new Array(n),
    os: new Array(n), osVersion: new Array(n), isBot: new Array(n), country: new Array(n), countryFrom: new Array(n),
  }
  for (let i = 0; i < n; i++) {
    const { event: e, source, id } = rows[i]!
    const lead = leads.get(id)
    const x = enrichEvent(enrichmentInputOf(e.context, lead?.phoneE164 ?? undefined))
    c.eventId[i] = e.id
    c.name[i] = e.name
    c.type[i] = e.type
    c.occurredAt[i] = e.occurredAt
    c.leadId[i] = lead?.leadId ?? null
    c.anonymousId[i] = e.anonymousId ?? null
    c.sessionId[i] = e.sessionId ?? null
    c.properties[i] = propertiesJson(e.properties)
    c.context[i] = e.context
    c.source[i] = source
    c.acqSource[i] = x.source
    c.acqChannel[i] = x.channel
    c.referrerHost[i] = x.referrerHost
    c.utm[i] = jsonTextOf(x.utm)
    c.clickId[i] = jsonTextOf(x.clickId)
    c.device[i] = x.device
    c.browser[i] = x.browser.name
    c.browserVersion[i] = x.browser.version
    c.os[i] = x.os.name
    c.osVersion[i] = x.os.version
    c.isBot[i] = x.isBot ? 't' : 'f'
    c.country[i] = x.country?.code ?? null
    c.countryFrom[i] = x.country?.from ?? null
  }
  return c
}

// ---------------------------------------------------------------------------------------------------------------
// Processing: inbox → analytics.events (requests the direct write refused, and replays).

export interface ProcessEventsResult { moved: number; parked: string[] }

const describe = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err)).slice(0, 2000)

const field = (v: unknown, key: string): unknown => (v && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined)

/**
 * enrichEvent's input from a stored event: its context (validated at intake as EventContext) and its lead's phone.
 * enrichEvent accepts anything, so a context stored before a schema change cannot make it fail.
 */
export const enrichmentInputOf = (context: unknown, phoneE164: string | undefined) => ({
  userAgent: field(context, 'userAgent'),
  referrer: field(field(context, 'page'), 'referrer'),
  pageUrl: field(field(context, 'page'), 'url'),
  utm: field(context, 'utm'),
  locale: field(context, 'locale'),
  phoneE164,
})

const eventRowOf = (phones: Map<string, string>) => (r: q.InboxEventRow): EventRow => ({
  name: r.name, leadId: r.leadId, occurredAt: r.occurredAt, properties: r.properties, dedupeKey: `evt:${r.id}`, source: r.source === 'site' ? 'site' : 'api',
  eventId: r.id, type: r.type, anonymousId: r.anonymousId, sessionId: r.sessionId, context: r.context,
  enrichment: enrichEvent(enrichmentInputOf(r.context, r.leadId ? phones.get(r.leadId) : undefined)),
})

async function moveEvents(sql: Sql, tenantId: string, ids: string[]): Promise<number> {
  return withTenant(sql, tenantId, async (tx) => {
    const rows = await q.lockInboxEvents(tx, ids)
    if (rows.length === 0) return 0
    // Enriched before rollup, in the same statement that records them; the batch's lead phones in one query.
    const phones = await leadPhones(tx, rows.flatMap((r) => (r.leadId ? [r.leadId] : [])))
    const added = await recordEvents(tx, rows.map(eventRowOf(phones)))
    // A tenant's server that knows both (an identify call, any event with leadId and anonymousId) links the visitor.
    const links = rows.flatMap((r) => (r.clientLead && r.leadId && r.anonymousId ? [{ anonymousId: r.anonymousId, leadId: r.leadId, via: 'api' as const }] : []))
    await Promise.all([linkAnonymousIds(tx, links), q.deleteInboxEvents(tx, rows.map((r) => r.id))])
    return added
  })
}

/**
 * Moves stored events of one tenant into analytics.events through recordEvents, in one transaction per batch
 * (dedupe key `evt:<id>`: a replayed job, or the same id again, adds nothing). Exactly once: an event is recorded
 * and leaves the inbox in the same transaction. A batch that fails is retried event by event so only the offender
 * fails; one that fails alone is parked in the inbox with its error (for an operator), and the rest commit.
 * An unavailable database fails the job (graphile-worker retries it) and the events wait in the inbox.
 */
export async function processEvents(sql: Sql, tenantId: string, ids: string[], isUnavailable: (err: unknown) => boolean): Promise<ProcessEventsResult> {
  const result: ProcessEventsResult = { moved: 0, parked: [] }
  for (let i = 0; i < ids.length; i += MOVE_BATCH) await moveOrRetryAlone(sql, tenantId, ids.slice(i, i + MOVE_BATCH), isUnavailable, result)
  return result
}

/** Parked client events (they failed alone, after their batch failed), newest first, a page at a time. */
export async function listParkedEvents(sql: Sql, tenantId: string, query: { limit: number; cursor?: string }) {
  const before = query.cursor ? decodeCursor(query.cursor, z.object({ receivedAt: z.coerce.date() })).receivedAt : null
  const rows = await withTenant(sql, tenantId, (tx) => q.listParkedEvents(tx, { limit: query.limit + 1, beforeReceivedAt: before }))
  const page = rows.slice(0, query.limit)
  const last = page.at(-1)
  return { data: page, nextCursor: rows.length > query.limit && last ? encodeCursor({ receivedAt: last.receivedAt.toISOString() }) : null }
}

/** Queues a parked event again (after fixing what made it fail); recorded in the audit log. False when not parked. */
export const replayParkedEvent = (sql: Sql, who: SiteKeyActor, eventId: string): Promise<boolean> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const queued = await q.replayParkedEvent(tx, who.tenantId, eventId)
    if (queued) await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'analytics_event.replayed', targetType: 'analytics_event', targetId: eventId, requestId: who.requestId ?? undefined })
    return queued
  })

/** Events moved per transaction: one intake request's worth. */
const MOVE_BATCH = 1000

async function moveOrRetryAlone(sql: Sql, tenantId: string, ids: string[], isUnavailable: (err: unknown) => boolean, result: ProcessEventsResult): Promise<void> {
  try {
    result.moved += await moveEvents(sql, tenantId, ids)
    return
  } catch (err) {
    if (isUnavailable(err)) throw err
  }
  for (const id of ids) {
    try {
      result.moved += await moveEvents(sql, tenantId, [id])
    } catch (err) {
      if (isUnavailable(err)) throw err
      await withTenant(sql, tenantId, (tx) => q.parkInboxEvent(tx, id, describe(err)))
      result.parked.push(id)
    }
  }
}

/** Experiment results: per variation and goal, units converted and the sums of their per-unit values (queries.ts, goalTotalsFrom). */
export const goalTotalsFrom = q.goalTotalsFrom
