import { randomBytes, randomUUID } from 'node:crypto'
import { z } from 'zod'
import { type Sql, withTenant } from '../../../lib/db.js'
import { AppError } from '../../../lib/errors.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../../lib/pagination.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import type { CountryCode } from '../leads/identity/phone.js'
import type { SubmissionStore } from './inbox.js'
import * as q from './queries.js'
import { type CreateFormBody, FormDefinition, SUBMISSION_MAX_ATTEMPTS, type UpdateFormBody, UTM_KEYS } from './schemas.js'
import { validateSubmission } from './submission.js'
import type { FormView, SubmissionAccepted } from './views.js'

type Actor = { tenantId: string; actor: string; requestId: string | null }

/** 128 random bits, hex: unguessable, and plain enough to paste into an HTML action attribute. */
const newPublicKey = () => `wf_${randomBytes(16).toString('hex')}`

export const submitPath = (publicKey: string) => `/forms/${publicKey}/submissions`

export function toFormView(row: q.FormRow): FormView {
  const d = row.definition
  return {
    id: row.id, publicKey: row.publicKey, submitPath: submitPath(row.publicKey), name: row.name, status: row.status,
    fields: d.fields, allowedOrigins: d.allowedOrigins, defaultCountry: d.defaultCountry ?? null, redirectUrl: d.redirectUrl ?? null,
    successMessage: d.successMessage ?? null, consent: d.consent ?? null, honeypotField: d.honeypotField, minFillSeconds: d.minFillSeconds,
    createdBy: row.createdBy, createdAt: row.createdAt, updatedAt: row.updatedAt, archivedAt: row.archivedAt,
  }
}

const splitName = ({ name, ...definition }: FormDefinition) => ({ name, definition })

export async function createForm(sql: Sql, who: Actor, body: CreateFormBody): Promise<FormView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const row = await q.insertForm(tx, { tenantId: who.tenantId, publicKey: newPublicKey(), createdBy: who.actor, ...splitName(body) })
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'form.created', targetType: 'form', targetId: row.id, requestId: who.requestId ?? undefined })
    return toFormView(row)
  })
}

/**
 * Omitted properties keep their value, null clears an optional one; the merged form is re-checked whole, since
 * some rules span properties (a new honeypot name against the stored fields).
 */
export async function updateForm(sql: Sql, who: Actor, formId: string, body: UpdateFormBody): Promise<FormView | null> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const current = await q.findForm(tx, formId, { lock: true })
    if (!current) return null
    if (current.status === 'archived') throw new AppError('GONE', `form ${formId} is archived`)
    const merged: Record<string, unknown> = { name: current.name, ...current.definition }
    for (const [key, value] of Object.entries(body)) {
      if (value === null) delete merged[key]
      else merged[key] = value
    }
    const parsed = FormDefinition.safeParse(merged)
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ in: 'body', path: i.path.join('.'), message: i.message }))
      throw new AppError('BAD_REQUEST', `invalid ${details.map((d) => `body.${d.path}`).join(', ')}`, { details })
    }
    const row = await q.updateForm(tx, formId, splitName(parsed.data))
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'form.updated', targetType: 'form', targetId: formId, details: { changed: Object.keys(body) }, requestId: who.requestId ?? undefined })
    return toFormView(row!)
  })
}

export async function archiveForm(sql: Sql, who: Actor, formId: string): Promise<FormView | null> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const before = await q.findForm(tx, formId, { lock: true })
    if (!before) return null
    const row = await q.archiveForm(tx, formId)
    if (before.status !== 'archived') {
      await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'form.archived', targetType: 'form', targetId: formId, requestId: who.requestId ?? undefined })
    }
    return toFormView(row!)
  })
}

export async function getForm(sql: Sql, tenantId: string, formId: string) {
  const row = await withTenant(sql, tenantId, (tx) => q.findForm(tx, formId))
  return row ? toFormView(row) : null
}

// Forms and submissions both have uuid ids.
const KeysetCursor = keysetCursor(z.uuid())

