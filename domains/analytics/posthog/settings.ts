import type { Config } from '../../../lib/config.js'
import { SecretBox } from '../../../lib/crypto.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { insertAuditEntry } from '../../tenancy/queries.js'
import { effectiveAllowList } from './forward.js'
import { projectToStore, projectView } from './projects.js'
import * as q from './queries.js'
import type { PosthogSettingsView, PutPosthogSettingsBody } from './schemas.js'

/** Who changes the settings, for the audit log. */
export interface PosthogActor { tenantId: string; actor: string; requestId: string | null }

// Tenants' project keys are sealed with SECRETS_KEY, as Meta's tokens are.
const secretsOf = (config: Config) => SecretBox.fromConfig(config.SECRETS_KEY)

async function viewOf(tx: Tx, config: Config, stored: q.StoredPosthogSettings | null): Promise<PosthogSettingsView> {
  return {
    enabled: stored?.enabled ?? false,
    allowedProperties: [...effectiveAllowList(stored)],
    customProperties: stored?.allowedProperties != null,
    configured: !!config.POSTHOG_API_KEY || !!stored?.projectApiKeySealed,
    project: projectView(config, secretsOf(config), stored),
    outbox: await q.outboxCounts(tx),
    personDeletions: await q.deletionCounts(tx),
    updatedAt: stored?.updatedAt ?? null,
    updatedBy: stored?.updatedBy ?? null,
  }
}

export const getPosthogSettings = (sql: Sql, config: Config, tenantId: string): Promise<PosthogSettingsView> =>
  withTenant(sql, tenantId, async (tx) => viewOf(tx, config, await q.findPosthogSettings(tx)))

/**
 * Opt in or out, choose the properties, and optionally the tenant's own project. Events recorded from the commit on are forwarded (earlier ones are not
 * backfilled); opting out deletes what is still waiting in the outbox. Audited with what changed.
 */
export const putPosthogSettings = (sql: Sql, config: Config, who: PosthogActor, body: PutPosthogSettingsBody): Promise<PosthogSettingsView> =>
  withTenant(sql, who.tenantId, async (tx) => {
    const before = await q.findPosthogSettings(tx)
    const allowedProperties = body.allowedProperties === undefined ? (before?.allowedProperties ?? null) : body.allowedProperties && [...new Set(body.allowedProperties)]
    const project = projectToStore(config, secretsOf(config), before, body.project)
    const stored = await q.upsertPosthogSettings(tx, who.tenantId, { enabled: body.enabled, allowedProperties, project, updatedBy: who.actor })
    const dropped = stored.enabled ? 0 : await q.deleteTenantOutbox(tx)
    await insertAuditEntry(tx, {
      tenantId: who.tenantId, actor: who.actor, action: 'analytics.posthog_settings_changed', targetType: 'posthog_settings', targetId: who.tenantId,
      details: {
        enabled: { from: before?.enabled ?? false, to: stored.enabled }, allowedProperties: stored.allowedProperties, droppedFromOutbox: dropped,
        // Which project, never its keys.
        ownProject: { from: !!before?.projectApiKeySealed, to: !!stored.projectApiKeySealed }, projectHost: stored.projectHost, projectId: stored.projectId,
      },
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
