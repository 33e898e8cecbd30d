import type { Sql, Tx } from '../../../lib/db.js'

// PostHog forwarding's SQL (migration 0025): the tenant's settings and the outbox the events' trigger fills.

export interface StoredPosthogSettings {
  enabled: boolean
  allowedProperties: string[] | null
  /** The tenant's own project (migration 0040): its project API key sealed, null when it uses the operator's. */
  projectApiKeySealed: string | null
  projectHost: string | null
  personalApiKeySealed: string | null
  projectId: string | null
  appHost: string | null
  updatedAt: Date
  updatedBy: string | null
}

/** The tenant's own PostHog project as stored: keys sealed. null fields: not set. */
export interface StoredPosthogProject {
  projectApiKeySealed: string | null
  projectHost: string | null
  personalApiKeySealed: string | null
  projectId: string | null
  appHost: string | null
}

const SETTINGS_COLUMNS = ['enabled', 'allowed_properties', 'project_api_key_sealed', 'project_host', 'personal_api_key_sealed', 'project_id', 'app_host', 'updated_at', 'updated_by']

export const findPosthogSettings = (tx: Tx) =>
  tx<StoredPosthogSettings[]>`select ${tx(SETTINGS_COLUMNS)} from analytics.posthog_settings`.then((r) => r[0] ?? null)

export const upsertPosthogSettings = (tx: Tx, tenantId: string, s: { enabled: boolean; allowedProperties: string[] | null; project: StoredPosthogProject; updatedBy: string }) =>
  tx<StoredPosthogSettings[]>`
    insert into analytics.posthog_settings (tenant_id, enabled, allowed_properties, project_api_key_sealed, project_host, personal_api_key_sealed, project_id, app_host, updated_at, updated_by)
    values (${tenantId}, ${s.enabled}, ${s.allowedProperties}, ${s.project.projectApiKeySealed}, ${s.project.projectHost}, ${s.project.personalApiKeySealed},
            ${s.project.projectId}, ${s.project.appHost}, now(), ${s.updatedBy})
    on conflict (tenant_id) do update set enabled = excluded.enabled, allowed_properties = excluded.allowed_properties,
                                          project_api_key_sealed = excluded.project_api_key_sealed, project_host = excluded.project_host,
                                          personal_api_key_sealed = excluded.personal_api_key_sealed, project_id = excluded.project_id,
                                          app_host = excluded.app_host, updated_at = excluded.updated_at, updated_by = excluded.updated_by
    returning ${tx(SETTINGS_COLUMNS)}`.then((r) => r[0]!)

/** Opting out stops what is still waiting: pending rows go, parked ones too (they would never be sent). */
export const deleteTenantOutbox = (tx: Tx) => tx`delete from analytics.posthog_outbox`.then((r) => r.count)

export interface OutboxCounts { pending: number; parked: number; oldestPendingAt: Date | null; lastError: string | null }
export const outboxCounts = (tx: Tx) =>
  tx<OutboxCounts[]>`
    select count(*) filter (where status = 'pending')::int as pending,
           count(*) filter (where status = 'parked')::int as parked,
           min(created_at) filter (where status = 'pending') as oldest_pending_at,
           (select last_error from analytics.posthog_outbox where last_error is not null order by next_attempt_at desc limit 1) as last_error
      from analytics.posthog_outbox`.then((r) => r[0]!)

/** Parked rows back in the queue, due now, with their attempts reset (an operator fixed what made them fail). */
export const requeueParked = (tx: Tx) =>
  tx`update analytics.posthog_outbox set status = 'pending', attempts = 0, next_attempt_at = now() where status = 'parked'`.then((r) => r.count)

/** Cross-tenant: the tenants with rows due at `now` (security-definer function of 0025). */
export const posthogDueTenants = (sql: Sql, now: Date, limit: number) =>
  sql<{ tenantId: string }[]>`select tenant_id from analytics.posthog_due_tenants(${now}, ${limit})`.then((r) => r.map((x) => x.tenantId))

/** An outbox row with its event as it is now (null columns when the event is gone: retention, a dropped partition). */
export interface DueOutboxRow {
  eventId: string
  attempts: number
  found: boolean
  clientEventId: string | null
  name: string | null
  occurredAt: Date
  leadId: string | null
  anonymousId: string | null
  properties: Record<string, unknown> | null
  source: string | null
  acqSource: string | null
  acqChannel: string | null
  country: string | null
  device: string | null
  browser: string | null
  os: string | null
}

/**
 * Up to `limit` due rows of the transaction's tenant, locked for the send (another drain skips them; an erasure
 * deleting them waits until the send is over), oldest first. The event is found by id in its day partition.
 */
export const lockDueOutbox = (tx: Tx, now: Date, limit: number) =>
  tx<DueOutboxRow[]>`
    select o.event_id, o.attempts, e.id is not null as found, e.event_id as client_event_id, e.name, o.occurred_at,
           e.lead_id, e.anonymous_id, e.properties, e.source, e.acq_source, e.acq_channel, e.country, e.device, e.browser, e.os
      from analytics.posthog_outbox o
      left join analytics.events e on e.tenant_id = o.tenant_id and e.id = o.event_id and e.occurred_at = o.occurred_at
     where o.status = 'pending' and o.next_attempt_at <= ${now}
     order by o.next_attempt_at
     limit ${limit}
       for update of o skip locked`

export const deleteOutboxRows = (tx: Tx, eventIds: string[]) =>
  tx`delete from analytics.posthog_outbox where event_id = any(${eventIds}::bigint[])`.then((r) => r.count)

/**
 * A failed send: one more attempt, due again after base·2^attempts (at most maxMs), or parked with its error once
 * `maxAttempts` is reached. Returns how many were parked.
 */