export async function listFormsPage(sql: Sql, tenantId: string, query: { limit: number; cursor?: string; includeArchived: boolean }) {
  const after = query.cursor ? decodeCursor(query.cursor, KeysetCursor) : null
  const rows = await withTenant(sql, tenantId, (tx) => q.listForms(tx, query.limit, after, query.includeArchived))
  const last = rows.at(-1)
  return { data: rows.map(toFormView), nextCursor: rows.length === query.limit && last ? encodeCursor({ at: last.sortAt, id: last.id }) : null }
}

export async function listFormSubmissions(sql: Sql, tenantId: string, formId: string, query: { limit: number; cursor?: string }) {
  const before = query.cursor ? decodeCursor(query.cursor, KeysetCursor) : null
  return withTenant(sql, tenantId, async (tx) => {
    if (!(await q.findForm(tx, formId))) return null
    const rows = await q.listSubmissions(tx, formId, query.limit, before)
    const last = rows.at(-1)
    return {
      data: rows.map(({ sortAt: _s, ...row }) => row),
      nextCursor: rows.length === query.limit && last ? encodeCursor({ at: last.sortAt, id: last.id }) : null,
    }
  })
}

// ---------------------------------------------------------------------------------------------------------
// The public side.

export type PublicForm = q.PublicFormRow & { publicKey: string }

/**
 * Public forms are read on every submission and change rarely: each process keeps what it read for a few seconds.
 * The cost is that an edit or an archive reaches the public endpoint up to PUBLIC_FORM_TTL_MS later.
 */
const PUBLIC_FORM_TTL_MS = 2_000
const PUBLIC_FORM_CACHE_MAX = 5_000
const publicForms = new Map<string, { form: PublicForm; until: number }>()

async function findPublicFormCached(sql: Sql, publicKey: string): Promise<PublicForm | null> {
  const now = Date.now()
  const hit = publicForms.get(publicKey)
  if (hit && hit.until > now) return hit.form
  const row = await q.findPublicForm(sql, publicKey)
  // Unknown keys are not cached: random keys must not be able to push real forms out.
  if (!row) return null
  const form = { ...row, publicKey }
  if (publicForms.size >= PUBLIC_FORM_CACHE_MAX) publicForms.delete(publicForms.keys().next().value!)
  publicForms.set(publicKey, { form, until: now + PUBLIC_FORM_TTL_MS })
  return form
}

/** The form a public key names, ready to accept: 404 for an unknown key, 410 for an archived form. */
export async function loadPublicForm(sql: Sql, publicKey: string): Promise<PublicForm> {
  // Keys have one shape; anything else is not worth a database round trip.
  const form = /^wf_[A-Za-z0-9]{20,64}$/.test(publicKey) ? await findPublicFormCached(sql, publicKey) : null
  if (!form) throw new AppError('NOT_FOUND', 'no such form')
  if (form.status === 'archived' || form.tenantStatus !== 'active') throw new AppError('GONE', 'this form no longer accepts submissions')
  return form
}

/** The browser's Origin header against the form's list. Absent (a server, curl) is not a browser and not refused. */
export function originAllowed(form: PublicForm, origin: string | undefined): boolean {
  if (origin === undefined) return true
  return form.definition.allowedOrigins.includes(origin.toLowerCase())
}

export interface SubmissionContext {
  ip: string | null
  userAgent: string | null
  /** The HTTP Referer: for a plain HTML form (no script to send page_url) it is the page the form is on. */
  referer: string | null
  requestId: string | null
  /**
   * The partner-link visitor cookie (`wa_lv`, set by GET /l/<code> on this host), when the browser sent it: the
   * visitor's clicks and partner attribution join the lead when the submission is applied.
   */
  linkVisitorId?: string | null
  now?: Date
}

/** UTM tags from the landing page's query, for pages that do not copy them into the form. */
function utmFromUrl(url: string | undefined): Record<string, string> {
  if (!url || !URL.canParse(url)) return {}
  const params = new URL(url).searchParams
  return Object.fromEntries(UTM_KEYS.flatMap((k) => (params.get(k) ? [[k, params.get(k)!.slice(0, 200)]] : [])))
}

