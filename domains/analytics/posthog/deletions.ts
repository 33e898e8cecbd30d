/**
 * An erased person's data in PostHog. The forwarder sent their events under keyed pseudonyms (lead_… for the lead,
 * anon_… for each website visitor id linked to it); erasure (domains/privacy/erasure.ts) queues those distinct ids
 * here, per project that may hold them, and analytics__delete_posthog_persons asks PostHog to delete the persons
 * with their events (POST /api/projects/:id/persons/bulk_delete/, a personal API key, up to 1000 ids a request).
 *
 * - Queued in the erasure's own step transaction, so a crash loses no deletion; the drain is idempotent (a deletion
 *   asked twice deletes nothing more) and moves a row to 'requested' only after PostHog accepted it.
 * - PostHog down (5xx, 408, 429, network, timeout): retried with backoff, parked after maxAttempts. Refused (401, 403,
 *   404: the key or project is wrong): parked at once, with PostHog's answer, for an operator to fix and requeue.
 * - A project without a personal API key: 'manual', with the reason: PostHog accepts events with a project key but
 *   deletes only with a personal one, and saying so beats pretending.
 * - Nothing personal is read or sent: the distinct ids are the pseudonyms PostHog already has.
 */
import type { Config } from '../../../lib/config.js'
import { pseudonym, SecretBox } from '../../../lib/crypto.js'
import { withTenant, type Sql, type Tx } from '../../../lib/db.js'
import { distinctIdOf } from './forward.js'
import { DEFAULT_POSTHOG_HOST, operatorDeletionTargetOf, tenantDeletionTargetOf, type DeletionTarget } from './projects.js'
import * as q from './queries.js'
import { DELETE_POSTHOG_PERSONS_TASK } from './schemas.js'

/** The process's pseudonyms (SECRETS_KEY, set at boot): the same the forwarder used for these ids. */
const processPseudonyms = { of: pseudonym }

/**
 * Erasure's step: the distinct ids of `leadIds` and of their visitors, for each project that may hold them (the
 * operator's, and the tenant's own when it has one), and the drain's job. Nothing when the tenant never set PostHog up.
 * Returns how many deletions were queued.
 */
export async function queuePosthogPersonDeletions(tx: Tx, tenantId: string, erasureRequestId: string, leadIds: readonly string[]): Promise<number> {
  if (leadIds.length === 0) return 0
  const settings = await q.findPosthogSettings(tx)
  if (!settings) return 0
  const anonymousIds = await q.anonymousIdsOfLeads(tx, leadIds)
  const ids = [
    ...leadIds.map((leadId) => distinctIdOf(processPseudonyms, tenantId, { leadId, anonymousId: null }).id),
    ...anonymousIds.map((anonymousId) => distinctIdOf(processPseudonyms, tenantId, { leadId: null, anonymousId }).id),
  ]
  // Events may have gone to the operator's project before the tenant set its own (or after it went back): both.
  const projects: q.DeletionProject[] = settings.projectApiKeySealed ? ['operator', 'tenant'] : ['operator']
  const queued = await q.insertPersonDeletions(tx, tenantId, erasureRequestId, projects.flatMap((project) => ids.map((distinctId) => ({ project, distinctId }))))
  if (queued > 0) await tx`select graphile_worker.add_job(${DELETE_POSTHOG_PERSONS_TASK}, '{}'::json, job_key := 'posthog_person_deletions', job_key_mode := 'replace')`
  return queued
}

export interface DeletionOptions {
  /** The operator's project (POSTHOG_PERSONAL_API_KEY, POSTHOG_PROJECT_ID), null when not configured. */
  operator: DeletionTarget | null
  /** Where a tenant's own project is when it gave no host: the operator's ingestion host. */
  operatorHost: string
  secrets: SecretBox
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  requestTimeoutMs: number
  now?: () => Date
}

export interface DeletionResult { requested: number; failed: number; parked: number; manual: number }

