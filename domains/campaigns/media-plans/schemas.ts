import { Decimal } from 'decimal.js'
import { z } from 'zod'
import { NICHES, PLATFORMS } from './benchmarks.js'

/**
 * Media plans' shapes at the boundary. Money and percentages travel as decimal strings ("1500.00", "33.3333"); a JSON
 * number is accepted in input when it has no more decimals than the column keeps, and is read from its text, so a
 * float never touches an amount.
 */

// One currency rule for the campaigns domain (ISO 4217, as the runtime's Intl knows it).
import { Currency } from '../schemas.js'
export { Currency }

/** A non-negative decimal with at most `places` decimals and `digits` digits before the point, as a string. */
const decimal = (places: number, digits: number, what: string, fixedPlaces = false) => z.union([z.string(), z.number()])
  .transform((v, ctx) => {
    const text = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v.trim()
    if (!/^-?\d+(\.\d+)?$/.test(text)) {
      ctx.addIssue({ code: 'custom', message: `${what}: not a decimal number` })
      return z.NEVER
    }
    const d = new Decimal(text)
    if (d.isNeg()) {
      ctx.addIssue({ code: 'custom', message: `${what}: must not be negative` })
      return z.NEVER
    }
    if (d.decimalPlaces() > places || d.truncated().toFixed(0).length > digits) {
      ctx.addIssue({ code: 'custom', message: `${what}: at most ${digits} digits and ${places} decimals` })
      return z.NEVER
    }
    return fixedPlaces ? d.toFixed(places) : d.toString()
  })

/** Money keeps its cents ("1500.00"), as the database answers it, so a document read back compares equal. */
export const Money = decimal(2, 12, 'an amount', true)
const Percent = decimal(4, 3, 'a percentage').refine((p) => new Decimal(p).lte(100), 'a percentage: at most 100')
const PositiveRate = (places: number, what: string) => decimal(places, 10, what).refine((v) => new Decimal(v).gt(0), `${what}: must be greater than 0`)

export const Platform = z.string().regex(/^[a-z][a-z0-9_]{1,29}$/, 'a platform key: lowercase letters, digits, _').describe(`known: ${PLATFORMS.join(', ')}; others need their own cpl, ctr and cpc`)
export const Niche = z.string().regex(/^[a-z][a-z0-9_]{0,59}$/).describe(`benchmarks exist for: ${NICHES.join(', ')}; others use each platform's general figures`)
export const Goal = z.enum(['leads', 'sales', 'awareness', 'traffic', 'engagement', 'app_installs', 'messages'])

export const Allocation = z.strictObject({
  platform: Platform,
  /** Share of the budget (split by percentage). */
  percent: Percent.optional(),
  /** Money for this platform (manualSplit). */
  amount: Money.optional(),
  /** Cost per lead; the benchmark when absent. */
  cpl: PositiveRate(4, 'cpl').optional(),
  /** Click-through rate in percent; the benchmark when absent. */
  ctr: PositiveRate(4, 'ctr').refine((v) => new Decimal(v).lte(100), 'ctr: at most 100').optional(),
  /** Cost per click; the benchmark when absent. */
  cpc: PositiveRate(4, 'cpc').optional(),
})
export type Allocation = z.infer<typeof Allocation>

/** The builder's own state: any JSON object, at most this many bytes once serialized and this deep. */
export const FULL_STATE_MAX_BYTES = 256 * 1024
const FULL_STATE_MAX_DEPTH = 32
const depthOf = (v: unknown, d = 0): number =>
  d > FULL_STATE_MAX_DEPTH ? d : v && typeof v === 'object' ? Math.max(d, ...Object.values(v as object).map((x) => depthOf(x, d + 1))) : d
export const FullState = z.record(z.string(), z.unknown())
  .refine((s) => Buffer.byteLength(JSON.stringify(s)) <= FULL_STATE_MAX_BYTES, `fullState: at most ${FULL_STATE_MAX_BYTES} bytes as JSON`)
  .refine((s) => depthOf(s) <= FULL_STATE_MAX_DEPTH, `fullState: at most ${FULL_STATE_MAX_DEPTH} levels deep`)