const httpUrl = (text: string | null) => (text && text.length <= 2000 && /^https?:\/\//i.test(text) && URL.canParse(text) ? text : undefined)

/**
 * Checks a posted body against its form and stores it in the inbox, returning only after commit; the worker then
 * resolves the person to one lead (creating, updating or merging), and stores the submission with this id, its
 * interaction, consent and event (process-submissions.ts). Bot signals (honeypot, filled too fast) are checked first
 * and answered exactly like a success, storing nothing, so a bot learns nothing; a person's invalid answers are a
 * 400 naming every field.
 */
export async function acceptSubmission(inbox: SubmissionStore, form: PublicForm, body: Record<string, unknown>, ctx: SubmissionContext): Promise<SubmissionAccepted & { stored: boolean }> {
  const now = ctx.now ?? new Date()
  const definition = form.definition
  const answer = (submissionId: string, stored: boolean) => ({
    status: 'accepted' as const, submissionId, message: definition.successMessage ?? null, redirectUrl: definition.redirectUrl ?? null, stored,
  })
  const result = validateSubmission(definition, body, { defaultCountry: form.tenantDefaultCountry as CountryCode, now })
  if (result.meta.spam.honeypot || result.meta.spam.tooFast) return answer(randomUUID(), false)
  if (!result.ok) {
    const details = result.errors.map((e) => ({ in: 'body', path: e.field, message: e.message }))
    throw new AppError('BAD_REQUEST', `invalid ${details.map((d) => `body.${d.path}`).join(', ')}`, { details })
  }

  const { lead, values, meta } = result
  const pageUrl = meta.pageUrl ?? httpUrl(ctx.referer)
  const utm = Object.keys(meta.utm).length > 0 ? meta.utm : utmFromUrl(pageUrl)
  const mapped = new Set(definition.fields.filter((f) => f.maps_to).map((f) => f.name))
  const consent = definition.consent && meta.consent !== undefined
    ? { granted: meta.consent, purpose: definition.consent.text, policyVersion: definition.consent.policyVersion, policyUrl: definition.consent.policyUrl ?? null }
    : null
  // Generated here, so the answer can name the row the worker will store.
  const submissionId = randomUUID()
  await inbox.store({
    id: submissionId,
    tenantId: form.tenantId,
    formId: form.id,
    submission: {
      lead: { email: lead.email ?? null, phoneE164: lead.phoneE164 ?? null, name: lead.name ?? null, company: lead.company ?? null },
      answers: values,
      customFields: Object.fromEntries(Object.entries(values).filter(([name]) => !mapped.has(name))),
      utm,
      pageUrl: pageUrl ?? null,
      referrer: meta.referrer ?? null,
      fillSeconds: meta.fillSeconds ?? null,
      consent,
      anonymousId: meta.anonymousId ?? null,
      linkVisitorId: ctx.linkVisitorId ?? null,
    },
    ip: ctx.ip,
    userAgent: ctx.userAgent?.slice(0, 500) ?? null,
    referer: ctx.referer?.slice(0, 2000) ?? null,
    requestId: ctx.requestId,
    receivedAt: now,
  })
  return answer(submissionId, true)
}

/** What is still in the submission inbox: waiting, failing, or parked with its last error. */
export async function listSubmissionInbox(sql: Sql, tenantId: string, query: { status?: 'received' | 'failed' | 'parked'; limit: number; cursor?: string }) {
  const before = query.cursor ? decodeCursor(query.cursor, z.object({ receivedAt: z.coerce.date() })).receivedAt : null
  const rows = await withTenant(sql, tenantId, (tx) => q.listInboxRows(tx, { status: query.status, limit: query.limit + 1, beforeReceivedAt: before }))
  const page = rows.slice(0, query.limit)
  const last = page.at(-1)
  return { data: page, nextCursor: rows.length > query.limit && last ? encodeCursor({ receivedAt: last.receivedAt.toISOString() }) : null }
}

/** Queues a parked (or failing) submission again, e.g. after fixing what made it fail; recorded in the audit log. */
export async function replaySubmission(sql: Sql, who: Actor, submissionId: string): Promise<boolean> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const queued = await q.replayInboxRow(tx, who.tenantId, submissionId, SUBMISSION_MAX_ATTEMPTS)
    if (queued) await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'form_submission.replayed', targetType: 'form_submission', targetId: submissionId, requestId: who.requestId ?? undefined })
    return queued
  })
}
