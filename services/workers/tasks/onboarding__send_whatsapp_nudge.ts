import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { SendWhatsAppNudgePayload } from '../../../domains/onboarding/schemas.js'
import { onboardingSettingsOf, platformSenderOf, sendWhatsAppNudge } from '../../../domains/onboarding/service.js'
import type { TaskDeps } from './task-deps.js'

/**
 * The WhatsApp side of one onboarding nudge: the approved template to the business's contact phone from the
 * platform's number, queued in the platform tenant's outbox (whatsapp__send_message sends it), or skipped with the
 * reason recorded (no platform number configured, opted out, reminded within 24 h…). Once per nudge.
 */
export const sendWhatsAppNudgeTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { sessionId, nudgeActivityId } = SendWhatsAppNudgePayload.parse(payload)
  const onboarding = { sql: deps.sql, secrets: SecretBox.fromConfig(deps.config.SECRETS_KEY), graph: null, settings: onboardingSettingsOf(deps.config) }
  const result = await sendWhatsAppNudge(onboarding, platformSenderOf(deps.config), sessionId, nudgeActivityId)
  helpers.logger.info(`onboarding session ${sessionId} WhatsApp nudge: ${result.outcome}${result.reason ? ` (${result.reason})` : ''}`)
}
