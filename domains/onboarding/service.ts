import { randomBytes, randomUUID } from 'node:crypto'
import { randomToken, sha256, type SecretBox } from '../../lib/crypto.js'
import { setTenant, type Sql, type Tx } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { recordEvents } from '../analytics/service.js'
import { createFlowIn } from '../conversations/service.js'
import { qualificationStarterFlow } from '../conversations/flows/starter-flows.js'
import { activateTenantWithFirstKey, createPendingTenant } from '../tenancy/service.js'
import { isGraphApiError, type GraphClient } from '../whatsapp/graph/client.js'
import { registerPhoneNumberIn } from '../whatsapp/numbers.js'
import * as q from './queries.js'
import { blockingStep, progressOf, STEP_NAMES, stepDefinition, STEPS_VERSION, type SessionState, type StepName } from './steps.js'

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
  if (!/^obt_[A-Za-z0-9_-]{43}$/.test(token)) throw NOT_FOUND()
  const found = await q.sessionForToken(sql, sha256(token))
  if (!found) throw NOT_FOUND()
  return inSessionById(sql, found.id, found.tenantId, fn)
}

async function inSessionById<T>(sql: Sql, sessionId: string, tenantId: string | null, fn: (tx: Tx, row: q.SessionRow) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await q.scopeToSession(tx, sessionId, tenantId)
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
  const activities = await q.takeActivitiesForEvents(tx, row.id)
  if (activities.length === 0) return
  await recordEvents(tx, activities.map((a) => ({
    name: EVENT_OF[a.kind] ?? `onboarding.${a.kind}`, leadId: null, occurredAt: a.createdAt,
    properties: { sessionId: row.id, ...(a.step ? { step: a.step } : {}) }, dedupeKey: `onb:act:${a.id}`, source: 'onboarding',
  })))
}

/**
 * Every activity: the session is touched, an abandoned one resumes (recorded), and its one inactivity job moves to
 * nudgeAfter from now (which also cancels a nudge that was due).
 */
async function touch(tx: Tx, settings: OnboardingSettings, row: q.SessionRow, change: q.SessionChange = {}): Promise<q.SessionRow> {
  const resumed = row.status === 'abandoned'
  const updated = await q.updateSession(tx, row.id, { ...change, touch: true, resumed, status: resumed ? 'in_progress' : change.status })
  if (resumed) {
    await q.insertActivities(tx, row.id, row.tenantId, [{ step: row.abandonedStep, kind: 'resumed' }])
  }
  if (updated.status !== 'completed') await q.scheduleInactivityCheck(tx, row.id, new Date(Date.now() + settings.nudgeAfterMs))
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
    })
    await q.insertActivities(tx, id, null, [{ step: null, kind: 'started', detail: { origin: input.origin } }])
    await q.scheduleInactivityCheck(tx, id, new Date(Date.now() + deps.settings.nudgeAfterMs))
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

/** Resuming: the steps, what is missing, the progress and what to do next. A view is an activity. */
export async function viewSession(deps: OnboardingDeps, token: string): Promise<SessionView> {
  return inSession(deps.sql, token, async (tx, row) => {
    const progress = progressOf(stateOf(row))
    await q.insertActivities(tx, row.id, row.tenantId, [{ step: progress.currentStep, kind: 'viewed' }])
    return viewOf(row.status === 'completed' ? row : await touch(tx, deps.settings, row))
  })
}

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

interface MetaCheck { displayPhoneNumber: string; verifiedName: string | null }

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
  return { displayPhoneNumber: profile.displayPhoneNumber, verifiedName: profile.verifiedName }
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
    })
    await q.insertActivities(tx, row.id, tenant, [{ step, kind: 'completed' }, ...(finished ? [{ step, kind: 'went_live' as const }] : [])])
    if (finished) {
      await q.insertWebhookEvent(tx, { sessionId: row.id, tenantId: tenant, type: 'onboarding.completed', payload: webhookPayload(updated) })
      await q.cancelInactivityCheck(tx, row.id)
    } else {
      await q.scheduleInactivityCheck(tx, row.id, new Date(Date.now() + deps.settings.nudgeAfterMs))
    }
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

/**
 * onboarding__check_inactivity: the one job of a session, due nudgeAfter after its last activity. Idle past
 * abandonAfter → abandoned (with the step it stopped at); idle past nudgeAfter and not nudged since → nudged, and due
 * again at abandonAfter. Woken early (an activity moved it, or a retry), it only moves itself to when it is due.
 */
export async function checkInactivity(deps: OnboardingDeps, sessionId: string, now = new Date()): Promise<'abandoned' | 'nudged' | 'rescheduled' | 'nothing'> {
  const found = await q.sessionTenant(deps.sql, sessionId)
  if (!found) return 'nothing'
  return inSessionById(deps.sql, found.id, found.tenantId, async (tx, row) => {
    if (row.status !== 'in_progress') return 'nothing'
    const idle = now.getTime() - row.lastActivityAt.getTime()
    const current = progressOf(stateOf(row)).currentStep
    if (idle >= deps.settings.abandonAfterMs) {
      const updated = await q.updateSession(tx, row.id, { status: 'abandoned', abandoned: { step: current } })
      await q.insertActivities(tx, row.id, row.tenantId, [{ step: current, kind: 'abandoned', detail: { idleSeconds: Math.round(idle / 1000) } }])
      await q.insertWebhookEvent(tx, { sessionId: row.id, tenantId: row.tenantId, type: 'onboarding.abandoned', payload: webhookPayload(updated) })
      return 'abandoned'
    }
    const nudgedSinceActivity = row.nudgedAt !== null && row.nudgedAt >= row.lastActivityAt
    if (idle >= deps.settings.nudgeAfterMs && !nudgedSinceActivity) {
      const updated = await q.updateSession(tx, row.id, { nudgedAt: now })
      await q.insertActivities(tx, row.id, row.tenantId, [{ step: current, kind: 'nudged' }])
      await q.insertWebhookEvent(tx, { sessionId: row.id, tenantId: row.tenantId, type: 'onboarding.nudge', payload: { ...webhookPayload(updated), resumeHint: 'send the business a new link (POST /v1/ops/onboarding/sessions/:id/link) or remind them of theirs' } })
      await q.scheduleInactivityCheck(tx, row.id, new Date(row.lastActivityAt.getTime() + deps.settings.abandonAfterMs))
      return 'nudged'
    }
    const due = row.lastActivityAt.getTime() + (nudgedSinceActivity ? deps.settings.abandonAfterMs : deps.settings.nudgeAfterMs)
    await q.scheduleInactivityCheck(tx, row.id, new Date(due))
    return 'rescheduled'
  })
}

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
