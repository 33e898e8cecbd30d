import { PassThrough, type Readable } from 'node:stream'
import { z } from 'zod'
import { type Sql, type Tx, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { BigintId, decodeCursor, encodeCursor, keysetCursor } from '../../../lib/pagination.js'
import { findCurrentTenant, insertAuditEntry } from '../../tenancy/queries.js'
import { adoptMergedLeadConversations } from '../../conversations/queries.js'
import { adoptMergedLeadAssignments } from '../../experiments/queries.js'
import { leadCreated, leadMerged, leadStatusChanged, recordPlatformEvents } from '../../analytics/platform-events.js'
import { mergeDailyUniques } from '../../analytics/rollup-queries.js'
import { normalizeEmail } from './identity/email.js'
import { type CountryCode, normalizePhone, phoneMatchKey } from './identity/phone.js'
import { CSV_HEADER, leadCsvRow } from './csv.js'
import { LEAD_REFERENCES } from './lead-references.js'
import * as q from './queries.js'
import type { BulkLeadsBody, LeadFilter, LeadSighting, LeadStatus, LeadView, PatchLeadBody } from './schemas.js'
import { drained } from '../../../lib/streams.js'
import { attributeNewLeads, withLeadCampaigns } from './attribution.js'
import { adoptMergedAttribution } from './attribution-queries.js'
import type { EventRow } from '../../analytics/service.js'

// ---------------------------------------------------------------------------------------------------------
// Identity resolution: one person, one live lead per tenant.

export interface ResolveContext {
  tenantId: string
  /** Who caused it, for the merge record and interactions: `form:<id>`, `api_key:<id>`. */
  actor: string
  reason: string
  requestId: string | null
}

export interface Resolution {
  leadId: string
  created: boolean
  /** Leads this sighting proved to be the same person, now merged into leadId. */
  mergedIds: string[]
}

/** Rounds of "insert, else lock and update" before giving up; each lost round means another writer made progress. */
const MAX_ROUNDS = 5
const UNIQUE_VIOLATION = '23505'

/**
 * Finds the lead a sighting (email and/or phone key) belongs to, creating it or merging leads as needed, inside
 * the caller's transaction. Constraints decide, never a prior read:
 * 1. insert … on conflict do nothing: a person seen for the first time is created; a concurrent creator of the same
 *    key makes this wait and then do nothing (20 simultaneous submissions of one email make one lead).
 * 2. otherwise, in a savepoint: lock every live lead holding either key, oldest first, in one statement (one lock
 *    order for everyone). Two leads mean the sighting proved them one person: the newer ones are merged into the
 *    oldest. Then the survivor gets what it lacks.
 * 3. if that takes a key a concurrent writer has just claimed, the unique index refuses; the savepoint is rolled
 *    back, which also releases its row locks, and the next round finds and merges that writer's lead.
 * Before locking rows, resolutions of a known person take transaction-scoped advisory locks on their keys (sorted),
 * so they run one after the other instead of interleaving row locks across rounds (which deadlocks); WhatsApp
 * ingestion, which upserts one key in one statement, needs none.
 */
export async function resolveLead(tx: Tx, sighting: LeadSighting, ctx: ResolveContext): Promise<Resolution> {
  if (!sighting.email && !sighting.phoneKey) {
    // Nothing to recognize the person by (a form asking only for a name): every sighting is a new lead.
    const id = await q.insertLeadUnlessKnown(tx, ctx.tenantId, sighting)
    await recordLeadsCreated(tx, [{ id: id!, sighting }])
    return { leadId: id!, created: true, mergedIds: [] }
  }
  let serialized = false
  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const createdId = await q.insertLeadUnlessKnown(tx, ctx.tenantId, sighting)
    if (createdId) {
      await recordLeadsCreated(tx, [{ id: createdId, sighting }])
      return { leadId: createdId, created: true, mergedIds: [] }
    }
    if (!serialized) {
      // Only a known person needs it: a first sighting above holds no locks.
      await q.lockIdentityKeys(tx, ctx.tenantId, [sighting.email && `email:${sighting.email}`, sighting.phoneKey && `phone:${sighting.phoneKey}`].filter((k): k is string => !!k))
      serialized = true
    }

    const resolved = await tx
      .savepoint(async (sp) => {
        const stx = sp as unknown as Tx
        const matches = await q.lockLeadsByIdentity(stx, sighting.email, sighting.phoneKey)
        // The lead that held the key was merged away between the two statements: go round again.
        if (matches.length === 0) return null
        const survivor = matches[0]!
        const mergedIds: string[] = []
        for (const other of matches.slice(1)) {
          const matchedOn = { survivor: keysHeld(survivor, sighting), merged: keysHeld(other, sighting) }
          if (await mergeLeadInto(stx, survivor.id, other.id, { ...ctx, matchedOn })) mergedIds.push(other.id)
        }
        await q.applySighting(stx, survivor.id, sighting)
        return { leadId: survivor.id, created: false, mergedIds }
      })
      .catch((err: { code?: string }) => {
        if (err.code === UNIQUE_VIOLATION) return null
        throw err
      })
    if (resolved) return resolved
  }
  throw new AppError('UNAVAILABLE', 'too many simultaneous changes to this person; retry', { headers: { 'retry-after': '1' } })
}