export function deletionOptionsFrom(config: Config, overrides: Partial<DeletionOptions> = {}): DeletionOptions {
  return {
    operator: operatorDeletionTargetOf(config),
    operatorHost: config.POSTHOG_HOST ?? DEFAULT_POSTHOG_HOST,
    secrets: SecretBox.fromConfig(config.SECRETS_KEY),
    maxAttempts: config.POSTHOG_MAX_ATTEMPTS,
    retryBaseMs: config.POSTHOG_RETRY_BASE_MS,
    retryMaxMs: config.POSTHOG_RETRY_MAX_MS,
    requestTimeoutMs: config.POSTHOG_REQUEST_TIMEOUT_MS,
    ...overrides,
  }
}

class DeletionRefused extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message)
  }
}

/** One bulk_delete request: PostHog's answer body describes our request (a key, a project), never a person. */
export async function requestBulkDelete(target: DeletionTarget, distinctIds: readonly string[], timeoutMs: number): Promise<void> {
  let res: Response
  try {
    res = await fetch(`${target.appHost}/api/projects/${encodeURIComponent(target.projectId)}/persons/bulk_delete/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.personalApiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ distinct_ids: distinctIds, delete_events: true }),
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    throw new DeletionRefused(`PostHog unreachable: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`.slice(0, 600), true)
  }
  if (res.ok) {
    await res.body?.cancel()
    return
  }
  const body = (await res.text().catch(() => '')).slice(0, 500)
  throw new DeletionRefused(`PostHog answered ${res.status}${body ? `: ${body}` : ''}`, res.status === 408 || res.status === 429 || res.status >= 500)
}

const BULK_LIMIT = 1000

/** One tenant's due deletions, at most 1000 per project, each project's request settled in the same transaction. */
async function deleteTenantDue(sql: Sql, tenantId: string, opts: DeletionOptions): Promise<DeletionResult> {
  const now = opts.now?.() ?? new Date()
  const result: DeletionResult = { requested: 0, failed: 0, parked: 0, manual: 0 }
  await withTenant(sql, tenantId, async (tx) => {
    const settings = await q.findPosthogSettings(tx)
    const rows = await q.lockDueDeletions(tx, now, BULK_LIMIT * 2)
    for (const project of ['operator', 'tenant'] as const) {
      const batch = rows.filter((r) => r.project === project).slice(0, BULK_LIMIT)
      if (batch.length === 0) continue
      const target = project === 'operator' ? opts.operator : tenantDeletionTargetOf(settings, opts.secrets, opts.operatorHost)
      if (!target) {
        const reason = project === 'operator'
          ? 'no POSTHOG_PERSONAL_API_KEY / POSTHOG_PROJECT_ID: delete these distinct ids in the operator\'s PostHog project by hand'
          : "the tenant's project has no personal API key and project id: delete these distinct ids in it by hand"
        result.manual += await q.settleDeletions(tx, batch, 'manual', reason)
        continue
      }
      try {
        await requestBulkDelete(target, batch.map((r) => r.distinctId), opts.requestTimeoutMs)
        result.requested += await q.settleDeletions(tx, batch, 'requested', null)
      } catch (err) {
        const e = err instanceof DeletionRefused ? err : new DeletionRefused(String(err), true)
        result.failed += batch.length
        const retry = { maxAttempts: e.retryable ? opts.maxAttempts : 1, baseMs: opts.retryBaseMs, maxMs: opts.retryMaxMs }
        result.parked += await q.failDeletions(tx, batch, e.message, now, retry)
      }
    }
  })
  return result
}

/** Cross-tenant: every tenant's due deletions, until nothing is due or `budgetMs` is spent. */
export async function deletePosthogPersonsDue(sql: Sql, opts: DeletionOptions, budgetMs: number): Promise<DeletionResult> {
  const total: DeletionResult = { requested: 0, failed: 0, parked: 0, manual: 0 }
  const started = Date.now()
  const failed = new Set<string>()
  while (Date.now() - started < budgetMs) {
    const tenants = (await q.posthogDeletionDueTenants(sql, opts.now?.() ?? new Date(), 100)).filter((t) => !failed.has(t))
    if (tenants.length === 0) break
    for (const tenantId of tenants) {
      const r = await deleteTenantDue(sql, tenantId, opts)
      total.requested += r.requested; total.failed += r.failed; total.parked += r.parked; total.manual += r.manual
      // A tenant whose request failed waits for its backoff, not for this loop.
      if (r.failed > 0 || r.requested + r.manual === 0) failed.add(tenantId)
    }
  }
  return total
}
