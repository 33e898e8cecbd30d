import { z } from 'zod'
import type { ReportPlan } from '../analytics/assessment-rollups.js'

/** Where a report's numbers came from, like the query API's meta. */
export const ReportMeta = z.object({
  /** rollup: every day from analytics.assessment_rollups; raw: every event from analytics.events; rollup+raw: both. */
  source: z.enum(['rollup', 'raw', 'rollup+raw']),
  /** Every 5-minute bucket before it is rolled up and clean. */
  watermark: z.string(),
  timezone: z.string(),
  /** The whole tenant days read from the rollup: [fromDay, toDay), fromDay null from the first one. */
  rolledUpDays: z.object({ fromDay: z.string().nullable(), toDay: z.string() }).nullable(),
  /** The instants read from raw events (a partial first day; everything since the last whole day behind the watermark). */
  rawRanges: z.array(z.object({ from: z.string().nullable(), to: z.string() })),
})
export type ReportMeta = z.infer<typeof ReportMeta>

export const metaOf = (plan: ReportPlan): ReportMeta => ({
  source: plan.rolledUp === null ? 'raw' : plan.raw.length === 0 ? 'rollup' : 'rollup+raw',
  watermark: plan.watermark.toISOString(),
  timezone: plan.timezone,
  rolledUpDays: plan.rolledUp,
  rawRanges: plan.raw.map((r) => ({ from: r.from?.toISOString() ?? null, to: r.to.toISOString() })),
})

