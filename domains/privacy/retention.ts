/**
 * Retention: how long each kind of personal data is kept, per tenant, and the nightly pass that deletes what is
 * past its period (services/workers/tasks/privacy__apply_retention.ts).
 *
 * Defaults: analytics raw events 90 days; messages and interactions kept until the person is erased; exports
 * PRIVACY_EXPORT_TTL_DAYS (7); the details of partner-link clicks that name no lead 30 days (pruned hourly by
 * assessments__prune_click_details, not by this pass: the click rows stay). Raw webhook deliveries are platform-wide (WEBHOOK_RETENTION_DAYS, 14 days after
 * processing, pruned hourly by whatsapp__prune_deliveries): a delivery is stored before anyone knows whose it is,
 * and one delivery can carry several tenants' messages, so no tenant can own its period. GET shows it read-only.
 *
 * Deletion goes in statements of at most PRIVACY_RETENTION_BATCH_ROWS rows, each in its own transaction under
 * the tenant, which also adds that batch's counts to the tenant's run record (privacy.retention_runs): what the
 * record says was removed was removed, even after a crash. A run stops starting batches when its time budget is
 * spent and is recorded `incomplete`; the next night carries on.
 *
 * Analytics events are partitioned by UTC day (migration 0021). Before the tenants' batches, the pass drops every
 * day partition wholly older than the longest period any tenant keeps (the default, 90 days, or a longer one a tenant
 * set), so at the common volume no event row is deleted one by one. A tenant with a shorter period is trimmed in
 * batches as before; the dedupe keys of the dropped days (analytics.event_keys) go in batches per tenant.
 */
import type { Config } from '../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../lib/db.js'
import { dropEventPartitionsOlderThan } from '../analytics/service.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import type { PatchRetentionBody, RetentionRunView, RetentionSettings, RetentionView } from './export-schemas.js'
import * as q from './retention-queries.js'

export const DEFAULT_ANALYTICS_EVENTS_DAYS = 90
/** Also the column's default (migration 0062): a tenant without settings is pruned at this age. */
export const DEFAULT_LINK_CLICK_DETAILS_DAYS = 30

export const defaultRetention = (exportsDays: number): RetentionSettings => ({
  analyticsEventsDays: DEFAULT_ANALYTICS_EVENTS_DAYS,
  messagesDays: null,
  interactionsDays: null,
  exportsDays,
  linkClickDetailsDays: DEFAULT_LINK_CLICK_DETAILS_DAYS,
})

const settingsOnly = (s: RetentionSettings): RetentionSettings => ({
  analyticsEventsDays: s.analyticsEventsDays, messagesDays: s.messagesDays, interactionsDays: s.interactionsDays, exportsDays: s.exportsDays,
  linkClickDetailsDays: s.linkClickDetailsDays,
})

/** The tenant's periods: its own row, else the defaults. */
export async function retentionSettingsOf(tx: Tx, tenantId: string, defaultExportsDays: number): Promise<RetentionSettings> {
  const row = await q.findRetentionSettings(tx, tenantId)
  return row ? settingsOnly(row) : defaultRetention(defaultExportsDays)
}

const viewOf = (config: Config, row: q.StoredRetention | null): RetentionView => ({
  ...(row ? settingsOnly(row) : defaultRetention(config.PRIVACY_EXPORT_TTL_DAYS)),
  webhookDeliveriesDays: config.WEBHOOK_RETENTION_DAYS,
  customised: row !== null,
  updatedAt: row?.updatedAt ?? null,
  updatedBy: row?.updatedBy ?? null,
})

export const getRetention = (sql: Sql, config: Config, tenantId: string) =>
  withTenant(sql, tenantId, async (tx) => viewOf(config, await q.findRetentionSettings(tx, tenantId)))

type Who = { tenantId: string; actor: string; requestId: string | null }

/** Changes some periods; the audit entry says which, from what to what. A PATCH that changes nothing writes nothing. */
export async function patchRetention(sql: Sql, config: Config, who: Who, body: PatchRetentionBody): Promise<RetentionView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const before = await q.lockRetentionSettings(tx, who.tenantId)
    const current = before ? settingsOnly(before) : defaultRetention(config.PRIVACY_EXPORT_TTL_DAYS)
    const next: RetentionSettings = { ...current, ...body }
    const changes: Record<string, { from: number | null; to: number | null }> = {}
    for (const key of Object.keys(current) as (keyof RetentionSettings)[]) {
      if (current[key] !== next[key]) changes[key] = { from: current[key], to: next[key] }
    }
    if (Object.keys(changes).length === 0) return viewOf(config, before)
    const after = await q.upsertRetentionSettings(tx, who.tenantId, next, who.actor)
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'privacy.retention_changed', targetType: 'privacy_retention', targetId: who.tenantId,
      details: { changes }, requestId: who.requestId ?? undefined,
    })
    return viewOf(config, after)
  })
}

export const listRetentionRuns = (sql: Sql, tenantId: string, limit: number): Promise<RetentionRunView[]> =>
  withTenant(sql, tenantId, (tx) => q.listRetentionRuns(tx, limit))

// ---------------------------------------------------------------------------------------------------------
// The nightly pass.

export interface RetentionLimits {
  batchRows: number
  /** The pass starts no new batch after this moment (ms since epoch). */
  deadline: number
  defaultExportsDays: number
  /** Dedupe keys of analytics events before this moment go (their days' partitions were dropped). */
  eventKeysBefore?: Date
}

