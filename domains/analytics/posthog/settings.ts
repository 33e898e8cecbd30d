import type { Config } from '../../../lib/config.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { effectiveAllowList } from './forward.js'
import * as q from './queries.js'
import type { PosthogSettingsView, PutPosthogSettingsBody } from './schemas.js'

/** Who changes the settings, for the audit log. */
export interface PosthogActor { tenantId: string; actor: string; requestId: string | null }

async function viewOf(tx: Tx, config: Config, stored: q.StoredPosthogSettings | null): Promise<PosthogSettingsView> {
  return {
    enabled: stored?.enabled ?? false,
    allowedProperties: [...effectiveAllowList(stored)],
    customProperties: stored?.allowedProperties != null,
    configured: !!config.POSTHOG_API_KEY,
    outbox: await q.outboxCounts(tx),
    updatedAt: stored?.updatedAt ?? null,
    updatedBy: stored?.updatedBy ?? null,
  }
}

export const getPosthogSettings = (sql: Sql, config: Config, tenantId: string): Promise<PosthogSettingsView> =>
  withTenant(sql, tenantId, async (tx) => viewOf(tx, config, await q.findPosthogSettings(tx)))

/**
 * Opt in or out, and choose the properties. Events recorded from the commit on are forwarded (earlier ones are not
 * backfilled); opting out deletes what is still waiting in the outbox. Audited with what changed.
 */
export const putPosthogSettings = (sql: Sql, config: Config, who: PosthogActor, body: PutPosthogSettingsBody): Promise<PosthogSettingsView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const before = await q.findPosthogSettings(tx)
    const allowedProperties = body.allowedProperties === undefined ? (before?.allowedProperties ?? null) : body.allowedProperties && [...new Set(body.allowedProperties)]
    const stored = await q.upsertPosthogSettings(tx, who.tenantId, { enabled: body.enabled, allowedProperties, updatedBy: who.actor })
    const dropped = stored.enabled ? 0 : await q.deleteTenantOutbox(tx)
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'analytics.posthog_settings_changed', targetType: 'posthog_settings', targetId: who.tenantId,
      details: { enabled: { from: before?.enabled ?? false, to: stored.enabled }, allowedProperties: stored.allowedProperties, droppedFromOutbox: dropped },
      requestId: who.requestId ?? undefined,
    })
    return viewOf(tx, config, stored)
  })

/** Parked rows go back to the queue (after PostHog or the key was fixed); audited with how many. */
export const requeueParkedPosthog = (sql: Sql, who: PosthogActor): Promise<number> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const requeued = await q.requeueParked(tx)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'analytics.posthog_requeued', targetType: 'posthog_settings', targetId: who.tenantId, details: { requeued }, requestId: who.requestId ?? undefined })
    return requeued
  })
