import type { Task } from 'graphile-worker'
import { expireDrafts } from '../../../domains/campaigns/drafts.js'
import { ExpireDraftsPayload } from '../../../domains/campaigns/schemas.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Cross-tenant, hourly: deletes campaign drafts 7 days past their last save, CAMPAIGN_DRAFT_EXPIRE_BATCH per
 * statement, within CAMPAIGN_DRAFT_EXPIRE_BUDGET_SECONDS (the next run carries on). A draft saved meanwhile is not
 * expired any more and stays (the delete re-checks expires_at); retried as a whole, deleting twice deletes nothing.
 */
export const expireDraftsTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  ExpireDraftsPayload.parse(payload ?? {})
  const result = await expireDrafts(deps.sql, {
    batch: deps.config.CAMPAIGN_DRAFT_EXPIRE_BATCH,
    budgetMs: deps.config.CAMPAIGN_DRAFT_EXPIRE_BUDGET_SECONDS * 1000,
  })
  if (result.deleted > 0 || result.incomplete) {
    helpers.logger.info(`campaigns: deleted ${result.deleted} expired drafts${result.incomplete ? ' (budget spent, more left)' : ''}`)
  }
}