/** The fields a plan is made of (the snapshot, export and template document), without checks across fields. */
const planFields = {
  name: z.string().trim().min(1).max(200),
  campaignId: z.uuid().nullable(),
  budget: Money,
  currency: Currency,
  market: z.string().trim().max(100),
  goal: Goal,
  niche: Niche,
  leadToSalePct: Percent,
  revenuePerSale: Money,
  manualSplit: z.boolean(),
  allocations: z.array(Allocation).max(PLATFORMS.length + 10),
  fullState: FullState,
}

export const PERCENT_TOLERANCE = new Decimal('0.01')

/** The rules across fields: allocations sum to 100 (±0.01) unless manualSplit, where amounts stay within the budget. */
function checkAllocations(p: { budget?: string; manualSplit?: boolean; allocations?: Allocation[] }, ctx: z.RefinementCtx) {
  if (!p.allocations) return
  const seen = new Set<string>()
  p.allocations.forEach((a, i) => {
    if (seen.has(a.platform)) ctx.addIssue({ code: 'custom', path: ['allocations', i, 'platform'], message: `platform ${a.platform} appears twice` })
    seen.add(a.platform)
    if (p.manualSplit && a.amount === undefined) ctx.addIssue({ code: 'custom', path: ['allocations', i, 'amount'], message: 'a manual split gives every platform its amount' })
    if (!p.manualSplit && a.percent === undefined) ctx.addIssue({ code: 'custom', path: ['allocations', i, 'percent'], message: 'every platform needs its percent (or set manualSplit and give amounts)' })
  })
  if (p.manualSplit) {
    const total = p.allocations.reduce((s, a) => s.plus(a.amount ?? 0), new Decimal(0))
    if (p.budget !== undefined && total.gt(p.budget)) ctx.addIssue({ code: 'custom', path: ['allocations'], message: `the amounts sum to ${total.toFixed(2)}, more than the budget ${new Decimal(p.budget).toFixed(2)}` })
  } else if (p.allocations.length > 0) {
    const total = p.allocations.reduce((s, a) => s.plus(a.percent ?? 0), new Decimal(0))
    if (total.minus(100).abs().gt(PERCENT_TOLERANCE)) ctx.addIssue({ code: 'custom', path: ['allocations'], message: `the percentages sum to ${total.toString()}, not 100 (±0.01); set manualSplit to split by amounts` })
  }
}

/** A plan as a document: what snapshots hold, export writes and import reads. Every key is required. */
export const PlanDocument = z.strictObject(planFields).superRefine(checkAllocations)
export type PlanDocument = z.infer<typeof PlanDocument>

/** Every plan field, optional: what a create fills with defaults (and a template) and a patch leaves alone when absent. */
const optionalFields = Object.fromEntries(Object.entries(planFields).map(([k, v]) => [k, v.optional()])) as { [K in keyof typeof planFields]: z.ZodOptional<(typeof planFields)[K]> }

/** Without a template, budget and currency are required; the rest have defaults. Cross-field rules run after the template is applied. */
export const CreatePlanBody = z.strictObject({
  ...optionalFields,
  name: planFields.name,
  /** Start from a template (`builtin:<key>` or a saved template's id); the body's fields win over the template's. */
  templateId: z.string().max(100).optional(),
})
export type CreatePlanBody = z.infer<typeof CreatePlanBody>

/** Only the fields given change; allocations, when given, replace the plan's whole. */
export const PatchPlanBody = z.strictObject({ ...optionalFields, version: z.number().int().min(1).optional() })
export type PatchPlanBody = z.infer<typeof PatchPlanBody>

export const VersionBody = z.strictObject({ version: z.number().int().min(1).optional() }).nullish()

/** The checks across fields for a complete plan, after defaults, template and patch are merged. */
export const CompletePlan = PlanDocument

export const SnapshotBody = z.strictObject({ name: z.string().trim().min(1).max(120) })
export const RollbackBody = z.strictObject({ snapshotId: z.uuid(), version: z.number().int().min(1).optional() })
export const DiffQuery = z.object({
  from: z.uuid(),
  /** A snapshot id, or `current` for the plan as it is now. */
  to: z.union([z.uuid(), z.literal('current')]),
})

