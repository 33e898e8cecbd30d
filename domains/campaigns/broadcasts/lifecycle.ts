import { AppError } from '../../../lib/errors.js'
import type { BroadcastStatus } from './schemas.js'

/**
 * draft → scheduled → sending → completed | stopped | failed. `paused` sits beside `sending`: the dispatcher pauses
 * a broadcast by itself when a person can fix the cause (template paused, disabled, not approved or RED; the number
 * disabled or its token rejected; failures over the threshold), a person may pause too, and resume goes back to
 * sending where it stopped. `failed` is the dispatcher's, final, with the reason, when nothing can fix it: the number
 * was removed (`number_gone`), the template was deleted (`template_deleted`), or not one of at least
 * `failureMinSample` settled sends was accepted and Meta refused every one for good (`all_sends_failed`). A
 * scheduled broadcast may be unscheduled (back to draft) or started now.
 */
export const TRANSITIONS: Record<BroadcastStatus, readonly BroadcastStatus[]> = {
  draft: ['scheduled', 'sending'],
  scheduled: ['draft', 'sending', 'stopped'],
  sending: ['paused', 'completed', 'stopped', 'failed'],
  paused: ['sending', 'stopped'],
  completed: [],
  stopped: [],
  failed: [],
}

export const canMove = (from: BroadcastStatus, to: BroadcastStatus) => TRANSITIONS[from].includes(to)

/** 409 naming the allowed transitions (the product's rule for every lifecycle). */
export function assertTransition(from: BroadcastStatus, to: BroadcastStatus): void {
  if (canMove(from, to)) return
  const allowed = TRANSITIONS[from]
  throw new AppError('CONFLICT', `a ${from} broadcast cannot become ${to}; allowed from ${from}: ${allowed.length ? allowed.join(', ') : 'none (it is final)'}`, {
    details: { from, to, allowed },
  })
}
