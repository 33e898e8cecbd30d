import { randomUUID } from 'node:crypto'
import type { Tx } from '../../../lib/db.js'
import * as bq from './batch-queries.js'
import * as q from './queries.js'
import type { LeadSighting } from './schemas.js'
import { recordLeadsCreated, type Resolution, resolveLead } from './service.js'

/** One sighting of a batch, with who caused it (for a merge it proves and the interactions). */
export interface BatchSighting {
  sighting: LeadSighting
  actor: string
  reason: string
  requestId: string | null
}

/**
 * Thrown when a planned new lead, or a key planned for a known one, was claimed by another writer since the leads were
 * read (one that takes no advisory lock, such as WhatsApp ingestion). The transaction has written on a stale plan:
 * the caller rolls it back and runs it again, which reads the other writer's lead. Rare, and like a deadlock in kind.
 */
export class KeyClaimed extends Error {
  constructor() {
    super('an identity key was claimed by another writer meanwhile; retry the transaction')
    this.name = 'KeyClaimed'
  }
}

/** The partial unique indexes that keep one live lead per email and per phone key. */
const IDENTITY_INDEXES = ['leads_email_uidx', 'leads_phone_key_uidx']

const keysOf = (s: LeadSighting) => [s.email && `email:${s.email}`, s.phoneKey && `phone:${s.phoneKey}`].filter((k): k is string => !!k)

/**
 * Resolves a batch of sightings to their leads, set-based, inside the caller's transaction, with the same outcome as
 * resolving them one after the other in order with resolveLead (README "Identity: one person, one lead"), in a
 * constant number of round trips whatever the batch size:
 * 1. transaction-scoped advisory locks on every key of the batch, sorted (the keys resolveLead locks): batches that
 *    share a person run one after the other, and sorted locks cannot deadlock; pipelined with them, every live lead
 *    holding one of the keys, read and locked in one statement;
 * 2. the batch is planned in memory (planBatch: who is new, with the id it will have, and what each known lead
 *    lacks); one statement inserts the new people (on conflict do nothing) and one fills the known ones. `alongside`
 *    gives the statements that only need each sighting's lead (the submissions, say): when no sighting proves a merge
 *    they are pipelined with these writes, so the whole batch costs two round trips here;
 * 3. the rare sightings that prove two leads one person (a merge), and the later ones sharing their people, then go
 *    through resolveLead one by one, in order; leads they merge away are followed to their survivor, and only then
 *    are the `alongside` statements sent.
 * A key claimed meanwhile by a writer that takes no advisory lock throws KeyClaimed: retry the transaction. Returns
 * one resolution per sighting, in order, each naming a live lead.
 */
export async function resolveLeadsBatch(
  tx: Tx,
  tenantId: string,
  items: BatchSighting[],
  alongside: (resolutions: Resolution[]) => PromiseLike<unknown>[] = () => [],
): Promise<Resolution[]> {
  if (items.length === 0) return []
  const keys = [...new Set(items.flatMap((i) => keysOf(i.sighting)))]
  const emails = [...new Set(items.flatMap((i) => (i.sighting.email ? [i.sighting.email] : [])))]
  const phoneKeys = [...new Set(items.flatMap((i) => (i.sighting.phoneKey ? [i.sighting.phoneKey] : [])))]

  // Statements sent together are pipelined (one round trip) and run in order: the locks are taken before the read.
  const [, known] = keys.length > 0
    ? await Promise.all([q.lockIdentityKeys(tx, tenantId, keys), bq.lockLeadsByKeys(tx, emails, phoneKeys)])
    : [null, []]
  const plan = planBatch(known, items.map((i) => i.sighting))
  const planned: (Resolution | null)[] = plan.outcomes.map((o) => (o === 'deferred' ? null : { ...o, mergedIds: [] }))
  const merges = planned.some((r) => r === null)

  const inserting = bq.insertNewLeads(tx, tenantId, plan.creates)
  // lead.created of the planned leads, pipelined after their insert: a lead that lost its key fails the batch (KeyClaimed) and its event with it.
  const announcing = recordLeadsCreated(tx, plan.creates.map((c) => ({ id: c.id, sighting: { source: c.source, sourceDetails: c.source_details, phoneE164: c.phone_e164, at: c.first_seen_at } })))
  const writes = [inserting, announcing, bq.fillLeads(tx, plan.fills), ...(merges ? [] : alongside(planned as Resolution[]))]
  const claimed = async () => ((await inserting.catch(() => null))?.length ?? plan.creates.length) < plan.creates.length
  await Promise.all(writes).catch(async (err: { code?: string; constraint_name?: string }) => {
    // A new lead that lost its key makes what depends on it fail (a submission naming a lead that does not exist).
    if (await claimed()) throw new KeyClaimed()
    if (err.code === '23505' && IDENTITY_INDEXES.includes(err.constraint_name ?? '')) throw new KeyClaimed()
    throw err
  })
  if (await claimed()) throw new KeyClaimed()
  if (!merges) return planned as Resolution[]

  const mergedInto = new Map<string, string>()
  for (const [index, outcome] of plan.outcomes.entries()) {
    if (outcome !== 'deferred') continue
    const { sighting, actor, reason, requestId } = items[index]!
    const resolution = await resolveLead(tx, sighting, { tenantId, actor, reason, requestId })
    for (const id of resolution.mergedIds) mergedInto.set(id, resolution.leadId)
    planned[index] = resolution
  }
  const live = (id: string): string => {
    let current = id
    while (mergedInto.has(current)) current = mergedInto.get(current)!
    return current
  }
  const resolutions = planned.map((r) => ({ ...r!, leadId: live(r!.leadId) }))
  await Promise.all(alongside(resolutions))
  return resolutions
}

