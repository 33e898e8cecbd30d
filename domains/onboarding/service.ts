import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { randomToken, sha256, type SecretBox } from '../../lib/crypto.js'
import { setTenant, type Sql, type Tx } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { recordEvents } from '../analytics/service.js'
import { createFlowIn } from '../conversations/service.js'
import { qualificationStarterFlow } from '../conversations/flows/starter-flows.js'
import { activateTenantWithFirstKey, createPendingTenant } from '../tenancy/service.js'
import { isGraphApiError, type GraphClient } from '../whatsapp/graph/client.js'
import { askMessagingLimit, recordMessagingLimit, registerPhoneNumberIn } from '../whatsapp/numbers.js'
import { planTemplateSend, queueOutbound } from '../whatsapp/outbound/service.js'
import * as q from './queries.js'
import { blockingStep, progressOf, STEP_NAMES, stepDefinition, stepOrders, STEPS_VERSION, type SessionState, type StepName } from './steps.js'

export interface OnboardingSettings {
  tokenTtlMs: number
  nudgeAfterMs: number
  abandonAfterMs: number
  /** Where the page is served (`<publicUrl>/onboarding`); the resume link is `<publicUrl>/onboarding#token=…`. */
  publicUrl: string
}

export interface OnboardingDeps {
  sql: Sql
  secrets: SecretBox
  /** Meta's Graph API (the emulator in development and tests); null: whatsapp_connect cannot complete. */
  graph: GraphClient | null
  settings: OnboardingSettings
}

export interface SessionView {
  sessionId: string
  status: q.SessionRow['status']
  stepsVersion: number
  currentStep: StepName | null
  progress: number
  next: string
  steps: Array<{ name: StepName; title: string; status: 'completed' | 'current' | 'blocked'; completedAt: string | null; missing: string[]; fields: Record<string, unknown> }>
  tenantId: string | null
  expiresAt: string
}

export interface IssuedLink { token: string; resumeUrl: string; expiresAt: string }

const ACTOR = (sessionId: string) => `onboarding:${sessionId}`

/** 256 random bits; only its sha256 is stored. The link carries it in the fragment, which browsers never send. */
function issueToken(settings: OnboardingSettings): IssuedLink & { hash: Buffer } {
  const token = `obt_${randomToken(32)}`
  const expiresAt = new Date(Date.now() + settings.tokenTtlMs)
  return { token, hash: sha256(token), expiresAt: expiresAt.toISOString(), resumeUrl: `${settings.publicUrl.replace(/\/+$/, '')}/onboarding#token=${token}` }
}

const TOKEN_SHAPE = /^obt_[A-Za-z0-9_-]{43}$/
const NOT_FOUND = () => new AppError('NOT_FOUND', 'no onboarding session for this link; it may have expired or been replaced by a newer one')

/** Secrets saved with a step are sealed apart and never shown back; everything else is returned as saved. */
const SECRET_FIELDS = new Set(['accessToken', 'appSecret', 'verifyToken'])

function viewOf(row: q.SessionRow): SessionView {
  const state = stateOf(row)
  const progress = progressOf(state)
  return {
    sessionId: row.id,
    status: row.status,
    stepsVersion: row.stepsVersion,
    currentStep: progress.currentStep,
    progress: progress.percent,
    next: row.status === 'completed' ? 'All done: your workspace is live.' : progress.next,
    steps: progress.steps.map((s) => ({
      ...s,
      fields: Object.fromEntries(Object.entries(row.fields[s.name] ?? {}).map(([k, v]) => [k, SECRET_FIELDS.has(k) ? '(saved)' : v])),
    })),
    tenantId: row.tenantId,
    expiresAt: row.tokenExpiresAt.toISOString(),
  }
}

const stateOf = (row: q.SessionRow): SessionState => ({ stepsVersion: row.stepsVersion, fields: row.fields, completedSteps: row.completedSteps, status: row.status })

/** Runs fn in a transaction scoped to the session behind the token: 404 for an unknown, expired or rotated token. */
async function inSession<T>(sql: Sql, token: string, fn: (tx: Tx, row: q.SessionRow) => Promise<T>): Promise<T> {
  if (!TOKEN_SHAPE.test(token)) throw NOT_FOUND()
  const found = await q.sessionForToken(sql, sha256(token))
  if (!found) throw NOT_FOUND()
  return inSessionById(sql, found.id, found.tenantId, fn)
}

