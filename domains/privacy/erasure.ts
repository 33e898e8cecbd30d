import { pseudonym, type SecretBox } from '../../lib/crypto.js'
import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import type { Logger } from '../../lib/logger.js'
import { normalizeEmail } from '../marketing/leads/identity/email.js'
import { type CountryCode, normalizePhone, phoneMatchKey } from '../marketing/leads/identity/phone.js'
import { LEAD_REFERENCES, type LeadReference, type TableName } from '../marketing/leads/lead-references.js'
import { queuePosthogPersonDeletions } from '../analytics/posthog/deletions.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import * as q from './queries.js'
import { type CreateErasureBody, type ErasureRequestView, type ErasureSubject, SealedWork } from './schemas.js'
import { suppressionRows } from './suppression.js'
import { findRemainingMentions, identityNeedles } from './verify.js'

/**
 * Erasure of one person, driven by the lead-references catalog: resolve the subject to all its leads (merged ones
 * included) and identity strings, cancel the jobs that name them, apply each catalogued table's erase policy (children
 * before the tables they point at), delete the leads, then prove it: a verification pass over every column of every
 * table must find none of the person's identity strings before the request is completed and verifiedAt set.
 *
 * Each step runs in one transaction with its receipt lines and its name in steps_done, so a crash between steps
 * loses nothing and doubles nothing: the resumed job skips what was committed.
 */

const LEADS: TableName = 'marketing.leads'

export interface ErasureDeps {
  sql: Sql
  secrets: SecretBox
  log?: Logger
}

type Actor = { tenantId: string; actor: string; requestId: string | null }

/** The subject's keyed hash: how the receipt, the audit log and a repeated request name the person. */
export function subjectHash(subject: ErasureSubject): string {
  const value = subject.kind === 'lead' ? subject.leadId : subject.kind === 'email' ? subject.email : subject.phoneKey
  return pseudonym('privacy:subject', `${subject.kind}:${value}`)
}

const seedOf = (s: ErasureSubject) =>
  s.kind === 'lead' ? { leadId: s.leadId } : s.kind === 'email' ? { email: s.email } : { phoneKey: s.phoneKey, phoneDigits: s.phoneE164.slice(1) }

export function toErasureView(row: q.ErasureRow): ErasureRequestView {
  const completed = row.status === 'completed' && row.completedAt && row.verifiedAt
  return {
    id: row.id,
    status: row.status,
    subjectKind: row.subjectKind,
    subjectHash: row.subjectHash,
    requestedBy: row.requestedBy,
    createdAt: row.createdAt,
    completedAt: row.completedAt,
    error: row.error,
    receipt: completed
      ? {
          tenantId: row.tenantId,
          subjectHash: row.subjectHash,
          subjectKind: row.subjectKind,
          tables: Object.entries(row.tables).map(([table, n]) => ({ table, deleted: n.deleted, anonymised: n.anonymised })).sort((a, b) => (a.table < b.table ? -1 : 1)),
          suppressedKeys: row.suppressedKeys,
          startedAt: row.startedAt,
          completedAt: row.completedAt!,
          verifiedAt: row.verifiedAt!,
        }
      : null,
  }
}

const badInput = (path: string, message: string) => new AppError('BAD_REQUEST', `invalid body.${path}: ${message}`, { details: [{ in: 'body', path, message }] })

/**
 * Records the request and its job in one transaction (202). The same subject asked again gets the request already
 * open, or the completed one (its receipt) when nothing of the person has appeared since.
 */
