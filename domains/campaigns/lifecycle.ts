import type { CampaignStatus } from './schemas.js'

/**
 * The campaign lifecycle: draft → scheduled → active → paused → completed → archived, and only these moves. A
 * scheduled campaign can go back to draft (unscheduled); a paused one resumes; anything not yet running, and anything
 * finished or paused, can be archived. Archived is final (a soft delete is the way to hide it).
 */
export const TRANSITIONS: Readonly<Record<CampaignStatus, readonly CampaignStatus[]>> = {
  draft: ['scheduled', 'active', 'archived'],
  scheduled: ['draft', 'active', 'archived'],
  active: ['paused', 'completed'],
  paused: ['active', 'completed', 'archived'],
  completed: ['archived'],
  archived: [],
}

export const allowedFrom = (status: CampaignStatus): readonly CampaignStatus[] => TRANSITIONS[status]
export const canMove = (from: CampaignStatus, to: CampaignStatus) => TRANSITIONS[from].includes(to)

/** What a campaign must have before it may move to `to` (null: nothing missing). */
export function missingFor(to: CampaignStatus, c: { startsAt: Date | null; budget: string | null; currency: string | null }): string | null {
  if (to === 'scheduled' && !c.startsAt) return 'a scheduled campaign needs startsAt'
  if ((to === 'scheduled' || to === 'active') && (c.budget === null || c.currency === null)) return `${to === 'active' ? 'an active' : 'a scheduled'} campaign needs a budget and its currency`
  return null
}