export interface TenantRetentionResult {
  tenantId: string
  runId: string
  status: 'completed' | 'incomplete'
  removed: Record<string, number>
  batches: number
}

type Step = (tx: Tx, tenantId: string, limit: number) => Promise<Record<string, number>>

/** The steps a tenant's settings call for, each with the table whose count says whether a batch was full. */
function stepsFor(s: RetentionSettings, limits: RetentionLimits): { main: string; run: Step }[] {
  const steps: { main: string; run: Step }[] = [
    { main: 'privacy.export_requests', run: (tx, t, n) => q.deleteExpiredExports(tx, t, s.exportsDays, n) },
    // What partition drops left: the days younger than the longest period but older than this tenant's.
    { main: 'analytics.events', run: (tx, t, n) => q.deleteOldAnalyticsEvents(tx, t, s.analyticsEventsDays, n) },
  ]
  const keysBefore = limits.eventKeysBefore
  if (keysBefore) steps.push({ main: 'analytics.event_keys', run: (tx, t, n) => q.deleteOldEventKeys(tx, t, keysBefore, n) })
  // The rollups of dropped days go with them (a dropped partition fires no trigger to rebuild them empty).
  if (keysBefore) {
    for (const table of ['event_aggregations', 'hourly_aggregations', 'daily_uniques', 'metrics', 'assessment_rollups'] as const) {
      steps.push({ main: `analytics.${table}`, run: (tx, t, n) => q.deleteOldRollups(table)(tx, t, keysBefore, n) })
    }
  }
  // Messages before interactions: deleting a message unlinks its interactions, which then go by their own period.
  if (s.messagesDays !== null) steps.push({ main: 'whatsapp.messages', run: (tx, t, n) => q.deleteOldMessages(tx, t, s.messagesDays!, n) })
  if (s.interactionsDays !== null) steps.push({ main: 'marketing.lead_interactions', run: (tx, t, n) => q.deleteOldInteractions(tx, t, s.interactionsDays!, n) })
  return steps
}

/** Applies one tenant's periods in bounded batches until nothing is past its period or the deadline passes. */
export async function applyTenantRetention(sql: Sql, tenantId: string, limits: RetentionLimits): Promise<TenantRetentionResult> {
  const { runId, settings } = await withTenant(sql, tenantId, async (tx) => {
    const settings = await retentionSettingsOf(tx, tenantId, limits.defaultExportsDays)
    return { runId: await q.insertRetentionRun(tx, tenantId, settings), settings }
  })
  let removed: Record<string, number> = {}
  let batches = 0
  let status: 'completed' | 'incomplete' = 'completed'
  steps: for (const step of stepsFor(settings, limits)) {
    for (;;) {
      if (Date.now() >= limits.deadline) {
        status = 'incomplete'
        break steps
      }
      const { counts, totals } = await withTenant(sql, tenantId, async (tx) => {
        const counts = await step.run(tx, tenantId, limits.batchRows)
        const totals = { ...removed }
        for (const [k, v] of Object.entries(counts)) if (v > 0) totals[k] = (totals[k] ?? 0) + v
        await q.recordRetentionBatch(tx, runId, totals)
        return { counts, totals }
      })
      // Only what committed counts.
      removed = totals
      batches++
      if ((counts[step.main] ?? 0) < limits.batchRows) break
    }
  }
  await withTenant(sql, tenantId, (tx) => q.finishRetentionRun(tx, runId, status))
  return { tenantId, runId, status, removed, batches }
}

/** The longest analytics period any tenant keeps: the platform default, or a longer one a tenant set. */
export async function longestAnalyticsEventsDays(sql: Sql): Promise<number> {
  return Math.max(DEFAULT_ANALYTICS_EVENTS_DAYS, (await q.longestAnalyticsEventsDays(sql)) ?? 0)
}

export interface RetentionPassResult {
  /** Day partitions of analytics.events dropped (older than every tenant's period), and the first moment kept. */
  partitions: { keepDays: number; keptFrom: Date; dropped: string[] }
  tenants: TenantRetentionResult[]
}

/**
 * Cross-tenant: the analytics partitions no tenant keeps are dropped, then every active tenant in turn, under its
 * own tenant, within one time budget.
 */
export async function applyRetention(sql: Sql, config: Config, now = Date.now()): Promise<RetentionPassResult> {
  const keepDays = await longestAnalyticsEventsDays(sql)
  const { keptFrom, dropped } = await dropEventPartitionsOlderThan(sql, keepDays)
  const limits: RetentionLimits = {
    batchRows: config.PRIVACY_RETENTION_BATCH_ROWS,
    deadline: now + config.PRIVACY_RETENTION_BUDGET_SECONDS * 1000,
    defaultExportsDays: config.PRIVACY_EXPORT_TTL_DAYS,
    eventKeysBefore: keptFrom,
  }
  const tenants: TenantRetentionResult[] = []
  const result = { partitions: { keepDays, keptFrom, dropped }, tenants }
  let after: string | null = null
  for (;;) {
    const page = await q.activeTenantIdsPage(sql, 200, after)
    for (const t of page) {
      if (t.status !== 'active') continue
      if (Date.now() >= limits.deadline) return result
      tenants.push(await applyTenantRetention(sql, t.id, limits))
    }
    if (page.length < 200) return result
    after = page[page.length - 1]!.id
  }
}

/** The tenants' part of applyRetention (partitions are dropped first all the same). */
export const applyRetentionForAllTenants = async (sql: Sql, config: Config, now = Date.now()): Promise<TenantRetentionResult[]> =>
  (await applyRetention(sql, config, now)).tenants
