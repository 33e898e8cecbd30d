import type { Sql, Tx } from '../../../lib/db.js'

// PostHog forwarding's SQL (migration 0025): the tenant's settings and the outbox the events' trigger fills.

export interface StoredPosthogSettings {
  enabled: boolean
  allowedProperties: string[] | null
  updatedAt: Date
  updatedBy: string | null
}

export const findPosthogSettings = (tx: Tx) =>
  tx<StoredPosthogSettings[]>`select enabled, allowed_properties, updated_at, updated_by from analytics.posthog_settings`.then((r) => r[0] ?? null)

export const upsertPosthogSettings = (tx: Tx, tenantId: string, s: { enabled: boolean; allowedProperties: string[] | null; updatedBy: string }) =>
  tx<StoredPosthogSettings[]>`
    insert into analytics.posthog_settings (tenant_id, enabled, allowed_properties, updated_at, updated_by)
    values (${tenantId}, ${s.enabled}, ${s.allowedProperties}, now(), ${s.updatedBy})
    on conflict (tenant_id) do update set enabled = excluded.enabled, allowed_properties = excluded.allowed_properties,
                                          updated_at = excluded.updated_at, updated_by = excluded.updated_by
    returning enabled, allowed_properties, updated_at, updated_by`.then((r) => r[0]!)

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
