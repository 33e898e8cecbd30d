import type { Task } from 'graphile-worker'
import { forwardDue, forwardOptionsFrom, type ForwardOptions } from '../../../domains/analytics/posthog/forward.js'
import { ForwardPosthogPayload } from '../../../domains/analytics/posthog/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant: drains analytics.posthog_outbox to PostHog (every opted-in tenant's due events, in batches) until
 * nothing is due or POSTHOG_DRAIN_BUDGET_MS is spent. PostHog failing is not this job failing: the batch is
 * rescheduled with backoff (or parked) in the outbox and the job completes; a database error fails the job.
 * Without POSTHOG_API_KEY only tenants with their own project are sent; the others' rows wait.
 */
export const forwardPosthogTask = (deps: TaskDeps, overrides: Partial<ForwardOptions> = {}): Task => async (payload, helpers) => {
  ForwardPosthogPayload.parse(payload ?? {})
  const options = forwardOptionsFrom(deps.config, overrides)
  const r = await forwardDue(deps.sql, options, deps.config.POSTHOG_DRAIN_BUDGET_MS)
  if (r.failed > 0) helpers.logger.warn(`posthog forwarding: ${r.failed} events failed (${r.parked} parked), ${r.sent} sent`)
  else if (r.sent > 0) helpers.logger.info(`posthog forwarding: ${r.sent} events sent in ${r.batches} batches`)
}