async function inSessionById<T>(sql: Sql, sessionId: string, tenantId: string | null, fn: (tx: Tx, row: q.SessionRow) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await q.scopeToSession(tx, sessionId, tenantId)
    // Views recorded since (append-only, folded later) go first, so the session's history stays in order.
    await q.foldViews(tx, [sessionId], null)
    const row = await q.lockSession(tx, sessionId)
    if (!row) throw NOT_FOUND()
    const result = await fn(tx, row)
    const after = await q.readSession(tx, sessionId)
    if (after?.tenantId) await recordActivityEvents(tx, after)
    return result
  }) as Promise<T>
}

/** Analytics event names of the step activities. */
const EVENT_OF: Record<string, string> = {
  started: 'onboarding.started', viewed: 'onboarding.step_viewed', saved: 'onboarding.step_saved', invalid: 'onboarding.step_invalid',
  completed: 'onboarding.step_completed', nudged: 'onboarding.nudged', abandoned: 'onboarding.abandoned', resumed: 'onboarding.resumed',
  link_rotated: 'onboarding.link_rotated', went_live: 'onboarding.completed',
}

/**
 * Every step activity is also an analytics event of the tenant, exactly once (dedupe key per activity row, and a
 * per-session cursor so only new activities are read), in the transaction that recorded it. Activities from before the tenant existed (the first views and saves) join the
 * stream, with their own times, in the transaction that creates it; ones a trigger recorded (a number registered,
 * the test message) join on the session's next transaction.
 */
async function recordActivityEvents(tx: Tx, row: q.SessionRow): Promise<void> {
  await recordEventsOfSessions(tx, [row.id])
}

/** The same, for many sessions of the tenant the transaction is scoped to, in two statements. */
async function recordEventsOfSessions(tx: Tx, sessionIds: string[]): Promise<void> {
  const activities = await q.takeActivitiesForEvents(tx, sessionIds)
  if (activities.length === 0) return
  await recordEvents(tx, activities.map((a) => ({
    name: EVENT_OF[a.kind] ?? `onboarding.${a.kind}`, leadId: null, occurredAt: a.createdAt,
    properties: { sessionId: a.sessionId, ...(a.step ? { step: a.step } : {}) }, dedupeKey: `onb:act:${a.id}`, source: 'onboarding',
  })))
}

/**
 * Every activity: the session is touched, an abandoned one resumes (recorded), and its one inactivity job moves to
 * nudgeAfter from now (which also cancels a nudge that was due).
 */
async function touch(tx: Tx, settings: OnboardingSettings, row: q.SessionRow, change: q.SessionChange = {}): Promise<q.SessionRow> {
  const resumed = row.status === 'abandoned'
  const updated = await q.updateSession(tx, row.id, {
    ...change, touch: true, resumed, status: resumed ? 'in_progress' : change.status,
    idleAfterMs: row.status === 'completed' ? null : settings.nudgeAfterMs,
  })
  if (resumed) {
    await q.insertActivities(tx, row.id, row.tenantId, [{ step: row.abandonedStep, kind: 'resumed' }])
  }
  return updated
}

/** A public sign-up or an operator's setup link: a new session and its first link. */
export async function startSession(deps: OnboardingDeps, input: { origin: 'signup' | 'setup_link'; businessName?: string; contactEmail?: string; createdBy: string }) {
  const link = issueToken(deps.settings)
  const id = randomUUID()
  const prefill: Record<string, unknown> = {}
  if (input.businessName) prefill.businessName = input.businessName
  if (input.contactEmail) prefill.contactEmail = input.contactEmail
  const row = await deps.sql.begin(async (tx) => {
    await q.scopeToSession(tx, id, null)
    const created = await q.insertSession(tx, {
      id, tenantId: null, tokenHash: link.hash, tokenExpiresAt: new Date(link.expiresAt), stepsVersion: STEPS_VERSION, origin: input.origin,
      fields: Object.keys(prefill).length > 0 ? { business_info: prefill } : {}, createdBy: input.createdBy,
      idleAfterMs: deps.settings.nudgeAfterMs,
    })
    await q.insertActivities(tx, id, null, [{ step: null, kind: 'started', detail: { origin: input.origin } }])
    return created
  })
  return { session: viewOf(row), link: { token: link.token, resumeUrl: link.resumeUrl, expiresAt: link.expiresAt } }
}

