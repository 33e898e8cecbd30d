import type { Task } from 'graphile-worker'
import { CheckInactivityPayload } from '../../../domains/onboarding/schemas.js'
import { onboardingSettingsOf, runInactivity } from '../../../domains/onboarding/service.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Inactivity of every onboarding session, in batches (cross-tenant, through the domain's definer functions): pending
 * views folded, due sessions claimed with skip locked and nudged or abandoned, then the task schedules itself for the
 * next due session (job_key onboarding-idle-batch; the crontab re-arms it should the chain ever break).
 */
export const checkInactivityTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  CheckInactivityPayload.parse(payload)
  const done = await runInactivity({ sql: deps.sql, settings: onboardingSettingsOf(deps.config) }, deps.config.WORKER_POLL_INTERVAL_MS)
  if (done.claimed + done.viewsFolded > 0) {
    helpers.logger.info(`onboarding inactivity: ${done.claimed} due, ${done.nudged} nudged, ${done.abandoned} abandoned, ${done.rescheduled} rescheduled, ${done.viewsFolded} sessions' views folded`)
  }
}
