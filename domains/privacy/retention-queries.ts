import type { Queryable, Tx } from '../../lib/db.js'
import type { RetentionRunView, RetentionSettings } from './export-schemas.js'
import { deleteEventKeysBefore, deleteEventsOlderThan } from '../analytics/queries.js'
import { deleteRollupsBefore } from '../analytics/rollup-queries.js'
import { deleteInteractionsOlderThan, unlinkInteractionsFromMessages } from '../marketing/leads/queries.js'
import { deleteMessagesWithHistory, messagesOlderThan } from '../whatsapp/queries.js'

export const tenantDefaultCountry = (tx: Tx, tenantId: string) =>
  tx<{ defaultCountry: string }[]>`select default_country from core.tenants where id = ${tenantId}`.then((r) => r[0]?.defaultCountry ?? null)

// ---------------------------------------------------------------------------------------------------------
// Settings.

export type StoredRetention = RetentionSettings & { updatedAt: Date; updatedBy: string }

export const findRetentionSettings = (tx: Tx, tenantId: string) =>
  tx<StoredRetention[]>`
    select analytics_events_days, messages_days, interactions_days, exports_days, link_click_details_days, updated_at, updated_by
      from privacy.retention_settings where tenant_id = ${tenantId}`.then((r) => r[0] ?? null)

/** Locks the tenant's row (if any) so two PATCHes apply one after the other and each audits what it changed. */
export const lockRetentionSettings = (tx: Tx, tenantId: string) =>
  tx<StoredRetention[]>`
    select analytics_events_days, messages_days, interactions_days, exports_days, link_click_details_days, updated_at, updated_by
      from privacy.retention_settings where tenant_id = ${tenantId} for update`.then((r) => r[0] ?? null)

export const upsertRetentionSettings = (tx: Tx, tenantId: string, s: RetentionSettings, actor: string) =>
  tx<StoredRetention[]>`
    insert into privacy.retention_settings (tenant_id, analytics_events_days, messages_days, interactions_days, exports_days, link_click_details_days, updated_by)
    values (${tenantId}, ${s.analyticsEventsDays}, ${s.messagesDays}, ${s.interactionsDays}, ${s.exportsDays}, ${s.linkClickDetailsDays}, ${actor})
    on conflict (tenant_id) do update
       set analytics_events_days = excluded.analytics_events_days, messages_days = excluded.messages_days,
           interactions_days = excluded.interactions_days, exports_days = excluded.exports_days,
           link_click_details_days = excluded.link_click_details_days,
           updated_by = excluded.updated_by, updated_at = now()
    returning analytics_events_days, messages_days, interactions_days, exports_days, link_click_details_days, updated_at, updated_by`.then((r) => r[0]!)

// ---------------------------------------------------------------------------------------------------------
// Runs.

export const insertRetentionRun = (tx: Tx, tenantId: string, settings: RetentionSettings) =>
  tx<{ id: string }[]>`
    insert into privacy.retention_runs (tenant_id, settings) values (${tenantId}, ${tx.json(settings)})
    returning id::text`.then((r) => r[0]!.id)

/** The run's totals so far, written in the transaction of the batch that produced them. */
export const recordRetentionBatch = (tx: Tx, runId: string, removed: Record<string, number>) =>
  tx`update privacy.retention_runs set removed = ${tx.json(removed)}, batches = batches + 1 where id = ${runId}`

export const finishRetentionRun = (tx: Tx, runId: string, status: 'completed' | 'incomplete') =>
  tx`update privacy.retention_runs set status = ${status}, finished_at = now() where id = ${runId}`

export const listRetentionRuns = (tx: Tx, limit: number) =>
  tx<(RetentionRunView)[]>`
    select id::text, status, settings, removed, batches, started_at, finished_at
      from privacy.retention_runs order by started_at desc, id desc limit ${limit}`

/** Cross-tenant: a page of active tenants, through the one narrow definer function operators use. */
export const activeTenantIdsPage = (sql: Queryable, limit: number, afterId: string | null) =>
  sql<{ id: string; status: string }[]>`select id, status from core.list_tenants(${limit}, ${afterId}::uuid)`

/** Cross-tenant, one number: the longest analytics period any tenant set (null when none did). */
export const longestAnalyticsEventsDays = (sql: Queryable) =>
  sql<{ days: number | null }[]>`select privacy.longest_analytics_events_days() as days`.then((r) => r[0]!.days)

// ---------------------------------------------------------------------------------------------------------
// Deleting what is past its period, `limit` rows per statement. Each returns what it removed, per table.

const cutoff = (tx: Tx, days: number) => tx`now() - make_interval(days => ${days})`

// Events, interactions and messages belong to their domains: retention asks them to delete, it does not write
// their tables itself (domains/one-writer.test.ts).
export const deleteOldAnalyticsEvents = async (tx: Tx, tenantId: string, days: number, limit: number) =>
  ({ 'analytics.events': await deleteEventsOlderThan(tx, tenantId, days, limit) })

export const deleteOldEventKeys = async (tx: Tx, tenantId: string, before: Date, limit: number) =>
  ({ 'analytics.event_keys': await deleteEventKeysBefore(tx, tenantId, before, limit) })

/** Rollup rows of the days whose raw partitions were dropped (under the transaction's tenant). */
export const deleteOldRollups = (table: 'event_aggregations' | 'hourly_aggregations' | 'daily_uniques' | 'metrics' | 'assessment_rollups') => async (tx: Tx, _tenantId: string, before: Date, limit: number) =>
  ({ [`analytics.${table}`]: await deleteRollupsBefore(tx, table, before, limit) })

export const deleteOldInteractions = async (tx: Tx, tenantId: string, days: number, limit: number) =>
  ({ 'marketing.lead_interactions': await deleteInteractionsOlderThan(tx, tenantId, days, limit) })

/**
 * Messages past the period, with their status history and outbound sends; interactions pointing at them are
 * unlinked and kept (they have their own period), conversation events keep their rows.
 */
export async function deleteOldMessages(tx: Tx, tenantId: string, days: number, limit: number) {
  const ids = await messagesOlderThan(tx, tenantId, days, limit)
  if (ids.length === 0) return { 'whatsapp.messages': 0, 'whatsapp.message_statuses': 0, 'whatsapp.outbound_sends': 0, 'marketing.lead_interactions.unlinked': 0 }
  const unlinked = await unlinkInteractionsFromMessages(tx, tenantId, ids)
  const r = await deleteMessagesWithHistory(tx, tenantId, ids)
  return {
    'whatsapp.messages': r.messages,
    'whatsapp.message_statuses': r.statuses,
    'whatsapp.outbound_sends': r.sends,
    'marketing.lead_interactions.unlinked': unlinked,
  }
}

/** Ready exports past their expiry, and failed requests older than the period (their chunks cascade). */
export const deleteExpiredExports = (tx: Tx, tenantId: string, days: number, limit: number) =>
  tx<{ requests: number; chunks: number }[]>`
    with doomed as (
      select id from privacy.export_requests
       where tenant_id = ${tenantId}
         and (expires_at <= now() or (status = 'failed' and created_at < ${cutoff(tx, days)}))
       limit ${limit}
    ), chunks as (
      select count(*)::int as n from privacy.export_chunks c join doomed d on d.id = c.export_id
    ), gone as (
      delete from privacy.export_requests e using doomed d where e.id = d.id returning 1
    )
    select (select count(*)::int from gone) as requests, (select n from chunks) as chunks`
    .then(([r]) => ({ 'privacy.export_requests': r!.requests, 'privacy.export_chunks': r!.chunks }))