/** A new link for a session (from the business's own session, or an operator): the old token stops working. */
export async function rotateLink(deps: OnboardingDeps, target: { token: string } | { sessionId: string }): Promise<IssuedLink> {
  const link = issueToken(deps.settings)
  const apply = async (tx: Tx, row: q.SessionRow) => {
    if (row.status === 'completed') throw new AppError('CONFLICT', 'this onboarding is complete; the workspace is live')
    await q.rotateToken(tx, row.id, link.hash, new Date(link.expiresAt))
    await q.insertActivities(tx, row.id, row.tenantId, [{ step: null, kind: 'link_rotated' }])
  }
  if ('token' in target) await inSession(deps.sql, target.token, apply)
  else {
    const found = await q.sessionTenant(deps.sql, target.sessionId)
    if (!found) throw NOT_FOUND()
    await inSessionById(deps.sql, found.id, found.tenantId, apply)
  }
  return { token: link.token, resumeUrl: link.resumeUrl, expiresAt: link.expiresAt }
}

/**
 * Resuming: the steps, what is missing, the progress and what to do next. A view is an activity, but a cheap one:
 * one statement reads the session and appends the view (no lock, no update); the inactivity batch (or the session's
 * next transaction) folds it into a step activity with its analytics event and moves the last activity. Only a view
 * of an abandoned session, which resumes it, takes the session's lock.
 */
export async function viewSession(deps: OnboardingDeps, token: string): Promise<SessionView> {
  if (!TOKEN_SHAPE.test(token)) throw NOT_FOUND()
  const found = await q.viewSessionByToken(deps.sql, sha256(token), STEP_ORDERS)
  if (!found) throw NOT_FOUND()
  if (found.recorded) return viewOf({ ...found, accessTokenSealed: null })
  return inSessionById(deps.sql, found.id, found.tenantId, async (tx, row) => {
    const progress = progressOf(stateOf(row))
    await q.insertActivities(tx, row.id, row.tenantId, [{ step: progress.currentStep, kind: 'viewed' }])
    return viewOf(row.status === 'completed' ? row : await touch(tx, deps.settings, row))
  })
}

const STEP_ORDERS = stepOrders()

export interface SaveResult { session: SessionView; apiKey?: { id: string; key: string; prefix: string } }

/**
 * Saves fields of a step (partially, from any device). When the step's required fields are all there, its work
 * runs and the step completes in one transaction with that work: nothing is half-created. Order is enforced: a
 * step waits for the ones before it (409 naming the first).
 */
export async function saveStep(deps: OnboardingDeps, token: string, step: StepName, rawFields: unknown): Promise<SaveResult> {
  if (!STEP_NAMES.includes(step)) throw new AppError('NOT_FOUND', `no step ${step}`)
  const body = typeof rawFields === 'object' && rawFields !== null && !Array.isArray(rawFields) ? (rawFields as Record<string, unknown>) : null
  if (!body) throw new AppError('BAD_REQUEST', 'send { "fields": { … } }', { details: [{ in: 'body', path: 'fields', message: 'an object of the step’s fields' }] })

  // 1. Save what is valid (or record why not), in its own short transaction.
  const saved = await inSession(deps.sql, token, async (tx, row) => {
    if (row.status === 'completed') throw new AppError('CONFLICT', 'this onboarding is complete; the workspace is live')
    const state = stateOf(row)
    const blocker = blockingStep(state, step)
    if (blocker) throw new AppError('CONFLICT', `complete ${blocker} first`, { details: [{ in: 'path', path: 'step', message: `${blocker} must be completed before ${step}` }] })
    if (row.completedSteps[step]) throw new AppError('CONFLICT', `${step} is already completed`)
    const definition = stepDefinition(row.stepsVersion, step)
    if (definition.completion === 'event') {
      throw new AppError('CONFLICT', `${step} completes by itself: ${definition.instructions}`)
    }
    const parsed = definition.fields.strict().partial().safeParse(body)
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ in: 'body', path: ['fields', ...i.path].join('.'), message: i.message }))
      // The failed attempt is an activity (field names and codes only); nothing else changes.
      return { invalid: details, row, tenantId: row.tenantId }
    }
    const values = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== undefined))
    const { accessToken, appSecret, verifyToken, ...plain } = values as Record<string, unknown>
    const secretsSaved: Record<string, unknown> = {}
    if (accessToken !== undefined) secretsSaved.accessToken = true
    if (appSecret !== undefined) secretsSaved.appSecret = deps.secrets.seal(String(appSecret))
    if (verifyToken !== undefined) secretsSaved.verifyToken = deps.secrets.seal(String(verifyToken))
    const merged = { ...row.fields, [step]: { ...(row.fields[step] ?? {}), ...plain, ...secretsSaved } }
    const updated = await touch(tx, deps.settings, row, {
      fields: merged,
      ...(accessToken !== undefined ? { accessTokenSealed: deps.secrets.seal(String(accessToken)) } : {}),
    })
    await q.insertActivities(tx, row.id, row.tenantId, [{ step, kind: 'saved', detail: { fields: Object.keys(values) } }])
    return { invalid: null, row: updated, tenantId: row.tenantId }
  })
  if (saved.invalid) {
    await inSessionById(deps.sql, saved.row.id, saved.tenantId, (tx, row) => q.insertActivities(tx, row.id, row.tenantId, [{ step, kind: 'invalid', detail: { fields: saved.invalid!.map((d) => d.path) } }]))
    throw new AppError('BAD_REQUEST', `invalid ${saved.invalid.map((d) => d.path).join(', ')}`, { details: saved.invalid })
  }
  const definition = stepDefinition(saved.row.stepsVersion, step)
  const stepFields = saved.row.fields[step] ?? {}
  if (definition.required.some((f) => stepFields[f] === undefined)) return { session: viewOf(saved.row) }

  // 2. Every required field is there: check with the outside world first (no transaction open during the call).
  const prepared = step === 'whatsapp_connect' ? await checkWithMeta(deps, saved.row) : null

  // 3. The step's work and its completion, atomically.
  return completeStep(deps, saved.row.id, saved.row.tenantId, step, prepared)
}