/**
 * lead.created for leads created just now (analytics, platform-events.ts), with where they came from: the sighting's
 * source and details (a form's UTM and pages, a click-to-WhatsApp referral) and the phone for the country.
 */
export async function recordLeadsCreated(tx: Tx, leads: readonly { id: string; sighting: { source: string; sourceDetails: unknown; phoneE164: string | null; at: Date | string } }[]) {
  const events = leads.map(({ id, sighting: s }) =>
    leadCreated({ leadId: id, at: s.at, leadSource: s.source, sourceDetails: s.sourceDetails, phoneE164: s.phoneE164 }))
  // The campaign that brought each lead (first touch, attribution.ts), on its event too: issued after the leads'
  // insert on the same connection, so it runs after it even when the caller pipelines the two.
  if (leads.length > 0) {
    await attributeNewLeads(tx, leads.map((l, i) => ({ leadId: l.id, at: l.sighting.at, sourceDetails: l.sighting.sourceDetails, event: events[i]! })))
  }
  return recordPlatformEvents(tx, events)
}

/** Status events of leads, with the campaign of attributed leads on their milestones (attribution.ts). */
const recordLeadStatusEvents = async (tx: Tx, rows: EventRow[]) => recordPlatformEvents(tx, await withLeadCampaigns(tx, rows))

const keysHeld = (lead: q.IdentityMatch, s: LeadSighting) =>
  [s.email && lead.email === s.email ? 'email' : null, s.phoneKey && lead.phoneKey === s.phoneKey ? 'phone' : null].filter(Boolean)

/**
 * The merge rules the lead-references catalog names for its `combine` entries: rows of both leads combined by a rule
 * rather than moved. Each runs after the merged lead was released, in catalog order (the lead row first, so later
 * rules see the survivor as it now is).
 */
export const MERGE_RULES: Readonly<Record<string, (tx: Tx, survivorId: string, mergedId: string) => Promise<unknown>>> = {
  /** The survivor takes what it lacked from the merged lead (queries.ts, absorbMergedLead). */
  absorbMergedLead: async (tx, survivorId, mergedId) => {
    const status = await q.absorbMergedLead(tx, survivorId, mergedId)
    // A `new` survivor that takes the merged lead's status changed status: the funnel counts it.
    if (status) await recordLeadStatusEvents(tx, leadStatusChanged({ leadId: survivorId, from: status.from, to: status.to, at: status.at, actor: 'merge', milestones: false }))
  },
  /** The merged lead's bot conversations move, or end where the survivor has its own (conversations/queries.ts). */
  adoptConversations: (tx, survivorId, mergedId) => adoptMergedLeadConversations(tx, survivorId, mergedId),
  /** The merged lead's experiment assignments move; where both were assigned to a phase the earliest wins, the clash is recorded (experiments/queries.ts). */
  adoptAssignments: (tx, survivorId, mergedId) => adoptMergedLeadAssignments(tx, survivorId, mergedId),
  /** The merged lead's unique-lead days become the survivor's, a day both have collapsing to one (analytics/rollup-queries.ts). */
  combineDailyUniques: (tx, survivorId, mergedId) => mergeDailyUniques(tx, survivorId, mergedId),
  /** The survivor keeps the earlier of the two leads' first campaign touches (attribution-queries.ts). */
  adoptAttribution: (tx, survivorId, mergedId) => adoptMergedAttribution(tx, survivorId, mergedId),
}