export async function requestErasure(deps: ErasureDeps, who: Actor, body: CreateErasureBody): Promise<ErasureRequestView> {
  return withTenant(deps.sql, who.tenantId, async (tx) => {
    let subject: ErasureSubject
    if (body.leadId !== undefined) {
      if (await q.leadOfAnotherTenant(tx, body.leadId)) throw new AppError('NOT_FOUND', `lead ${body.leadId} not found`)
      subject = { kind: 'lead', leadId: body.leadId }
    } else if (body.email !== undefined) {
      const email = normalizeEmail(body.email)
      if (!email) throw badInput('email', 'not an email address')
      subject = { kind: 'email', email }
    } else {
      const country = (await q.tenantDefaultCountry(tx)) as CountryCode | null
      const phone = normalizePhone(body.phone!, country ?? undefined)
      if (!phone) throw badInput('phone', 'not a valid phone number')
      subject = { kind: 'phone', phoneE164: phone.e164, phoneKey: phoneMatchKey(phone.e164) }
    }
    const hash = subjectHash(subject)
    const latest = await q.findLatestErasure(tx, hash)
    if (latest && (latest.status !== 'completed' || !(await q.leadsExist(tx, seedOf(subject))))) return toErasureView(latest)

    const created = await q.insertErasureRequest(tx, {
      tenantId: who.tenantId, subjectKind: subject.kind, subjectHash: hash, requestedBy: who.actor, requestId: who.requestId,
      subjectSealed: deps.secrets.seal(JSON.stringify({ subject } satisfies Partial<SealedWork>)),
    })
    // Another request for the subject committed meanwhile: that one is this one.
    if (!created) return toErasureView((await q.findLatestErasure(tx, hash))!)
    await q.enqueueErasure(tx, who.tenantId, created.id)
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'privacy.erasure_requested', targetType: 'erasure_request', targetId: created.id,
      details: { subjectKind: subject.kind, subjectHash: hash }, requestId: who.requestId ?? undefined,
    })
    return toErasureView((await q.getErasure(tx, created.id))!)
  })
}

export const getErasureRequest = async (sql: Sql, tenantId: string, id: string) => {
  const row = await withTenant(sql, tenantId, (tx) => q.getErasure(tx, id))
  return row ? toErasureView(row) : null
}

export const listErasureRequests = async (sql: Sql, tenantId: string, query: { limit: number; status?: string }) =>
  (await withTenant(sql, tenantId, (tx) => q.listErasures(tx, query.limit, query.status))).map(toErasureView)

// ---------------------------------------------------------------------------------------------------------
// The job's work.

/** Deliveries that mention the subject are not applied yet: the erasure waits for them (the job retries). */
export class ErasureHeld extends Error {
  constructor(pending: number) {
    super(`${pending} webhook deliveries about the subject are not processed yet; erasure waits for them`)
    this.name = 'ErasureHeld'
  }
}

interface Work {
  requestId: string
  tenantId: string
  request: q.ErasureRow
  sealed: SealedWork
  leadIds: string[]
}

type Lines = { table: string; deleted: number; anonymised: number }[]

interface Step {
  name: string
  run: (tx: Tx, work: Work) => Promise<{ lines: Lines; sealed?: SealedWork; leadIds?: string[] }>
}

export interface RunOptions {
  /** graphile-worker's last attempt: a failure now fails the request instead of being retried. */
  lastAttempt?: boolean
  /** Called after each step has committed (tests stop the job here to prove it resumes). */
  afterStep?: (step: string) => void | Promise<void>
}

export type RunOutcome = 'completed' | 'failed' | 'nothing_to_do'

export async function runErasure(deps: ErasureDeps, tenantId: string, requestId: string, options: RunOptions = {}): Promise<RunOutcome> {
  const row = await withTenant(deps.sql, tenantId, async (tx) => {
    const r = await q.getErasure(tx, requestId, { lock: true })
    if (r && (r.status === 'pending' || r.status === 'running')) await q.markRunning(tx, requestId)
    return r
  })
  if (!row || row.status === 'completed' || row.status === 'failed') return 'nothing_to_do'
  if (!row.subjectSealed) throw new Error(`erasure request ${requestId} has no sealed subject`)
  const work: Work = {
    requestId, tenantId, request: row, leadIds: row.erasedLeadIds,
    sealed: SealedWork.parse(JSON.parse(deps.secrets.open(row.subjectSealed))),
  }
  try {
    for (const step of await planSteps(deps.sql, tenantId)) {
      await withTenant(deps.sql, tenantId, async (tx) => {
        const current = (await q.getErasure(tx, requestId, { lock: true }))!
        if (current.stepsDone.includes(step.name)) return
        const result = await step.run(tx, work)
        const tables = { ...current.tables }
        for (const line of result.lines) {
          if (line.deleted === 0 && line.anonymised === 0) continue
          const t = (tables[line.table] ??= { deleted: 0, anonymised: 0 })
          t.deleted += line.deleted
          t.anonymised += line.anonymised
        }
        if (result.sealed) work.sealed = result.sealed
        if (result.leadIds) work.leadIds = result.leadIds
        await q.recordStep(tx, requestId, step.name, tables, {
          subjectSealed: result.sealed ? deps.secrets.seal(JSON.stringify(result.sealed)) : undefined,
          erasedLeadIds: result.leadIds,
        })
      })
      await options.afterStep?.(step.name)
    }
    return await verifyAndClose(deps, work)
  } catch (err) {
    if (!options.lastAttempt) throw err
    const reason = err instanceof ErasureHeld ? err.message : `erasure failed: ${err instanceof Error ? err.name : 'error'}`
    await closeFailed(deps, work, reason)
    return 'failed'
  }
}