interface MetaCheck { displayPhoneNumber: string; verifiedName: string | null; messagingLimit: string | null }

/** The token and ids checked against the Graph API; Meta's refusals become field errors the business can act on. */
async function checkWithMeta(deps: OnboardingDeps, row: q.SessionRow): Promise<MetaCheck> {
  if (!deps.graph) throw new AppError('UNAVAILABLE', 'WhatsApp cannot be connected right now: the Graph API is not configured')
  const f = row.fields.whatsapp_connect ?? {}
  const accessToken = deps.secrets.open(row.accessTokenSealed!)
  const fail = async (field: string, err: unknown): Promise<never> => {
    const code = isGraphApiError(err) ? err.code : null
    const explanation = code === 190
      ? 'Meta refused this access token (code 190): it is invalid or expired. Create a system-user token with whatsapp_business_messaging and whatsapp_business_management permissions.'
      : code === 100
        ? `Meta says this ${field === 'wabaId' ? 'WhatsApp Business Account' : 'phone number'} does not exist or this token cannot use it (code 100). Check the id in WhatsApp Manager and the token's permissions.`
        : isGraphApiError(err) && err.httpStatus === null
          ? 'Meta could not be reached; try again in a minute.'
          : `Meta refused the request${code ? ` (code ${code})` : ''}.`
    const problemField = code === 190 ? 'accessToken' : field
    await inSessionById(deps.sql, row.id, row.tenantId, (tx) => q.insertActivities(tx, row.id, row.tenantId, [{ step: 'whatsapp_connect', kind: 'invalid', detail: { fields: [`fields.${problemField}`], metaCode: code } }]))
    if (isGraphApiError(err) && err.httpStatus === null) throw new AppError('UNAVAILABLE', explanation)
    throw new AppError('UNPROCESSABLE', explanation, { details: [{ in: 'body', path: `fields.${problemField}`, message: explanation, metaCode: code }] })
  }
  let profile
  try {
    profile = await deps.graph.getPhoneNumber({ phoneNumberId: String(f.phoneNumberId), accessToken })
  } catch (err) {
    return fail('phoneNumberId', err)
  }
  try {
    await deps.graph.subscribeApp({ wabaId: String(f.wabaId), accessToken })
  } catch (err) {
    return fail('wabaId', err)
  }
  // Best effort, like at the API's registration: without it the number counts as TIER_250 until Meta's webhooks say.
  const messagingLimit = await askMessagingLimit(deps.graph, String(f.phoneNumberId), accessToken)
  return { displayPhoneNumber: profile.displayPhoneNumber, verifiedName: profile.verifiedName, messagingLimit }
}