const combineRules = LEAD_REFERENCES.flatMap((ref) => (ref.merge.kind === 'combine' ? [{ table: ref.table, rule: ref.merge.rule }] : []))
for (const { table, rule } of combineRules) {
  // A catalog entry naming a rule nobody wrote would silently leave its rows behind in every merge.
  if (!(rule in MERGE_RULES)) throw new Error(`lead-references: ${table} names merge rule ${rule}, which does not exist`)
}

/**
 * Merges `mergedId` into `survivorId` (both locked by the caller, or about to be), as the lead-references catalog
 * says: the merged lead leaves the live set; each `combine` entry's rule runs (the survivor absorbs the lead row,
 * takes over the bot conversations); every `move` entry's rows point at the survivor; `keep` and `follows` entries
 * stay as they are; and the merge is recorded with a snapshot of the merged lead. False when it was already merged.
 */
export async function mergeLeadInto(
  tx: Tx,
  survivorId: string,
  mergedId: string,
  ctx: ResolveContext & { matchedOn: unknown },
): Promise<boolean> {
  const snapshot = await q.releaseMergedLead(tx, mergedId, survivorId)
  if (!snapshot) return false
  for (const { rule } of combineRules) await MERGE_RULES[rule]!(tx, survivorId, mergedId)
  await q.moveHistoryAndRecordMerge(tx, {
    tenantId: ctx.tenantId, survivorId, mergedId, reason: ctx.reason, matchedOn: ctx.matchedOn, snapshot, actor: ctx.actor, requestId: ctx.requestId,
  })
  // After the move, so the event is filed under the survivor with the merged lead's events.
  await recordPlatformEvents(tx, [leadMerged({ survivorId, mergedId, at: new Date(), reason: ctx.reason })])
  return true
}

// ---------------------------------------------------------------------------------------------------------
// A person's WhatsApp number changed.

export interface PhoneChange {
  /** The live lead that held the old number (the sender of the `user_changed_number` notice). */
  leadId: string
  fromWaId: string
  toWaId: string
  phoneE164: string | null
  /** The identity key of the new number (phoneMatchKey, or `bsuid:` for a wa_id that is not a phone number). */
  phoneKey: string
  occurredAt: string
  /** The stored notice (whatsapp.messages.id), for the interaction. */
  messageId: string | null
  /** Once per notice: replays and redeliveries add no second interaction. */
  dedupeKey: string
}

/**
 * Moves leads to their new WhatsApp numbers, set-based, inside the caller's transaction: the lead's phone, identity
 * key and wa_id follow; its service windows and bot conversations carry on under the new wa_id; an interaction
 * `whatsapp_number_changed` records each change. When a live lead already holds the new number (the person wrote from
 * it before the notice arrived), the two are one person: they are merged with the usual merge (the older lead
 * survives, history moves), the survivor takes the bot conversations it lacks, and then takes the new number.
 * Returns, for each lead merged away here, the lead that survived it.
 */
