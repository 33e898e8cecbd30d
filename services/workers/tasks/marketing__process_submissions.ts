import type { Task } from 'graphile-worker'
import { handOffFailures, processSubmissions } from '../../../domains/marketing/forms/process-submissions.js'
import { ProcessSubmissionsPayload, SUBMISSION_MAX_ATTEMPTS } from '../../../domains/marketing/forms/schemas.js'
import { formSubmissions } from '../../../lib/metrics.js'
import type { TaskDeps } from './task-deps.js'

/**
 * The fast path: applies the form submissions one group commit stored for a tenant, in one transaction. A
 * submission that still fails is handed to its own retrying job (marketing__process_submission), recorded and
 * enqueued in one transaction, so the batch job itself completes and nothing is lost.
 */
export const processSubmissionsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId, submissionIds } = ProcessSubmissionsPayload.parse(payload)
  const result = await processSubmissions(deps.sql, tenantId, submissionIds)
  formSubmissions.inc({ outcome: 'processed' }, result.processed.length)
  for (const failure of result.failed) helpers.logger.warn(`form submission ${failure.submissionId} failed in batch; retrying alone: ${failure.error}`)
  await handOffFailures(deps.sql, tenantId, result.failed, SUBMISSION_MAX_ATTEMPTS)
}