async function completeStep(deps: OnboardingDeps, sessionId: string, tenantId: string | null, step: StepName, meta: MetaCheck | null): Promise<SaveResult> {
  return inSessionById(deps.sql, sessionId, tenantId, async (tx, row) => {
    if (row.completedSteps[step]) return { session: viewOf(row) }
    const f = row.fields[step] ?? {}
    const actor = ACTOR(row.id)
    let apiKey: SaveResult['apiKey']
    let tenant = row.tenantId
    let phoneNumberId: string | undefined
    switch (step) {
      case 'business_info': {
        const id = randomUUID()
        await setTenant(tx, id)
        await createPendingTenant(tx, { id, name: String(f.businessName), slug: slugOf(String(f.businessName)), defaultCountry: String(f.country), timezone: String(f.timezone) }, actor)
        await q.assignTenant(tx, row.id, id)
        tenant = id
        break
      }
      case 'whatsapp_connect': {
        const own = f.appMode === 'own'
        if (own && (!f.appSecret || !f.verifyToken)) {
          throw new AppError('BAD_REQUEST', 'an own app needs appSecret and verifyToken', { details: ['appSecret', 'verifyToken'].filter((k) => !f[k]).map((k) => ({ in: 'body', path: `fields.${k}`, message: 'required with appMode "own"' })) })
        }
        const number = await registerPhoneNumberIn(tx, deps.secrets, tenant!, actor, {
          phoneNumberId: String(f.phoneNumberId), wabaId: String(f.wabaId), displayPhoneNumber: meta!.displayPhoneNumber,
          ...(meta!.verifiedName ? { verifiedName: meta!.verifiedName } : {}),
          accessToken: deps.secrets.open(row.accessTokenSealed!),
          app: own
            ? { mode: 'own', ...(f.appId ? { appId: String(f.appId) } : {}), appSecret: deps.secrets.open(String(f.appSecret)), verifyToken: deps.secrets.open(String(f.verifyToken)) }
            : { mode: 'platform' },
        })
        if (meta!.messagingLimit) await recordMessagingLimit(tx, number.id, meta!.messagingLimit)
        phoneNumberId = number.id
        break
      }
      case 'bot_setup': {
        const businessName = String(row.fields.business_info?.businessName ?? 'our business')
        await createFlowIn(tx, { tenantId: tenant!, actor }, { document: qualificationStarterFlow({ businessName, services: (f.services as string[]) ?? [] }), publish: true })
        break
      }
      case 'go_live': {
        const activated = await activateTenantWithFirstKey(tx, tenant!, actor)
        if (!activated) throw new AppError('CONFLICT', 'the workspace is not pending')
        apiKey = { id: activated.apiKey.id, key: activated.apiKey.key, prefix: activated.apiKey.prefix }
        break
      }
      case 'test_message':
        throw new AppError('CONFLICT', 'test_message completes by itself when your message arrives')
    }
    const completedSteps = { ...row.completedSteps, [step]: new Date().toISOString() }
    const finished = step === 'go_live'
    const updated = await q.updateSession(tx, row.id, {
      completedSteps, touch: true, ...(phoneNumberId ? { phoneNumberId } : {}), ...(finished ? { status: 'completed' as const, completed: true } : {}),
      idleAfterMs: finished ? null : deps.settings.nudgeAfterMs,
    })
    await q.insertActivities(tx, row.id, tenant, [{ step, kind: 'completed' }, ...(finished ? [{ step, kind: 'went_live' as const }] : [])])
    if (finished) await q.insertWebhookEvent(tx, { sessionId: row.id, tenantId: tenant, type: 'onboarding.completed', payload: webhookPayload(updated) })
    return { session: viewOf(updated), ...(apiKey ? { apiKey } : {}) }
  })
}

/** The payload of an outbound onboarding webhook: ids, step and progress, never the business's fields. */
function webhookPayload(row: q.SessionRow) {
  const progress = progressOf(stateOf(row))
  return { sessionId: row.id, tenantId: row.tenantId, status: row.status, currentStep: progress.currentStep, progress: progress.percent, lastActivityAt: row.lastActivityAt.toISOString() }
}

const slugOf = (name: string) => {
  const base = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'business'
  return `${base.length < 2 ? `${base}x` : base}-${randomBytes(3).toString('hex')}`
}

/** The webhook payload of a due session, with the status it is about to have. */
function idlePayload(row: q.IdleRow, status: q.SessionRow['status']) {
  const progress = progressOf(row)
  return { sessionId: row.id, tenantId: row.tenantId, status, currentStep: progress.currentStep, progress: progress.percent, lastActivityAt: row.lastActivityAt.toISOString() }
}