export async function changeLeadPhone(tx: Tx, tenantId: string, rows: PhoneChange[]): Promise<Map<string, string>> {
  const mergedInto = new Map<string, string>()
  if (rows.length === 0) return mergedInto
  const changes = [...rows].sort((a, b) => (a.occurredAt < b.occurredAt ? -1 : a.occurredAt > b.occurredAt ? 1 : 0))
  const locked = await q.lockLeadsForPhoneChange(tx, [...new Set(changes.map((c) => c.leadId))], [...new Set(changes.map((c) => c.phoneKey))])
  const leads = new Map(locked.map((l) => [l.id, l]))
  const holderOf = new Map(locked.flatMap((l) => (l.phoneKey ? [[l.phoneKey, l.id] as const] : [])))
  const live = (id: string): string => {
    let current = id
    while (mergedInto.has(current)) current = mergedInto.get(current)!
    return current
  }

  const moves = new Map<string, q.PhoneMove>()
  const interactions: q.PhoneChangeInteraction[] = []
  for (const change of changes) {
    let leadId = live(change.leadId)
    const lead = leads.get(leadId)
    if (!lead) continue // merged away by someone else since it was read: its survivor will hear from the new number
    const holder = holderOf.get(change.phoneKey)
    let merged: string | null = null
    if (holder !== undefined && live(holder) !== leadId) {
      const other = leads.get(live(holder))!
      const [survivor, gone] = [lead, other].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1)) as [typeof lead, typeof lead]
      await mergeLeadInto(tx, survivor.id, gone.id, {
        tenantId, actor: 'whatsapp', reason: 'whatsapp_number_changed', requestId: null,
        matchedOn: { survivor: survivor.id === lead.id ? ['old_number'] : ['new_number'], merged: gone.id === lead.id ? ['old_number'] : ['new_number'] },
      })
      mergedInto.set(gone.id, survivor.id)
      const move = moves.get(gone.id)
      if (move) moves.delete(gone.id)
      merged = gone.id
      leadId = survivor.id
      if (move) moves.set(leadId, { ...move, lead_id: leadId })
    }
    for (const [key, id] of holderOf) if (id === leadId) holderOf.delete(key)
    holderOf.set(change.phoneKey, leadId)
    const previous = moves.get(leadId)
    moves.set(leadId, {
      lead_id: leadId, to_wa_id: change.toWaId, phone_e164: change.phoneE164, phone_key: change.phoneKey,
      from_wa_ids: [...new Set([...(previous?.from_wa_ids ?? []), ...(previous ? [previous.to_wa_id] : []), change.fromWaId])],
    })
    interactions.push({
      lead_id: leadId, occurred_at: change.occurredAt, message_id: change.messageId, dedupe_key: change.dedupeKey,
      details: { fromWaId: change.fromWaId, toWaId: change.toWaId, ...(merged ? { mergedLeadId: merged } : {}) },
    })
  }
  if (moves.size > 0) await q.applyPhoneMoves(tx, tenantId, [...moves.values()], interactions.map((i) => ({ ...i, lead_id: live(i.lead_id) })))
  return mergedInto
}

/** A person as the business knows them from outside (an import, an integration), normalized like a form's answers. */
export function sightingKeys(input: { email?: string | null; phone?: string | null }, defaultCountry?: CountryCode) {
  const email = input.email ? normalizeEmail(input.email) : null
  const phone = input.phone ? normalizePhone(input.phone, defaultCountry) : null
  return { email, phoneE164: phone?.e164 ?? null, phoneKey: phone ? phoneMatchKey(phone.e164) : null }
}

// ---------------------------------------------------------------------------------------------------------
// What other domains record about leads. This domain is the only writer of marketing.leads, lead_interactions,
// consents and lead_merges (domains/one-writer.test.ts keeps it so): WhatsApp ingestion, forms and the bot call
// these, set-based, inside their own transaction, so what they record commits with what caused it.

/** A WhatsApp sender seen in a message of a batch. */
export interface WhatsAppSighting {
  /** phoneMatchKey of the wa_id, or `bsuid:<id>` for a person hidden behind a username. */
  phoneKey: string
  phoneE164: string | null
  waId: string
  profileName: string | null
  /** `whatsapp`, or `whatsapp_ad` with the referral in sourceDetails: only a new lead takes them. */
  source: string
  sourceDetails: Record<string, unknown>
  at: Date | string
}