export const failOutboxRows = (tx: Tx, eventIds: string[], error: string, now: Date, retry: { maxAttempts: number; baseMs: number; maxMs: number }) =>
  tx<{ parked: number }[]>`
    with failed as (
      update analytics.posthog_outbox
         set attempts = attempts + 1,
             last_error = ${error},
             status = case when attempts + 1 >= ${retry.maxAttempts} then 'parked' else 'pending' end,
             next_attempt_at = ${now}::timestamptz
               + make_interval(secs => least(${retry.maxMs}::float8, ${retry.baseMs}::float8 * power(2, least(attempts, 30))) / 1000)
       where event_id = any(${eventIds}::bigint[])
      returning status)
    select count(*) filter (where status = 'parked')::int as parked from failed`.then((r) => r[0]!.parked)

// ---------------------------------------------------------------------------------------------------------------
// Person deletions (migration 0040): an erased person's distinct ids, per project, until PostHog accepted them.

export type DeletionProject = 'operator' | 'tenant'
export interface PersonDeletionRow { erasureRequestId: string; project: DeletionProject; distinctId: string; attempts: number }

/** The anonymous ids of these leads: linked visitors (analytics.identities) and any event carrying both ids. */
export const anonymousIdsOfLeads = (tx: Tx, leadIds: readonly string[]) =>
  tx<{ anonymousId: string }[]>`
    select anonymous_id from analytics.identities where lead_id = any(${leadIds as string[]}::uuid[])
    union
    select anonymous_id from analytics.events where lead_id = any(${leadIds as string[]}::uuid[]) and anonymous_id is not null`.then((r) => r.map((x) => x.anonymousId))

export const insertPersonDeletions = (tx: Tx, tenantId: string, erasureRequestId: string, rows: { project: DeletionProject; distinctId: string }[]) =>
  rows.length === 0 ? Promise.resolve(0) : tx`
    insert into analytics.posthog_person_deletions (tenant_id, erasure_request_id, project, distinct_id)
    select ${tenantId}, ${erasureRequestId}, p, d
      from unnest(${rows.map((r) => r.project)}::text[], ${rows.map((r) => r.distinctId)}::text[]) as t(p, d)
    on conflict do nothing`.then((r) => r.count)

/** The transaction's tenant's due deletions, locked while PostHog is asked (another drain skips them). */
export const lockDueDeletions = (tx: Tx, now: Date, limit: number) =>
  tx<PersonDeletionRow[]>`
    select erasure_request_id, project, distinct_id, attempts
      from analytics.posthog_person_deletions
     where status = 'pending' and next_attempt_at <= ${now}
     order by next_attempt_at
     limit ${limit}
       for update skip locked`

const keyOf = (rows: readonly PersonDeletionRow[]) => ({
  requests: rows.map((r) => r.erasureRequestId), projects: rows.map((r) => r.project), ids: rows.map((r) => r.distinctId),
})

/** PostHog accepted them ('requested'), or nobody can ask it ('manual', with the reason). */
export const settleDeletions = (tx: Tx, rows: readonly PersonDeletionRow[], status: 'requested' | 'manual', reason: string | null) => {
  const k = keyOf(rows)
  return tx`
    update analytics.posthog_person_deletions d
       set status = ${status}, requested_at = case when ${status} = 'requested' then now() end, last_error = ${reason}
      from unnest(${k.requests}::uuid[], ${k.projects}::text[], ${k.ids}::text[]) as t(r, p, i)
     where d.erasure_request_id = t.r and d.project = t.p and d.distinct_id = t.i`.then((r) => r.count)
}

/** A failed request: retried after base·2^attempts (at most maxMs), parked after maxAttempts. Returns how many were parked. */
export const failDeletions = (tx: Tx, rows: readonly PersonDeletionRow[], error: string, now: Date, retry: { maxAttempts: number; baseMs: number; maxMs: number }) => {
  const k = keyOf(rows)
  return tx<{ parked: number }[]>`
    with failed as (
      update analytics.posthog_person_deletions d
         set attempts = d.attempts + 1, last_error = ${error},
             status = case when d.attempts + 1 >= ${retry.maxAttempts} then 'parked' else 'pending' end,
             next_attempt_at = ${now}::timestamptz
               + make_interval(secs => least(${retry.maxMs}::float8, ${retry.baseMs}::float8 * power(2, least(d.attempts, 30))) / 1000)
        from unnest(${k.requests}::uuid[], ${k.projects}::text[], ${k.ids}::text[]) as t(r, p, i)
       where d.erasure_request_id = t.r and d.project = t.p and d.distinct_id = t.i
      returning d.status)
    select count(*) filter (where status = 'parked')::int as parked from failed`.then((r) => r[0]!.parked)
}

export interface DeletionCounts { pending: number; requested: number; manual: number; parked: number; lastError: string | null }
export const deletionCounts = (tx: Tx) =>
  tx<DeletionCounts[]>`
    select count(*) filter (where status = 'pending')::int as pending,
           count(*) filter (where status = 'requested')::int as requested,
           count(*) filter (where status = 'manual')::int as manual,
           count(*) filter (where status = 'parked')::int as parked,
           (select last_error from analytics.posthog_person_deletions where status <> 'requested' and last_error is not null order by next_attempt_at desc limit 1) as last_error
      from analytics.posthog_person_deletions`.then((r) => r[0]!)

/** Cross-tenant: the tenants with deletions due (security-definer function of 0040). */
export const posthogDeletionDueTenants = (sql: Sql, now: Date, limit: number) =>
  sql<{ tenantId: string }[]>`select tenant_id from analytics.posthog_deletion_due_tenants(${now}, ${limit})`.then((r) => r.map((x) => x.tenantId))
