import { z } from 'zod'
import { Currency, Money, Platform } from '../media-plans/schemas.js'

const Day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date: YYYY-MM-DD').refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'not a real date')

export const SpendEntryInput = z.strictObject({
  platform: Platform,
  day: Day,
  amount: Money,
  /** The campaign's currency when it has one (another is refused); required otherwise. */
  currency: Currency.optional(),
  source: z.enum(['manual', 'publication']).default('manual'),
})
export const SpendBody = z.strictObject({ entries: z.array(SpendEntryInput).min(1).max(1000) })
  .superRefine((b, ctx) => {
    const seen = new Set<string>()
    b.entries.forEach((e, i) => {
      const key = `${e.platform} ${e.day}`
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['entries', i], message: `${e.platform} on ${e.day} appears twice` })
      seen.add(key)
    })
  })
export type SpendBody = z.infer<typeof SpendBody>

export const SpendView = z.object({ platform: z.string(), day: z.string(), amount: z.string(), currency: z.string(), source: z.string(), enteredBy: z.string(), updatedAt: z.date() })

export const DayRangeQuery = z.object({ from: Day.optional(), to: Day.optional() })
  .refine((q) => !q.from || !q.to || q.from <= q.to, { message: 'from must not be after to', path: ['from'] })

export const AdSourcesBody = z.strictObject({
  /** Meta ad ids (a click-to-WhatsApp referral's source_id) of the campaign's ads. */
  adSourceIds: z.array(z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'an ad id')).max(500),
  version: z.number().int().min(1).optional(),
})

const Planned = z.object({ budget: z.string(), leads: z.string(), cpl: z.string().nullable() })
const Actual = z.object({
  spend: z.string().nullable(), leads: z.number().int(), qualified: z.number().int(), converted: z.number().int(), cpl: z.string().nullable(),
})
const Line = z.object({
  platform: z.string(),
  planned: Planned.nullable(),
  actual: Actual,
  /** actual − planned leads (null without a plan line), and actual / planned leads (null when nothing was planned). */
  leadsDelta: z.string().nullable(),
  leadsAttainment: z.string().nullable(),
  /** actual CPL − planned CPL (null unless both are known). */
  cplDelta: z.string().nullable(),
})
export const PerformanceView = z.object({
  campaignId: z.uuid(),
  planId: z.uuid().nullable(),
  currency: z.string().nullable(),
  dateRange: z.object({ from: z.string(), to: z.string() }),
  platforms: z.array(Line),
  totals: Line.omit({ platform: true }),
  /** Where the lead counts came from: the analytics rollups, with raw events only for what they have not rolled up yet. */
  source: z.string(),
  warnings: z.array(z.string()),
})
export type PerformanceView = z.infer<typeof PerformanceView>