/**
 * The live lead of every WhatsApp sender of a batch, found or created in one statement by identity key (a constraint
 * decides, never a prior read). Sightings of one person fold into one row, in arrival order: the first one's source,
 * the latest wa_id and profile name, the earliest and latest times. Rows go sorted by key, so concurrent batches lock
 * leads in one order (no deadlocks). Returns each key's lead id.
 */
export async function upsertWhatsAppSenders(tx: Tx, tenantId: string, people: readonly WhatsAppSighting[]): Promise<Map<string, string>> {
  const byKey = new Map<string, q.WhatsAppSenderRecord>()
  for (const s of people) {
    const at = s.at instanceof Date ? s.at.toISOString() : s.at
    const p = byKey.get(s.phoneKey)
    if (!p) {
      byKey.set(s.phoneKey, {
        phone_key: s.phoneKey, phone_e164: s.phoneE164, wa_id: s.waId, profile_name: s.profileName, source: s.source,
        source_details: s.sourceDetails, first_seen_at: at, last_seen_at: at,
      })
    } else {
      p.wa_id = s.waId
      p.profile_name = s.profileName ?? p.profile_name
      if (at < p.first_seen_at) p.first_seen_at = at
      if (at > p.last_seen_at) p.last_seen_at = at
    }
  }
  if (byKey.size === 0) return new Map()
  const rows = [...byKey.values()].sort((a, b) => (a.phone_key < b.phone_key ? -1 : a.phone_key > b.phone_key ? 1 : 0))
  const leads = await q.upsertWhatsAppSenderRows(tx, tenantId, rows)
  const created = leads.filter((l) => l.created)
  if (created.length > 0) {
    await recordLeadsCreated(tx, created.map((l) => {
      const r = byKey.get(l.phoneKey)!
      return { id: l.id, sighting: { source: r.source, sourceDetails: r.source_details, phoneE164: r.phone_e164, at: r.first_seen_at } }
    }))
  }
  return new Map(leads.map((l) => [l.phoneKey, l.id]))
}

/** Something that happened with a lead, for its timeline. */
export interface Interaction {
  leadId: string
  /** `whatsapp_message`, `form_submitted`, `opt_out`, `handover`, … */
  type: string
  /** `whatsapp`, `web`, `api`, `system` */
  channel: string
  /** `lead`, `bot`, `api_key:<id>`, … (default `lead`) */
  actor?: string
  occurredAt: Date | string
  messageId?: string | null
  details?: unknown
  /** Set for interactions born from an outside event (a message, a submission): the same event never adds two. */
  dedupeKey?: string | null
}

/** Adds interactions in one statement under the transaction's tenant; known dedupe keys add nothing. Returns how many were new. */
export async function recordInteractions(tx: Tx, rows: readonly Interaction[]): Promise<number> {
  if (rows.length === 0) return 0
  return q.insertInteractions(tx, rows.map((r) => ({
    lead_id: r.leadId, type: r.type, channel: r.channel, actor: r.actor ?? 'lead',
    occurred_at: r.occurredAt instanceof Date ? r.occurredAt.toISOString() : r.occurredAt,
    message_id: r.messageId ?? null, details: r.details ?? {}, dedupe_key: r.dedupeKey ?? null,
  })))
}

/**
 * The same, for a producer that derives its interactions from rows it writes in the same statement (WhatsApp
 * ingestion adds each new message's interaction in the statement that stores the messages): returns the insert as a
 * part to embed as a CTE. `relation` selects lead_id, type, channel, actor, occurred_at, message_id, details and
 * dedupe_key.
 */
export const recordInteractionsFrom = q.insertInteractionsFrom

/** What a person agreed to (or refused), when, where and under which policy text. */
export interface Consent {
  leadId: string
  /** `web_form`, … */
  channel: string
  formId?: string | null
  submissionId?: string | null
  granted: boolean
  purpose: string
  policyVersion: string
  policyUrl?: string | null
  ip?: string | null
  userAgent?: string | null
  occurredAt: Date | string
}

