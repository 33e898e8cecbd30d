import type { Task } from 'graphile-worker'
import { SecretBox } from '../../../lib/crypto.js'
import { MessageArrivedPayload } from '../../../domains/onboarding/schemas.js'
import { afterTestMessage, onboardingSettingsOf } from '../../../domains/onboarding/service.js'
import type { TaskDeps } from './task-deps.js'

/** After ingestion completed test_message (in the message's transaction): the session's activity and analytics event. */
export const messageArrivedTask = (deps: TaskDeps): Task => async (payload) => {
  const { sessionId } = MessageArrivedPayload.parse(payload)
  await afterTestMessage({ sql: deps.sql, secrets: SecretBox.fromConfig(deps.config.SECRETS_KEY), graph: null, settings: onboardingSettingsOf(deps.config) }, sessionId)
}
