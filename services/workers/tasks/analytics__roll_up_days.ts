import type { Task } from 'graphile-worker'
import { z } from 'zod'
import { rollUpDays } from '../../../domains/analytics/query/days.js'
import type { TaskDeps } from './task-deps.js'

const Payload = z.object({}).loose()

/**
 * Cross-tenant: rebuilds the day level of the rollups (analytics.daily_aggregations) for every tenant day whose
 * 5-minute rollups changed since. Until then the query API reads those days from the 5-minute level, so a late run
 * costs speed, never correctness.
 */
export const rollUpDaysTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  Payload.parse(payload ?? {})
  const { tenants, days } = await rollUpDays(deps.sql)
  if (days > 0) helpers.logger.info(`rebuilt ${days} analytics days of ${tenants} tenants`)
}