const contactPhoneOf = (fields: Record<string, Record<string, unknown>>) => {
  const phone = fields.business_info?.contactPhone
  return typeof phone === 'string' && /^\+[1-9]\d{6,14}$/.test(phone) ? phone : null
}

/**
 * What a due session gets: idle past abandonAfter → abandoned (at the step it stopped at); idle past nudgeAfter and
 * not nudged since its last activity → nudged (and due again at abandonAfter); otherwise (an activity moved it, a
 * view folded just now) rescheduled to when it is due. SQL checks each decision against the row again.
 */
export function decideIdle(row: q.IdleRow, now: Date, settings: OnboardingSettings): q.IdleDecision {
  if (row.status !== 'in_progress') return { id: row.id, outcome: 'clear', step: null, payload: null, whatsapp: false }
  const idle = now.getTime() - row.lastActivityAt.getTime()
  const step = progressOf(row).currentStep
  if (idle >= settings.abandonAfterMs) return { id: row.id, outcome: 'abandoned', step, payload: idlePayload(row, 'abandoned'), whatsapp: false }
  const nudgedSinceActivity = row.nudgedAt !== null && row.nudgedAt >= row.lastActivityAt
  if (idle >= settings.nudgeAfterMs && !nudgedSinceActivity) {
    return {
      id: row.id, outcome: 'nudged', step, whatsapp: contactPhoneOf(row.fields) !== null,
      payload: { ...idlePayload(row, 'in_progress'), resumeHint: 'send the business a new link (POST /v1/ops/onboarding/sessions/:id/link) or remind them of theirs' },
    }
  }
  return { id: row.id, outcome: 'rescheduled', step, payload: null, whatsapp: false }
}

export interface InactivityCounts { claimed: number; abandoned: number; nudged: number; rescheduled: number; cleared: number }

/**
 * One batch of the inactivity check, in one transaction: up to `limit` due sessions claimed (skip locked, so batches
 * run side by side), decided, and applied set-based (activities, webhook events and their jobs, WhatsApp nudge
 * jobs), with the analytics events of the tenants' sessions. A nudge or abandonment happens exactly once: the row is
 * locked and re-checked, and its next due time moves in the same statement.
 */
export async function runInactivityBatch(deps: Pick<OnboardingDeps, 'sql' | 'settings'>, options: { now?: Date; limit?: number; only?: string[] } = {}): Promise<InactivityCounts> {
  const now = options.now ?? new Date()
  const counts: InactivityCounts = { claimed: 0, abandoned: 0, nudged: 0, rescheduled: 0, cleared: 0 }
  await deps.sql.begin(async (tx) => {
    const rows = await q.claimIdleSessions(tx, options.limit ?? INACTIVITY_BATCH, now, options.only ?? null)
    counts.claimed = rows.length
    if (rows.length === 0) return
    const applied = await q.applyIdleChecks(tx, rows.map((r) => decideIdle(r, now, deps.settings)), now, deps.settings.nudgeAfterMs, deps.settings.abandonAfterMs)
    for (const a of applied) counts[a.outcome === 'clear' ? 'cleared' : a.outcome] += 1
    await recordEventsByTenant(tx, rows)
  })
  return counts
}

/** Pending views (any session) filed as step activities, with their analytics events; how many sessions. */
export async function foldPendingViews(deps: Pick<OnboardingDeps, 'sql'>, limit = FOLD_BATCH): Promise<number> {
  return deps.sql.begin(async (tx) => {
    const touched = await q.foldViews(tx, null, limit)
    await recordEventsByTenant(tx, touched.map((t) => ({ id: t.sessionId, tenantId: t.tenantId })))
    return touched.length
  }) as Promise<number>
}

/** Analytics events of many sessions' new activities: per tenant, scoped to it (sessions without one wait for it). */
async function recordEventsByTenant(tx: Tx, sessions: { id: string; tenantId: string | null }[]): Promise<void> {
  const byTenant = new Map<string, string[]>()
  for (const s of sessions) if (s.tenantId) byTenant.set(s.tenantId, [...(byTenant.get(s.tenantId) ?? []), s.id])
  for (const [tenantId, ids] of byTenant) {
    await q.scopeToTenant(tx, tenantId)
    await recordEventsOfSessions(tx, ids)
  }
}

const INACTIVITY_BATCH = 500
const FOLD_BATCH = 2000
/** Batches run side by side (skip locked) within one run of the task. */
const INACTIVITY_LANES = 2