const Estimates = z.object({
  currency: z.string(),
  platforms: z.array(z.object({
    platform: z.string(), percent: z.string(), budget: z.string(),
    cpl: z.string(), cplSource: z.enum(['manual', 'benchmark']), ctr: z.string(), ctrSource: z.enum(['manual', 'benchmark']),
    cpc: z.string(), cpcSource: z.enum(['manual', 'benchmark']),
    clicks: z.string(), impressions: z.string(), leads: z.string(), sales: z.string(), revenue: z.string(),
  })),
  totals: z.object({
    budget: z.string(), unallocated: z.string(), clicks: z.string(), impressions: z.string(), leads: z.string(), sales: z.string(), revenue: z.string(),
    cpl: z.string().nullable(), costPerSale: z.string().nullable(), roas: z.string().nullable(),
  }),
  warnings: z.array(z.string()),
})
export { Estimates as EstimatesView }

const AllocationView = z.object({
  platform: z.string(), percent: z.string().nullable(), amount: z.string().nullable(), cpl: z.string().nullable(), ctr: z.string().nullable(), cpc: z.string().nullable(),
})
export type AllocationView = z.infer<typeof AllocationView>

export const PlanView = z.object({
  id: z.uuid(), campaignId: z.uuid().nullable(), name: z.string(), budget: z.string(), currency: z.string(), market: z.string(), goal: Goal,
  niche: z.string(), leadToSalePct: z.string(), revenuePerSale: z.string(), manualSplit: z.boolean(), allocations: z.array(AllocationView),
  fullState: z.record(z.string(), z.unknown()), templateRef: z.string().nullable(), version: z.number().int(), deletedAt: z.date().nullable(),
  createdBy: z.string(), createdAt: z.date(), updatedAt: z.date(), estimates: Estimates,
})
export type PlanView = z.infer<typeof PlanView>

export const SnapshotSummary = z.object({ id: z.uuid(), planId: z.uuid(), name: z.string(), planVersion: z.number().int(), createdBy: z.string(), createdAt: z.date() })
export const SnapshotView = SnapshotSummary.extend({ state: z.record(z.string(), z.unknown()) })
export type SnapshotView = z.infer<typeof SnapshotView>

export const PatchOperation = z.object({ op: z.string(), path: z.string(), value: z.unknown().optional(), from: z.string().optional() })
export const DiffView = z.object({ from: z.string(), to: z.string(), operations: z.array(PatchOperation), changedFields: z.array(z.string()) })

/** The export file: the plan document under a schema version (import refuses any other shape, naming the key). */
export const EXPORT_SCHEMA_VERSION = 1
export const ExportFile = z.strictObject({
  schemaVersion: z.literal(EXPORT_SCHEMA_VERSION),
  kind: z.literal('media-plan'),
  exportedAt: z.iso.datetime({ offset: true }),
  plan: PlanDocument,
  /** Informational: import recomputes them. */
  estimates: z.unknown().optional(),
})
export type ExportFile = z.infer<typeof ExportFile>
/** The export as sent (the document is built by the service from a stored plan; no input transforms on the way out). */
export const ExportFileView = z.object({
  schemaVersion: z.number().int(), kind: z.string(), exportedAt: z.string(), plan: z.record(z.string(), z.unknown()), estimates: z.unknown().optional(),
})

/** A template: a plan's fields without name and campaign, every one optional (the create body fills the rest). */
export const TemplateBody = z.strictObject({
  budget: planFields.budget.optional(), currency: planFields.currency.optional(), market: planFields.market.optional(), goal: planFields.goal.optional(),
  niche: planFields.niche.optional(), leadToSalePct: planFields.leadToSalePct.optional(), revenuePerSale: planFields.revenuePerSale.optional(),
  manualSplit: planFields.manualSplit.optional(), allocations: planFields.allocations.optional(), fullState: planFields.fullState.optional(),
}).superRefine(checkAllocations)
export type TemplateBody = z.infer<typeof TemplateBody>

export const CreateTemplateBody = z.strictObject({
  name: z.string().trim().min(1).max(120),
  description: z.string().max(2000).default(''),
  /** Save an existing plan's fields as the template… */
  fromPlanId: z.uuid().optional(),
  /** …or give them. */
  body: TemplateBody.optional(),
}).refine((t) => (t.fromPlanId === undefined) !== (t.body === undefined), { message: 'give exactly one of fromPlanId and body', path: ['body'] })

export const TemplateView = z.object({
  id: z.string(), builtin: z.boolean(), name: z.string(), description: z.string(), body: z.record(z.string(), z.unknown()), createdAt: z.date().nullable(),
})
export type TemplateView = z.infer<typeof TemplateView>

export const ListPlansQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
  campaignId: z.uuid().optional(),
  deleted: z.enum(['exclude', 'include', 'only']).default('exclude'),
})
