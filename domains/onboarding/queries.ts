import type { Queryable, Sql, Tx } from '../../lib/db.js'

export interface SessionRow {
  id: string
  tenantId: string | null
  tokenExpiresAt: Date
  stepsVersion: number
  origin: 'signup' | 'setup_link'
  status: 'in_progress' | 'completed' | 'abandoned'
  fields: Record<string, Record<string, unknown>>
  accessTokenSealed: string | null
  completedSteps: Record<string, string>
  phoneNumberId: string | null
  lastActivityAt: Date
  nudgedAt: Date | null
  abandonedAt: Date | null
  abandonedStep: string | null
  resumedCount: number
  completedAt: Date | null
  createdBy: string
  createdAt: Date
}

const sessionColumns = (tx: Tx) => tx`
  id, tenant_id, token_expires_at, steps_version, origin, status, fields, access_token_sealed, completed_steps, phone_number_id,
  last_activity_at, nudged_at, abandoned_at, abandoned_step, resumed_count, completed_at, created_by, created_at`

/** The one lookup before anything is known (security definer): a live token's session, tenant and status. */
export const sessionForToken = (sql: Sql, tokenHash: Buffer) =>
  sql<{ id: string; tenantId: string | null; status: string }[]>`select id, tenant_id, status from onboarding.session_for_token(${tokenHash})`.then((r) => r[0] ?? null)

/**
 * A view in one statement (security definer): the session behind a live token, and its view appended unless the
 * session is abandoned (`recorded` false: the caller resumes it under the lock). `orders`: stepOrders() of steps.ts.
 */
export const viewSessionByToken = (sql: Sql, tokenHash: Buffer, orders: Record<string, string[]>) =>
  sql<(Omit<SessionRow, 'accessTokenSealed'> & { recorded: boolean })[]>`
    select * from onboarding.view_session(${tokenHash}, ${sql.json(orders)}::jsonb)`.then((r) => r[0] ?? null)

/** A job's way in: the session's tenant (security definer), nothing else. */
export const sessionTenant = (sql: Sql, sessionId: string) =>
  sql<{ id: string; tenantId: string | null }[]>`select id, tenant_id from onboarding.session_tenant(${sessionId})`.then((r) => r[0] ?? null)

/**
 * Scopes the transaction to one session (and its tenant once it has one): the RLS policies let it see that session's
 * rows and nothing else. Transaction-local, like withTenant.
 */
export const scopeToSession = (tx: Tx, sessionId: string, tenantId: string | null) =>
  tx`select set_config('app.onboarding_session', ${sessionId}, true), set_config('app.tenant_id', ${tenantId ?? ''}, true)`

export const insertSession = (tx: Tx, row: { id: string; tenantId: string | null; tokenHash: Buffer; tokenExpiresAt: Date; stepsVersion: number; origin: string; fields: unknown; createdBy: string; idleAfterMs: number }) =>
  tx<SessionRow[]>`
    insert into onboarding.sessions (id, tenant_id, token_hash, token_expires_at, steps_version, origin, fields, created_by, idle_check_at)
    values (${row.id}, ${row.tenantId}, ${row.tokenHash}, ${row.tokenExpiresAt}, ${row.stepsVersion}, ${row.origin}, ${tx.json(row.fields as never)}, ${row.createdBy}, now() + ${row.idleAfterMs} * interval '1 millisecond')
    returning ${sessionColumns(tx)}`.then((r) => r[0]!)

/** `no key update`: a view's append-only insert (its foreign key takes a key-share lock) never waits for it. */
export const lockSession = (tx: Tx, id: string) =>
  tx<SessionRow[]>`select ${sessionColumns(tx)} from onboarding.sessions where id = ${id} for no key update`.then((r) => r[0] ?? null)

export const readSession = (tx: Tx, id: string) =>
  tx<SessionRow[]>`select ${sessionColumns(tx)} from onboarding.sessions where id = ${id}`.then((r) => r[0] ?? null)