export interface BatchPlan {
  /** New leads, with the ids the batch gives them. */
  creates: bq.NewLeadRow[]
  /** What the batch adds to known leads (each at most once). */
  fills: bq.LeadFillRow[]
  /** Per sighting, in order: its lead, or 'deferred' (resolve it alone with resolveLead, after the writes). */
  outcomes: ({ leadId: string; created: boolean } | 'deferred')[]
}

interface PlannedLead {
  id: string
  isNew: boolean
  email: string | null
  phoneE164: string | null
  phoneKey: string | null
  name: string | null
  company: string | null
  source?: string
  sourceDetails?: unknown
  fields: Record<string, unknown>
  firstSeenAt: Date | null
  lastSeenAt: Date | null
}

const minDate = (a: Date | null, b: Date) => (a && a <= b ? a : b)
const maxDate = (a: Date | null, b: Date) => (a && a >= b ? a : b)

/**
 * The batch's sightings applied in order to the leads that hold their keys, in memory, as resolveLead would apply
 * them one by one: a sighting no lead knows is a new lead (its keys known to the sightings after it); one known by
 * one lead fills what that lead lacks (custom fields: the later value wins); one with no key is always a new lead.
 * A sighting that matches two leads (by email one, by phone the other) proves a merge: it is deferred, and so is
 * every later sighting that shares a key with a deferred one or with the leads it matched, so that those people are
 * resolved in order after the merge.
 */
export function planBatch(known: bq.BatchLead[], sightings: LeadSighting[], newId: () => string = randomUUID): BatchPlan {
  const leads = new Map<string, PlannedLead>()
  const byEmail = new Map<string, PlannedLead>()
  const byPhone = new Map<string, PlannedLead>()
  const index = (lead: PlannedLead) => {
    if (lead.email) byEmail.set(lead.email, lead)
    if (lead.phoneKey) byPhone.set(lead.phoneKey, lead)
  }
  for (const k of known) {
    const lead: PlannedLead = { ...k, isNew: false, fields: {}, firstSeenAt: null, lastSeenAt: null }
    leads.set(k.id, lead)
    index(lead)
  }
  const touched = new Set<PlannedLead>()
  const deferredKeys = new Set<string>()
  const leadKeys = (l: PlannedLead) => [l.email && `email:${l.email}`, l.phoneKey && `phone:${l.phoneKey}`].filter((k): k is string => !!k)

  const outcomes: BatchPlan['outcomes'] = sightings.map((s) => {
    const keys = keysOf(s)
    const matches = [...new Set([s.email ? byEmail.get(s.email) : undefined, s.phoneKey ? byPhone.get(s.phoneKey) : undefined].filter((l): l is PlannedLead => !!l))]
    if (keys.some((k) => deferredKeys.has(k)) || matches.length > 1) {
      for (const k of [...keys, ...matches.flatMap(leadKeys)]) deferredKeys.add(k)
      return 'deferred'
    }
    const lead = matches[0]
    if (!lead) {
      const created: PlannedLead = {
        id: newId(), isNew: true, email: s.email, phoneE164: s.phoneE164, phoneKey: s.phoneKey, name: s.name, company: s.company,
        source: s.source, sourceDetails: s.sourceDetails, fields: { ...s.fields }, firstSeenAt: s.at, lastSeenAt: s.at,
      }
      leads.set(created.id, created)
      index(created)
      touched.add(created)
      return { leadId: created.id, created: true }
    }
    // Each column on its own, as applySighting's coalesce: a lead may hold a phone without a key (or a bsuid key).
    lead.email ??= s.email
    lead.phoneE164 ??= s.phoneE164
    lead.phoneKey ??= s.phoneKey
    lead.name ??= s.name
    lead.company ??= s.company
    Object.assign(lead.fields, s.fields)
    lead.firstSeenAt = minDate(lead.firstSeenAt, s.at)
    lead.lastSeenAt = maxDate(lead.lastSeenAt, s.at)
    index(lead)
    touched.add(lead)
    return { leadId: lead.id, created: false }
  })

  const creates: bq.NewLeadRow[] = []
  const fills: bq.LeadFillRow[] = []
  for (const l of touched) {
    const row = {
      id: l.id, email: l.email, phone_e164: l.phoneE164, phone_key: l.phoneKey, name: l.name, company: l.company, fields: l.fields,
      first_seen_at: l.firstSeenAt!.toISOString(), last_seen_at: l.lastSeenAt!.toISOString(),
    }
    if (l.isNew) creates.push({ ...row, source: l.source!, source_details: l.sourceDetails })
    else fills.push(row)
  }
  return { creates, fills, outcomes }
}
