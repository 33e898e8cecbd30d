import type { Task } from 'graphile-worker'
import { processSubmissionAlone, recordSubmissionFailure } from '../../../domains/marketing/forms/process-submissions.js'
import { ProcessSubmissionPayload } from '../../../domains/marketing/forms/schemas.js'
import { formSubmissions } from '../../../lib/metrics.js'
import type { TaskDeps } from './task-deps.js'

/**
 * The slow path for one form submission that failed in its batch: graphile-worker retries it with exponential
 * backoff; on the last attempt it is parked with its error (status 'parked'), where operators see it.
 */
export const processSubmissionTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId, submissionId } = ProcessSubmissionPayload.parse(payload)
  const error = await processSubmissionAlone(deps.sql, tenantId, submissionId)
  if (error === null) formSubmissions.inc({ outcome: 'processed' })
  if (error === null) return
  const final = helpers.job.attempts >= helpers.job.max_attempts
  await recordSubmissionFailure(deps.sql, tenantId, submissionId, error, final)
  if (final) formSubmissions.inc({ outcome: 'parked' })
  if (final) {
    helpers.logger.error(`form submission ${submissionId} parked after ${helpers.job.attempts} attempts: ${error}`)
    return
  }
  throw new Error(`form submission ${submissionId} failed (attempt ${helpers.job.attempts} of ${helpers.job.max_attempts}): ${error}`)
}