export interface SessionChange {
  fields?: Record<string, Record<string, unknown>>
  accessTokenSealed?: string
  completedSteps?: Record<string, string>
  phoneNumberId?: string
  status?: SessionRow['status']
  touch?: boolean
  resumed?: boolean
  nudgedAt?: Date | null
  abandoned?: { step: string | null }
  completed?: boolean
  /** Inactivity next due this long after now() (the last activity's clock); null: never (completed). Undefined keeps it. */
  idleAfterMs?: number | null
}

export const updateSession = (tx: Tx, id: string, c: SessionChange) =>
  tx<SessionRow[]>`
    update onboarding.sessions set
      fields = ${c.fields ? tx.json(c.fields as never) : tx`fields`},
      access_token_sealed = ${c.accessTokenSealed ?? tx`access_token_sealed`},
      completed_steps = ${c.completedSteps ? tx.json(c.completedSteps as never) : tx`completed_steps`},
      phone_number_id = ${c.phoneNumberId ?? tx`phone_number_id`},
      status = ${c.status ?? tx`status`},
      last_activity_at = ${c.touch ? tx`now()` : tx`last_activity_at`},
      resumed_count = resumed_count + ${c.resumed ? 1 : 0},
      nudged_at = ${c.nudgedAt === undefined ? tx`nudged_at` : c.nudgedAt},
      abandoned_at = ${c.abandoned ? tx`now()` : c.resumed ? null : tx`abandoned_at`},
      abandoned_step = ${c.abandoned ? c.abandoned.step : tx`abandoned_step`},
      completed_at = ${c.completed ? tx`now()` : tx`completed_at`},
      idle_check_at = ${c.idleAfterMs === undefined ? tx`idle_check_at` : c.idleAfterMs === null ? null : tx`now() + ${c.idleAfterMs} * interval '1 millisecond'`},
      updated_at = now()
    where id = ${id}
    returning ${sessionColumns(tx)}`.then((r) => r[0]!)

/** A new link: the old token (and a WhatsApp nudge's link) stop working at once (only the new hash is kept). */
export const rotateToken = (tx: Tx, id: string, tokenHash: Buffer, expiresAt: Date) =>
  tx`
    update onboarding.sessions set token_hash = ${tokenHash}, token_expires_at = ${expiresAt}, nudge_token_hash = null, nudge_token_expires_at = null,
           updated_at = now()
     where id = ${id}`

/** The link of a WhatsApp nudge: a second live token, replacing the previous nudge's; the business's own link stays. */
export const setNudgeToken = (tx: Tx, id: string, tokenHash: Buffer, expiresAt: Date) =>
  tx`update onboarding.sessions set nudge_token_hash = ${tokenHash}, nudge_token_expires_at = ${expiresAt}, updated_at = now() where id = ${id}`

/** The tenant now exists: the session and everything recorded about it so far become its data. */
export const assignTenant = (tx: Tx, sessionId: string, tenantId: string) =>
  tx`
    with s as (update onboarding.sessions set tenant_id = ${tenantId}, updated_at = now() where id = ${sessionId} and tenant_id is null returning id),
         a as (update onboarding.step_activities set tenant_id = ${tenantId} where session_id = ${sessionId} and tenant_id is null),
         w as (update onboarding.webhook_events set tenant_id = ${tenantId} where session_id = ${sessionId} and tenant_id is null),
         v as (update onboarding.session_views set tenant_id = ${tenantId} where session_id = ${sessionId} and tenant_id is null)
    select count(*) from s`

export interface ActivityRow { step: string | null; kind: string; detail?: Record<string, unknown> }

export const insertActivities = (tx: Tx, sessionId: string, tenantId: string | null, rows: ActivityRow[]) =>
  rows.length === 0
    ? Promise.resolve()
    : tx`
        insert into onboarding.step_activities (session_id, tenant_id, step, kind, detail)
        select ${sessionId}, ${tenantId}, r.step, r.kind, coalesce(r.detail, '{}')
          from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as r(step text, kind text, detail jsonb)`.then(() => undefined)

