import type { Task } from 'graphile-worker'
import { queueTimerEvent } from '../../../domains/conversations/runtime.js'
import { FlowTimerPayload } from '../../../domains/conversations/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * A flow timer is due (an ask's reminder or timeout, a wait node): it joins the conversation's event queue behind
 * whatever arrived first, and the bot job applies it. A timer that no longer matches the run is ignored there.
 */
export const flowTimerTask = (deps: TaskDeps): Task => async (payload) => {
  const timer = FlowTimerPayload.parse(payload)
  await queueTimerEvent(deps.sql, timer)
}
