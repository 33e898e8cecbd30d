import type { Task } from 'graphile-worker'
import { runConversation } from '../../../domains/conversations/runtime.js'
import { RunBotPayload } from '../../../domains/conversations/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Applies a conversation's pending events (inbound messages, timers, releases) in order. Jobs share a queue per
 * conversation, and each event is applied under the conversation's row lock and marked in the same commit, so a
 * retried or duplicated job finds nothing left to do. A failing event is retried (thrown) and set aside after a few
 * attempts, recorded on the event.
 */
export const runBotTask = (deps: TaskDeps): Task => async (payload) => {
  const { tenantId, conversationId } = RunBotPayload.parse(payload)
  await runConversation({ sql: deps.sql, log: deps.log }, tenantId, conversationId)
}