/** One activity of the session (the nudge a WhatsApp nudge job is for). */
export const findActivity = (tx: Tx, sessionId: string, id: string) =>
  tx<{ id: string; step: string | null; kind: string; createdAt: Date }[]>`
    select id::text, step, kind, created_at from onboarding.step_activities where session_id = ${sessionId} and id = ${id}`.then((r) => r[0] ?? null)

/** A WhatsApp nudge's outcome, at most once per nudge (unique index on detail.nudge): null when already recorded. */
export const insertNudgeOutcome = (tx: Tx, sessionId: string, tenantId: string | null, step: string | null, kind: 'whatsapp_nudged' | 'whatsapp_nudge_skipped', detail: Record<string, unknown>) =>
  tx<{ id: string }[]>`
    insert into onboarding.step_activities (session_id, tenant_id, step, kind, detail)
    values (${sessionId}, ${tenantId}, ${step}, ${kind}, ${tx.json(detail as never)})
    on conflict (session_id, ((detail ->> 'nudge')::bigint)) where kind in ('whatsapp_nudged', 'whatsapp_nudge_skipped') do nothing
    returning id::text`.then((r) => r[0]?.id ?? null)

export interface StoredActivity { id: string; sessionId: string; step: string | null; kind: string; createdAt: Date }

/** The sessions' activities not yet recorded as analytics events, oldest first, and each session's cursor moved past them. */
export const takeActivitiesForEvents = (tx: Tx, sessionIds: string[]) =>
  tx<StoredActivity[]>`
    with s as (select id, activity_events_through as through from onboarding.sessions where id = any (${sessionIds}::uuid[])),
         a as (select x.id, x.session_id, x.step, x.kind, x.created_at from onboarding.step_activities x join s on x.session_id = s.id and x.id > s.through),
         moved as (
           update onboarding.sessions t set activity_events_through = m.through
             from (select session_id, max(id) as through from a group by session_id) m where t.id = m.session_id)
    select id::text, session_id, step, kind, created_at from a order by id`

// ---------------------------------------------------------------------------------------------------------
// Inactivity, in batches (migration 0038): sessions carry when they are next due (idle_check_at, indexed); the one
// recurring job claims the due ones with skip locked, decides, and applies the decisions set-based.

export interface IdleRow {
  id: string
  tenantId: string | null
  stepsVersion: number
  status: SessionRow['status']
  fields: Record<string, Record<string, unknown>>
  completedSteps: Record<string, string>
  lastActivityAt: Date
  nudgedAt: Date | null
}

/** Due sessions (of `only`, when given), locked for the caller's transaction, their pending views folded first. */
export const claimIdleSessions = (tx: Tx, limit: number, now: Date, only: string[] | null = null) =>
  tx<IdleRow[]>`select * from onboarding.claim_idle_sessions(${limit}, ${now}, ${only}::uuid[])`

export interface IdleDecision {
  id: string
  outcome: 'abandoned' | 'nudged' | 'rescheduled' | 'clear'
  step: string | null
  payload: Record<string, unknown> | null
  /** The session has a contact number: the nudge also goes out on WhatsApp (onboarding__send_whatsapp_nudge). */
  whatsapp: boolean
}

export const applyIdleChecks = (tx: Tx, decisions: IdleDecision[], now: Date, nudgeAfterMs: number, abandonAfterMs: number) =>
  tx<{ sessionId: string; tenantId: string | null; outcome: IdleDecision['outcome'] }[]>`
    select * from onboarding.apply_idle_checks(${tx.json(decisions as never)}::jsonb, ${now}, ${nudgeAfterMs}, ${abandonAfterMs})`

/** Pending views (of the sessions given, or any) filed as step activities; the sessions touched. */
export const foldViews = (tx: Tx, sessionIds: string[] | null, limit: number | null) =>
  tx<{ sessionId: string; tenantId: string | null }[]>`select * from onboarding.fold_views(${sessionIds}::uuid[], ${limit}::integer)`