async function verifyAndClose(deps: ErasureDeps, work: Work): Promise<RunOutcome> {
  return withTenant(deps.sql, work.tenantId, async (tx) => {
    const current = (await q.getErasure(tx, work.requestId, { lock: true }))!
    if (current.status !== 'running') return 'nothing_to_do'
    const hits = await findRemainingMentions(tx, work.sealed.needles)
    if (hits.length > 0) {
      // The table and column, never the value.
      await q.failErasure(tx, work.requestId, `verification found the subject in ${hits.join(', ')}`)
      await audit(tx, current, 'privacy.erasure_failed', { found: hits })
      deps.log?.warn({ erasureRequestId: work.requestId, found: hits }, 'erasure verification found remaining data')
      return 'failed'
    }
    await q.completeErasure(tx, work.requestId)
    await audit(tx, current, 'privacy.erasure_completed', {
      tables: Object.keys(current.tables).length, rowsDeleted: Object.values(current.tables).reduce((n, t) => n + t.deleted, 0),
      rowsAnonymised: Object.values(current.tables).reduce((n, t) => n + t.anonymised, 0), suppressedKeys: current.suppressedKeys,
    })
    return 'completed'
  })
}

async function closeFailed(deps: ErasureDeps, work: Work, reason: string) {
  await withTenant(deps.sql, work.tenantId, async (tx) => {
    const current = (await q.getErasure(tx, work.requestId, { lock: true }))!
    await q.failErasure(tx, work.requestId, reason)
    await audit(tx, current, 'privacy.erasure_failed', { reason })
  })
}

const audit = (tx: Tx, r: q.ErasureRow, action: string, details: Record<string, unknown>) =>
  insertAuditEntry(tx, {
    tenantId: r.tenantId, actor: r.requestedBy, action, targetType: 'erasure_request', targetId: r.id,
    details: { subjectKind: r.subjectKind, subjectHash: r.subjectHash, ...details }, requestId: r.requestId ?? undefined,
  })

// ---------------------------------------------------------------------------------------------------------
// The plan, from the catalog.

const stepName = (ref: LeadReference) => `${ref.table}:${ref.reach.by === 'content' ? 'content' : ref.reach.column}`

/**
 * resolve → jobs → every catalogued table but the leads, each table before the tables it points at (foreign keys,
 * and a 'parent' reach, whose rows are found through the parent's) → the leads.
 */
async function planSteps(sql: Sql, tenantId: string): Promise<Step[]> {
  const refs = LEAD_REFERENCES.filter((r) => r.table !== LEADS)
  const tables: TableName[] = [...new Set(refs.map((r) => r.table))]
  const edges = await withTenant(sql, tenantId, async (tx) => {
    for (const t of [...tables, LEADS]) if (!(await q.tableExists(tx, t))) throw new Error(`catalogued table ${t} does not exist`)
    return q.foreignKeysAmong(tx, tables)
  })
  const before = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]))
  // A child is erased before its parent: "parent must wait for child".
  for (const e of edges) before.get(e.parent)?.add(e.child)
  for (const r of refs) if (r.reach.by === 'parent') before.get(r.reach.parent)?.add(r.table)
  const ordered: TableName[] = []
  const pending = new Set<string>(tables)
  while (pending.size > 0) {
    const ready = [...pending].filter((t) => [...before.get(t)!].every((c) => !pending.has(c) || c === t))
    if (ready.length === 0) throw new Error(`the catalog's tables reference each other in a cycle: ${[...pending].join(', ')}`)
    for (const t of ready) {
      ordered.push(t as TableName)
      pending.delete(t)
    }
  }
  const tableSteps = ordered.flatMap((t) => refs.filter((r) => r.table === t).map((r): Step => ({ name: stepName(r), run: (tx, w) => applyPolicy(tx, r, w) })))
  return [resolveStep, jobsStep, posthogStep, ...tableSteps, leadsStep]
}

