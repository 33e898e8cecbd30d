import { randomUUID } from 'node:crypto'
import { withTenant, type Sql } from '../../lib/db.js'
import { rollUp } from '../../domains/analytics/rollups.js'
import { createSiteKey, recordEvents } from '../../domains/analytics/service.js'
import { putPosthogSettings } from '../../domains/analytics/posthog/settings.js'
import { insertPersonDeletions } from '../../domains/analytics/posthog/queries.js'
import { testConfig } from '../apps.js'
import type { SiteKeyView } from '../../domains/analytics/schemas.js'
import type { TestTenant } from './tenants.js'
import { linkAnonymousIds } from '../../domains/analytics/platform-events.js'
import { makeLead } from './marketing-rows.js'

/** A site key for `tenant`, created the way the API does it. */
export const makeSiteKey = (sql: Sql, tenant: TestTenant, overrides: { name?: string; allowedOrigins?: string[] } = {}): Promise<SiteKeyView> =>
  createSiteKey(sql, { tenantId: tenant.id, actor: 'test', requestId: null }, { name: overrides.name ?? 'Main website', allowedOrigins: overrides.allowedOrigins ?? ['https://clinic.example'] })

/** One row in each analytics table (site keys, the event inbox, event keys, visitor links, PostHog settings and outbox, the rollups), for the RLS test. */
export async function populateAnalyticsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await makeSiteKey(sql, tenant)
  await withTenant(sql, tenant.id, (tx) => tx`
    insert into analytics.event_inbox (tenant_id, id, name, type, occurred_at, anonymous_id, properties, context, source, status, attempts, last_error)
    values (${tenant.id}, ${randomUUID()}, 'pricing.viewed', 'page', now(), 'anon-rows', '{}', '{"userAgent":"test"}', 'site', 'parked', 1, 'test')`)
  // Rolled up (counts, a visitor's day, a KPI, the tenant's state), then one more event whose bucket stays dirty.
  const hourAgo = new Date(Date.now() - 3_600_000)
  await withTenant(sql, tenant.id, (tx) => recordEvents(tx, [
    { name: 'form.viewed', occurredAt: hourAgo, anonymousId: 'anon-rows', properties: { formId: 'f-rows' } },
  ]))
  await rollUp(sql, { tenantId: tenant.id })
  await withTenant(sql, tenant.id, (tx) => recordEvents(tx, [{ name: 'form.viewed', occurredAt: new Date(), properties: { formId: 'f-rows' } }]))
  await withTenant(sql, tenant.id, (tx) => recordEvents(tx, [{ name: 'test.keyed', occurredAt: new Date(), dedupeKey: `test:rows:${randomUUID()}`, source: 'api' }]))
  await withTenant(sql, tenant.id, async (tx) => {
    const lead = await makeLead(tx, tenant.id, { name: 'Visitor' })
    await linkAnonymousIds(tx, [{ anonymousId: 'anon-rows', leadId: lead.id, via: 'form' }])
  })
  // PostHog forwarding (0025): the tenant opts in, and the event it then records gets its outbox row from the trigger.
  await putPosthogSettings(sql, testConfig(), { tenantId: tenant.id, actor: 'test', requestId: null }, { enabled: true })
  await withTenant(sql, tenant.id, (tx) => recordEvents(tx, [{ name: 'test.forwarded', occurredAt: new Date() }]))
  // An erased person's PostHog distinct id waiting to be deleted there (0040), under an erasure request of its own.
  await withTenant(sql, tenant.id, async (tx) => {
    const [request] = await tx<{ id: string }[]>`
      insert into privacy.erasure_requests (tenant_id, subject_kind, subject_hash, requested_by)
      values (${tenant.id}, 'lead', ${`posthog-rows-${tenant.id}`}, 'test') returning id`
    await insertPersonDeletions(tx, tenant.id, request!.id, [{ project: 'operator', distinctId: `lead_rows_${tenant.id}` }])
  })
}