/** Adds consents in one statement under the transaction's tenant. Callers make them once (the submission does). */
export async function recordConsents(tx: Tx, rows: readonly Consent[]): Promise<number> {
  if (rows.length === 0) return 0
  return q.insertConsents(tx, rows.map((r) => ({
    lead_id: r.leadId, channel: r.channel, form_id: r.formId ?? null, submission_id: r.submissionId ?? null, granted: r.granted,
    purpose: r.purpose, policy_version: r.policyVersion, policy_url: r.policyUrl ?? null, ip: r.ip ?? null, user_agent: r.userAgent ?? null,
    occurred_at: r.occurredAt instanceof Date ? r.occurredAt.toISOString() : r.occurredAt,
  })))
}

/** The same as a part of the caller's statement (a form submission records its consent with it). */
export const recordConsentsFrom = q.insertConsentsFrom

/** A change a bot flow makes to its lead (`set_lead_field`, `add_tags`, `remove_tags`, `set_status`). */
export type LeadChange =
  | { type: 'set_field'; field: string; value: string }
  | { type: 'add_tags'; tags: string[] }
  | { type: 'remove_tags'; tags: string[] }
  | { type: 'set_status'; status: LeadStatus }

/** Applies one change to the leads given (one statement; leads locked in id order). */
export async function changeLeads(tx: Tx, leadIds: readonly string[], change: LeadChange): Promise<void> {
  const ids = [...new Set(leadIds)]
  if (ids.length === 0) return
  switch (change.type) {
    case 'set_field':
      for (const id of ids) await q.setLeadField(tx, id, change.field, change.value)
      return
    case 'add_tags':
      await q.addLeadTags(tx, ids, change.tags)
      return
    case 'remove_tags':
      await q.removeLeadTags(tx, ids, change.tags)
      return
    case 'set_status': {
      const changed = await q.setLeadStatus(tx, ids, change.status)
      await recordLeadStatusEvents(tx, changed.flatMap((c) => leadStatusChanged({ leadId: c.id, from: c.from, to: c.to, at: c.at, actor: 'bot' })))
      return
    }
  }
}

/**
 * Leads that said STOP, as of `at`: marked opted out (the first time counts; again changes nothing), each with its
 * `opt_out` interaction (once per dedupe key). Two statements for the whole set.
 */
export async function optOutLeads(tx: Tx, at: Date, interactions: readonly Omit<Interaction, 'type'>[]): Promise<void> {
  if (interactions.length === 0) return
  await q.optOutLeads(tx, [...new Set(interactions.map((i) => i.leadId))], at)
  await recordInteractions(tx, interactions.map((i) => ({ ...i, type: 'opt_out' })))
}

// ---------------------------------------------------------------------------------------------------------
// Reading.

// Each listing's cursor carries its table's id type: a forged cursor is a 400 naming `cursor`, never a failed cast.
const LeadCursor = keysetCursor(z.uuid())
const InteractionCursor = keysetCursor(BigintId)
const MergeCursor = keysetCursor(BigintId)
const readCursor = <T>(cursor: string | undefined, schema: z.ZodType<T>) => (cursor ? decodeCursor(cursor, schema) : null)

function page<T extends { sortAt: string; id: string }>(rows: T[], limit: number) {
  const data = rows.map(({ sortAt: _sortAt, ...row }) => row)
  const last = rows.at(-1)
  return { data, nextCursor: rows.length === limit && last ? encodeCursor({ at: last.sortAt, id: last.id }) : null }
}

/** Turns the search box into exactly one indexed condition: an email, a phone (its identity key), or a name prefix. */
async function resolveFilter(tx: Tx, filter: LeadFilter): Promise<q.LeadQuery> {
  const { q: search, ...rest } = filter
  if (!search) return rest
  if (search.includes('@')) {
    const email = normalizeEmail(search)
    if (email) return { ...rest, email }
  }
  if (/^[+\d\s().\-/]{6,}$/.test(search)) {
    const tenant = await findCurrentTenant(tx)
    const phone = normalizePhone(search, tenant?.defaultCountry as CountryCode | undefined)
    if (phone) return { ...rest, phoneKey: phoneMatchKey(phone.e164) }
  }
  return { ...rest, namePrefix: search }
}

