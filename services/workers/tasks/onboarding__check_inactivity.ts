import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { CheckInactivityPayload } from '../../../domains/onboarding/schemas.js'
import { checkInactivity, onboardingSettingsOf } from '../../../domains/onboarding/service.js'
import type { TaskDeps } from './task-deps.js'

/**
 * The one inactivity job of an onboarding session (job_key per session; every activity moves its run_at): nudges
 * after ONBOARDING_NUDGE_AFTER, abandons after ONBOARDING_ABANDON_AFTER, or moves itself to when it is due.
 */
export const checkInactivityTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { sessionId } = CheckInactivityPayload.parse(payload)
  const outcome = await checkInactivity({ sql: deps.sql, secrets: SecretBox.fromConfig(deps.config.SECRETS_KEY), graph: null, settings: onboardingSettingsOf(deps.config) }, sessionId)
  helpers.logger.info(`onboarding session ${sessionId}: ${outcome}`)
}