/**
 * onboarding__check_inactivity: pending views folded, then every due session in batches, until none is due or the
 * budget is spent; then the task schedules itself for the next due session, and no later than the sweep interval (so
 * a session started meanwhile, due at nudgeAfter, is never missed: the interval is at most nudgeAfter).
 */
export async function runInactivity(deps: Pick<OnboardingDeps, 'sql' | 'settings'>, pollMs: number, budgetMs = 50_000): Promise<InactivityCounts & { viewsFolded: number }> {
  // Started up to a poll interval early (see scheduleInactivityBatch): wait for the due time here, so that what is
  // due is handled when it is due rather than at the next poll after it.
  const due = await q.nextIdleCheck(deps.sql)
  const wait = due ? due.getTime() - Date.now() : Infinity
  if (wait > 0 && wait <= pollMs + 50) await sleep(wait)
  const started = Date.now()
  const total = { claimed: 0, abandoned: 0, nudged: 0, rescheduled: 0, cleared: 0, viewsFolded: 0 }
  const inBudget = () => Date.now() - started < budgetMs
  for (let n = FOLD_BATCH; n === FOLD_BATCH && inBudget();) {
    n = await foldPendingViews(deps)
    total.viewsFolded += n
  }
  const lane = async () => {
    for (let claimed = INACTIVITY_BATCH; claimed === INACTIVITY_BATCH && inBudget();) {
      const c = await runInactivityBatch(deps)
      claimed = c.claimed
      for (const k of ['claimed', 'abandoned', 'nudged', 'rescheduled', 'cleared'] as const) total[k] += c[k]
    }
  }
  await Promise.all(Array.from({ length: INACTIVITY_LANES }, lane))
  await scheduleInactivity(deps, pollMs)
  return total
}

/** The sweep interval: the longest the task waits, even with nothing due. */
export const inactivityMaxWaitMs = (settings: OnboardingSettings) => Math.max(100, Math.min(settings.nudgeAfterMs, 10_000))

/** (Re)arms the inactivity task for its next run; the worker does it at start, and each run at its end. */
export const scheduleInactivity = (deps: Pick<OnboardingDeps, 'sql' | 'settings'>, pollMs: number) =>
  q.scheduleInactivityBatch(deps.sql, inactivityMaxWaitMs(deps.settings), pollMs).then(() => undefined)

/** The platform's own WhatsApp number, from which nudges go to businesses (config PLATFORM_*). */
export interface PlatformSender { tenantId: string; phoneNumberId: string; template: string; language: string }

export type WhatsAppNudgeOutcome = 'sent' | 'skipped' | 'already' | 'gone'

/** A WhatsApp reminder goes to the same contact at most once per this long (across its sessions and nudges). */
export const WHATSAPP_NUDGE_MIN_INTERVAL_MS = 24 * 3_600_000

class AlreadyRecorded extends Error {}

/**
 * onboarding__send_whatsapp_nudge: the WhatsApp side of one nudge. The business's contact phone (business_info) gets
 * the approved template (business name, resume link) from the platform's number, through the platform tenant's
 * outbox (so the send governor, rate limits, suppression and retries apply), in one transaction with its activity:
 * `whatsapp_nudged` (with the message id) or `whatsapp_nudge_skipped` (with the reason: no platform number
 * configured, no contact phone, the business came back first, the number or template unusable, suppressed, opted
 * out, reminded within 24 hours). At most one outcome per nudge (unique index): a second run changes nothing.
 */