/** Lead id → phone number (E.164) for the given leads that have one; one query for a whole batch. */
export async function leadPhones(tx: Tx, leadIds: readonly string[]): Promise<Map<string, string>> {
  const ids = [...new Set(leadIds)]
  if (ids.length === 0) return new Map()
  return new Map((await q.findLeadPhones(tx, ids)).map((r) => [r.id, r.phoneE164]))
}

export async function listLeadsPage(sql: Sql, tenantId: string, query: LeadFilter & { limit: number; cursor?: string }) {
  const after = readCursor(query.cursor, LeadCursor)
  return withTenant(sql, tenantId, async (tx) => page(await q.listLeads(tx, await resolveFilter(tx, query), query.limit, after), query.limit))
}

/** The lead a per-lead decision is made for: the lead itself, or its survivor once merged; null when not this tenant's. */
export async function liveLeadIdOf(sql: Sql, tenantId: string, leadId: string): Promise<string | null> {
  const lead = await withTenant(sql, tenantId, (tx) => q.findLead(tx, leadId))
  return lead ? (lead.mergedInto ?? lead.id) : null
}

export async function getLeadDetail(sql: Sql, tenantId: string, leadId: string) {
  return withTenant(sql, tenantId, async (tx) => {
    const lead = await q.findLead(tx, leadId)
    if (!lead) return null
    const [consents, merges, timeline] = [await q.listConsents(tx, leadId), await q.listMergesOf(tx, leadId), await q.listTimeline(tx, leadId, 50, null)]
    return { lead, consents, merges, timeline: page(timeline, 50) }
  })
}

export async function listLeadTimeline(sql: Sql, tenantId: string, leadId: string, limit: number, cursor?: string) {
  const before = readCursor(cursor, InteractionCursor)
  return withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findLead(tx, leadId))) return null
    return page(await q.listTimeline(tx, leadId, limit, before), limit)
  })
}

export async function listLeadMerges(sql: Sql, tenantId: string, limit: number, cursor?: string) {
  const before = readCursor(cursor, MergeCursor)
  return withTenant(sql, tenantId, async (tx) => page(await q.listMerges(tx, limit, before), limit))
}

/**
 * Every lead matching the filter as CSV, streamed: rows come from a server-side cursor 1,000 at a time and are
 * written with backpressure, so memory stays flat whatever the tenant's size. A client that goes away stops the
 * cursor. The transaction (one snapshot: a consistent export) lasts as long as the download.
 */
export function streamLeadsCsv(sql: Sql, tenantId: string, filter: LeadFilter, onError: (err: unknown) => void): Readable {
  const out = new PassThrough()
  withTenant(sql, tenantId, async (tx) => {
    const query = await resolveFilter(tx, filter)
    out.write(CSV_HEADER)
    for await (const rows of q.leadsForExport(tx, query, 1000)) {
      if (out.destroyed) break
      if (!out.write(rows.map(leadCsvRow).join(''))) await drained(out)
    }
  }).then(
    () => out.end(),
    (err) => {
      onError(err)
      out.destroy(err instanceof Error ? err : new Error('export failed'))
    },
  )
  return out
}


// ---------------------------------------------------------------------------------------------------------
// Changing leads. Every change is an interaction saying who made it.

type Actor = { tenantId: string; actor: string; requestId: string | null }

function liveLead(lead: LeadView | null, leadId: string): LeadView {
  if (!lead) throw new AppError('NOT_FOUND', `lead ${leadId} not found`)
  if (lead.mergedInto) throw new AppError('CONFLICT', `lead ${leadId} was merged into ${lead.mergedInto}; change that lead instead`)
  return lead
}

const sortedTags = (tags: string[]) => [...new Set(tags)].sort()

