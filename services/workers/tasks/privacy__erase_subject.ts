import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { runErasure, type RunOptions } from '../../../domains/privacy/erasure.js'
import { EraseSubjectPayload } from '../../../domains/privacy/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Erases one subject in resumable steps (domains/privacy/erasure.ts). A hold (deliveries about the person not yet
 * processed) or an unexpected error throws, and graphile-worker retries with backoff; on the last attempt the
 * request is failed with its reason instead. A verification hit fails the request at once: retrying finds the same.
 */
export const eraseSubjectTask = (deps: TaskDeps, overrides: Pick<RunOptions, 'afterStep'> = {}): Task => {
  const secrets = SecretBox.fromConfig(deps.config.SECRETS_KEY)
  return async (payload, helpers) => {
    const { tenantId, requestId } = EraseSubjectPayload.parse(payload)
    const outcome = await runErasure({ sql: deps.sql, secrets, log: deps.log }, tenantId, requestId, {
      lastAttempt: helpers.job.attempts >= helpers.job.max_attempts,
      ...overrides,
    })
    helpers.logger.info(`erasure request ${requestId}: ${outcome}`)
  }
}