export async function sendWhatsAppNudge(deps: OnboardingDeps, platform: PlatformSender | null, sessionId: string, nudgeActivityId: string): Promise<{ outcome: WhatsAppNudgeOutcome; reason?: string }> {
  const found = await q.sessionTenant(deps.sql, sessionId)
  if (!found) return { outcome: 'gone' }
  try {
    return await inSessionById(deps.sql, found.id, found.tenantId, async (tx, row) => {
      const nudge = await q.findActivity(tx, row.id, nudgeActivityId)
      if (!nudge || nudge.kind !== 'nudged') return { outcome: 'gone' as const }
      const record = async (kind: 'whatsapp_nudged' | 'whatsapp_nudge_skipped', detail: Record<string, unknown>) => {
        const id = await q.insertNudgeOutcome(tx, row.id, row.tenantId, nudge.step, kind, { nudge: Number(nudge.id), ...detail })
        if (!id) throw new AlreadyRecorded()
      }
      const skipped = async (reason: string) => {
        await record('whatsapp_nudge_skipped', { reason })
        return { outcome: 'skipped' as const, reason }
      }
      const phone = contactPhoneOf(row.fields)
      if (!platform) return skipped('no_platform_number')
      if (!phone) return skipped('no_contact_phone')
      // Continuing cancels a pending nudge: an activity after it, or the session no longer in progress.
      if (row.status !== 'in_progress' || row.lastActivityAt > nudge.createdAt) return skipped('resumed_before_sending')
      const link = issueToken(deps.settings)
      const businessName = String(row.fields.business_info?.businessName ?? 'your business')
      await q.scopeToTenant(tx, platform.tenantId)
      const plan = await planTemplateSend(tx, {
        metaPhoneNumberId: platform.phoneNumberId, waId: phone.slice(1), name: platform.template, language: platform.language,
        components: [{ type: 'body', parameters: [{ type: 'text', text: businessName }, { type: 'text', text: link.resumeUrl }] }],
        notWithinMs: WHATSAPP_NUDGE_MIN_INTERVAL_MS,
      })
      const queued = plan.kind === 'ready'
        ? await queueOutbound(tx, { tenantId: platform.tenantId, phoneId: plan.phoneId, leadId: null, waId: plan.waId, body: plan.body, templateId: plan.templateId, source: 'api', requestedBy: `onboarding:nudge:${row.id}` })
        : null
      await q.scopeToSession(tx, row.id, row.tenantId)
      if (plan.kind === 'skip') return skipped(plan.reason)
      // The link in the message is a second live token (only its hash is kept); the business's own link keeps working.
      await q.setNudgeToken(tx, row.id, link.hash, new Date(link.expiresAt))
      await record('whatsapp_nudged', { messageId: queued!.id, template: platform.template })
      return { outcome: 'sent' as const }
    })
  } catch (err) {
    if (err instanceof AlreadyRecorded) return { outcome: 'already' }
    throw err
  }
}

/** PLATFORM_TENANT_ID and PLATFORM_PHONE_NUMBER_ID, or null when the platform has no number of its own. */
export const platformSenderOf = (config: { PLATFORM_TENANT_ID?: string; PLATFORM_PHONE_NUMBER_ID?: string; ONBOARDING_NUDGE_TEMPLATE: string; ONBOARDING_NUDGE_TEMPLATE_LANGUAGE: string }): PlatformSender | null =>
  config.PLATFORM_TENANT_ID && config.PLATFORM_PHONE_NUMBER_ID
    ? { tenantId: config.PLATFORM_TENANT_ID, phoneNumberId: config.PLATFORM_PHONE_NUMBER_ID, template: config.ONBOARDING_NUDGE_TEMPLATE, language: config.ONBOARDING_NUDGE_TEMPLATE_LANGUAGE }
    : null

/** onboarding__message_arrived: test_message was completed by ingestion; what follows it in the session. */
export async function afterTestMessage(deps: OnboardingDeps, sessionId: string): Promise<void> {
  const found = await q.sessionTenant(deps.sql, sessionId)
  if (!found) return
  await inSessionById(deps.sql, found.id, found.tenantId, async (tx, row) => {
    // The step's activity (recorded by the trigger) becomes its analytics event as this transaction ends.
    await touch(tx, deps.settings, row)
  })
}

/** The session view for an operator or a test that knows only the id. */
export async function sessionById(deps: Pick<OnboardingDeps, 'sql'>, sessionId: string): Promise<SessionView | null> {
  const found = await q.sessionTenant(deps.sql, sessionId)
  if (!found) return null
  return deps.sql.begin(async (tx) => {
    await q.scopeToSession(tx, found.id, found.tenantId)
    const row = await q.readSession(tx, found.id)
    return row ? viewOf(row) : null
  }) as Promise<SessionView | null>
}

/** The settings from the service's config (durations already in milliseconds). */
export const onboardingSettingsOf = (config: { ONBOARDING_TOKEN_TTL_HOURS: number; ONBOARDING_NUDGE_AFTER: number; ONBOARDING_ABANDON_AFTER: number; ONBOARDING_PUBLIC_URL?: string; HOST: string; WEBHOOKS_PORT: number }): OnboardingSettings => ({
  tokenTtlMs: config.ONBOARDING_TOKEN_TTL_HOURS * 3_600_000,
  nudgeAfterMs: config.ONBOARDING_NUDGE_AFTER,
  abandonAfterMs: config.ONBOARDING_ABANDON_AFTER,
  publicUrl: config.ONBOARDING_PUBLIC_URL ?? `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.WEBHOOKS_PORT}`,
})