export async function patchLead(sql: Sql, who: Actor, leadId: string, body: PatchLeadBody): Promise<LeadView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const before = liveLead(await q.lockLead(tx, leadId), leadId)
    const wanted = { ...body, ...(body.tags ? { tags: sortedTags(body.tags) } : {}) }
    const changes: Record<string, { from: unknown; to: unknown }> = {}
    for (const [key, to] of Object.entries(wanted) as [keyof typeof wanted, unknown][]) {
      const from = before[key]
      if (JSON.stringify(from) !== JSON.stringify(to)) changes[key] = { from, to }
    }
    if (Object.keys(changes).length === 0) return before
    const change = Object.fromEntries(Object.keys(changes).map((k) => [k, wanted[k as keyof typeof wanted]]))
    const after = await q.updateLeadColumns(tx, leadId, change)
    await q.insertInteraction(tx, { tenantId: who.tenantId, leadId, type: 'lead_updated', channel: 'api', actor: who.actor, details: { changes, requestId: who.requestId } })
    if (changes.status) await recordLeadStatusEvents(tx, leadStatusChanged({ leadId, from: before.status, to: after.status, at: after.updatedAt, actor: who.actor }))
    return after
  })
}

export async function addLeadNote(sql: Sql, who: Actor, leadId: string, text: string) {
  return withTenant(sql, who.tenantId, async (tx) => {
    liveLead(await q.lockLead(tx, leadId), leadId)
    await q.insertInteraction(tx, { tenantId: who.tenantId, leadId, type: 'note', channel: 'api', actor: who.actor, details: { text, requestId: who.requestId } })
    return (await q.listTimeline(tx, leadId, 1, null)).map(({ sortAt: _s, ...entry }) => entry)[0]!
  })
}

export async function bulkUpdateLeads(sql: Sql, who: Actor, body: BulkLeadsBody) {
  const leadIds = [...new Set(body.leadIds)]
  const rows = await withTenant(sql, who.tenantId, async (tx) => {
    const result = await q.bulkUpdateLeads(tx, {
      tenantId: who.tenantId, leadIds, status: body.status ?? null, addTags: sortedTags(body.addTags ?? []), removeTags: body.removeTags ?? [],
      actor: who.actor, requestId: who.requestId,
    })
    await recordLeadStatusEvents(tx, result.flatMap((r) => (r.changed && r.fromStatus && r.toStatus
      ? leadStatusChanged({ leadId: r.id, from: r.fromStatus, to: r.toStatus, at: r.at, actor: who.actor })
      : [])))
    return result
  })
  const found = new Set(rows.map((r) => r.id))
  return { updated: rows.filter((r) => r.changed).length, unchanged: rows.filter((r) => !r.changed).length, notFound: leadIds.filter((id) => !found.has(id)) }
}

/** A business telling us two leads are one person (the API's manual merge). */
export async function mergeLeadsManually(sql: Sql, who: Actor, survivorId: string, mergedId: string) {
  if (survivorId === mergedId) throw new AppError('BAD_REQUEST', 'a lead cannot be merged into itself', { details: [{ in: 'body', path: 'leadId', message: 'must differ from the lead in the path' }] })
  return withTenant(sql, who.tenantId, async (tx) => {
    // Lock both in id order, the same order any other merge of these two would use.
    const [first, second] = [survivorId, mergedId].sort() as [string, string]
    const a = await q.lockLead(tx, first)
    const b = await q.lockLead(tx, second)
    const survivor = liveLead(first === survivorId ? a : b, survivorId)
    liveLead(first === survivorId ? b : a, mergedId)
    await mergeLeadInto(tx, survivor.id, mergedId, { ...who, reason: 'manual', matchedOn: { manual: true } })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'lead.merged', targetType: 'lead', targetId: survivor.id, details: { mergedId }, requestId: who.requestId ?? undefined })
    return q.findLead(tx, survivor.id).then((l) => l!)
  })
}

/** A lead's id (its survivor's, if it was merged) and the attributes experiment targeting reads; null for no such lead. */
export const leadTargeting = (tx: Tx, leadId: string) => q.findLeadTargeting(tx, leadId)
