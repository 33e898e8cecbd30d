import { AppError } from '../../../lib/errors.js'
import type { BroadcastStatus } from './schemas.js'

/**
 * draft → scheduled → sending → completed | stopped | failed. `paused` sits beside `sending`: the dispatcher pauses
 * a broadcast by itself (template paused, disabled or RED; too many failures), a person may too, and resume goes
 * back to sending where it stopped. A scheduled broadcast may be unscheduled (back to draft) or started now.
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