/**
 * The one inactivity job (job_key), due `leadMs` (the worker's poll interval) before the earliest due session, since
 * a worker picks a job up only at its next poll (the task then waits for the due time itself), and never later than
 * `maxWaitMs` from now, so an activity due sooner than what was planned (a session started since) is seen in time. High priority: the jobs a
 * batch queues (webhooks, WhatsApp nudges) must not delay the next batch. The task name is schemas.ts CHECK_INACTIVITY_TASK.
 */
export const scheduleInactivityBatch = (sql: Queryable, maxWaitMs: number, leadMs: number) =>
  sql`
    select graphile_worker.add_job('onboarding__check_inactivity', '{}'::json,
             run_at => least(coalesce(onboarding.next_idle_check(), 'infinity') - ${leadMs} * interval '1 millisecond',
                             now() + ${maxWaitMs} * interval '1 millisecond'),
             job_key => 'onboarding-idle-batch', job_key_mode => 'replace', priority => -10, max_attempts => 1000)`

/** The earliest due session's time, or null. */
export const nextIdleCheck = (sql: Queryable) =>
  sql<{ at: Date | null }[]>`select onboarding.next_idle_check() as at`.then((r) => r[0]?.at ?? null)

/** Scopes a transaction to one tenant (no session): what a batch does before recording a tenant's events. */
export const scopeToTenant = (tx: Tx, tenantId: string) =>
  tx`select set_config('app.onboarding_session', '', true), set_config('app.tenant_id', ${tenantId}, true)`

/** An outbound webhook event and its delivery job, in one statement. The task is schemas.ts DELIVER_WEBHOOK_TASK. */
export const insertWebhookEvent = (tx: Tx, e: { sessionId: string; tenantId: string | null; type: string; payload: unknown }) =>
  tx<{ id: string }[]>`
    with e as (
      insert into onboarding.webhook_events (session_id, tenant_id, type, payload)
      values (${e.sessionId}, ${e.tenantId}, ${e.type}, ${tx.json(e.payload as never)})
      returning id
    )
    select e.id, graphile_worker.add_job('onboarding__deliver_webhook', json_build_object('eventId', e.id, 'sessionId', ${e.sessionId}::text), max_attempts => 8) is not null as queued
      from e`.then((r) => r[0]!.id)

export interface WebhookEventRow { id: string; sessionId: string; type: string; payload: Record<string, unknown>; status: string; attempts: number; createdAt: Date }

export const lockWebhookEvent = (tx: Tx, id: string) =>
  tx<WebhookEventRow[]>`select id, session_id, type, payload, status, attempts, created_at from onboarding.webhook_events where id = ${id} for update`.then((r) => r[0] ?? null)

export const recordWebhookAttempt = (tx: Tx, id: string, outcome: { status: 'pending' | 'delivered' | 'failed' | 'skipped'; httpStatus: number | null; error: string | null }) =>
  tx`
    update onboarding.webhook_events
       set attempts = attempts + 1, status = ${outcome.status}, last_status = ${outcome.httpStatus}, last_error = ${outcome.error},
           delivered_at = ${outcome.status === 'delivered' ? tx`now()` : null}
     where id = ${id}`

export const listWebhookEvents = (tx: Tx, sessionId: string) =>
  tx<(WebhookEventRow & { lastStatus: number | null; lastError: string | null })[]>`
    select id, session_id, type, payload, status, attempts, last_status, last_error, created_at
      from onboarding.webhook_events where session_id = ${sessionId} order by created_at, id`

export interface FunnelRow {
  sessionId: string
  stepsVersion: number
  status: string
  abandonedStep: string | null
  resumedCount: number
  createdAt: Date
  completedSteps: Record<string, string>
  firstSeen: Record<string, string>
}

/** Every session started in [from, to) across tenants (security definer; counts and times, never fields). */
export const funnelRows = (sql: Sql, from: Date, to: Date) =>
  sql<FunnelRow[]>`select * from onboarding.funnel_rows(${from}, ${to})`