const resolveStep: Step = {
  name: 'resolve',
  run: async (tx, w) => {
    const subject = w.sealed.subject
    const leads = await q.subjectLeads(tx, seedOf(subject))
    const notBsuid = (k: string | null): k is string => !!k && !k.startsWith('bsuid:')
    const emails = [...new Set([...leads.map((l) => l.email), subject.kind === 'email' ? subject.email : null].filter((e): e is string => !!e).map((e) => e.toLowerCase()))]
    const phoneKeys = [...new Set([...leads.map((l) => l.phoneKey), subject.kind === 'phone' ? subject.phoneKey : null].filter(notBsuid))]
    const phones = [...new Set([...phoneKeys, ...leads.map((l) => l.phoneE164), subject.kind === 'phone' ? subject.phoneE164 : null].filter((p): p is string => !!p))]
    const waIds = [...new Set(leads.map((l) => l.waId).filter((x): x is string => !!x))]
    const needles = identityNeedles({ emails, phones, waIds })
    const pending = await q.countPendingDeliveries(tx, needles)
    if (pending > 0) throw new ErasureHeld(pending)
    const keys = { emails, phoneKeys, waIds }
    // Suppressed from the start: what arrives while the erasure runs already meets the suppression.
    const added = await q.insertSuppressions(tx, w.tenantId, w.requestId, suppressionRows(keys))
    if (added.length > 0) {
      await audit(tx, w.request, 'privacy.suppressions_added', { suppressions: added.map((a) => ({ id: a.id, keyKind: a.keyKind, keyHash: a.keyHash })) })
    }
    return { lines: [], sealed: { subject, needles, keys }, leadIds: leads.map((l) => l.id) }
  },
}

const jobsStep: Step = {
  name: 'jobs',
  run: async (tx, w) => {
    if (w.leadIds.length === 0) return { lines: [] }
    const ids = [...w.leadIds, ...(await q.relatedIds(tx, w.leadIds))]
    return { lines: [{ table: 'graphile_worker.jobs', deleted: await q.cancelJobsNaming(tx, ids), anonymised: 0 }] }
  },
}

/**
 * The person's PostHog persons (their distinct ids, found before analytics.identities is erased) queued for deletion
 * in every project that may hold them; the receipt line counts them, GET /v1/analytics/posthog shows when PostHog
 * accepted them (domains/analytics/posthog/deletions.ts).
 */
const posthogStep: Step = {
  name: 'posthog:persons',
  run: async (tx, w) => ({ lines: [{ table: 'posthog:persons', deleted: await queuePosthogPersonDeletions(tx, w.tenantId, w.requestId, w.leadIds), anonymised: 0 }] }),
}

const leadsStep: Step = {
  name: `${LEADS}:id`,
  run: async (tx, w) => ({ lines: [{ table: LEADS, deleted: w.leadIds.length ? await q.deleteByLead(tx, LEADS, 'id', w.leadIds) : 0, anonymised: 0 }] }),
}

async function applyPolicy(tx: Tx, ref: LeadReference, w: Work): Promise<{ lines: Lines }> {
  const line = (deleted: number, anonymised = 0) => ({ lines: [{ table: ref.table, deleted, anonymised }] })
  const reach = ref.reach
  if (reach.by === 'content') {
    if (w.sealed.needles.length === 0) return line(0)
    if (ref.platform) {
      const eraser = q.platformEraserFor(ref.table)
      if (!eraser) throw new Error(`platform table ${ref.table} is catalogued without an eraser (add one to migration and queries.ts)`)
      return line(await eraser(tx, w.sealed.needles))
    }
    return line(await q.deleteMentioning(tx, ref.table, reach.columns, w.sealed.needles))
  }
  if (ref.platform) throw new Error(`platform table ${ref.table}: only content reach is supported`)
  if (w.leadIds.length === 0) return line(0)
  if (reach.by === 'parent') {
    const parent = LEAD_REFERENCES.find((r) => r.table === reach.parent && r.reach.by === 'lead')
    if (!parent || parent.reach.by !== 'lead') throw new Error(`${ref.table}: parent ${reach.parent} has no lead column in the catalog`)
    if (ref.erase.kind !== 'delete') throw new Error(`${ref.table}: only delete is supported through a parent`)
    return line(await q.deleteByParent(tx, ref.table, reach.column, reach.parent, reach.parentColumn, parent.reach.column, w.leadIds))
  }
  if (ref.erase.kind === 'delete') return line(await q.deleteByLead(tx, ref.table, reach.column, w.leadIds))
  const types = new Map((await q.columnTypes(tx, ref.table)).map((c) => [c.name, c.type]))
  const redact = ref.erase.redact.map((name) => ({ name, type: types.get(name) ?? 'text' }))
  return line(0, await q.anonymiseByLead(tx, ref.table, reach.column, w.leadIds, ref.erase.null, redact))
}
