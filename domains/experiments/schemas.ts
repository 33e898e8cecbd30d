import { z } from 'zod'

/** Weights must sum to 1 within this (GrowthBook's own tolerance, getBucketRanges). */
export const WEIGHT_TOLERANCE = 0.01

const Key = z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/, 'lowercase letters, digits, ".", "_" and "-"').max(100)
/** A JSON value a variation carries to the caller (a greeting text, a template name, a page variant). */
const JsonValue: z.ZodType<unknown> = z.lazy(() => z.union([z.string().max(4000), z.number(), z.boolean(), z.null(), z.array(JsonValue).max(100), z.record(z.string().max(100), JsonValue)]))

export const Variation = z.object({
  key: Key,
  name: z.string().min(1).max(200).optional(),
  weight: z.number().min(0, 'a weight cannot be negative').max(1),
  value: JsonValue.optional(),
})
export type Variation = z.infer<typeof Variation>

export const Variations = z.array(Variation).min(2, 'an experiment needs at least two variations').max(20)
  .superRefine((vs, ctx) => {
    const total = vs.reduce((s, v) => s + v.weight, 0)
    if (Math.abs(total - 1) > WEIGHT_TOLERANCE) ctx.addIssue({ code: 'custom', message: `weights must sum to 1 (±${WEIGHT_TOLERANCE}); these sum to ${Number(total.toFixed(6))}` })
    const keys = new Set<string>()
    vs.forEach((v, i) => {
      if (keys.has(v.key)) ctx.addIssue({ code: 'custom', path: [i, 'key'], message: `variation key ${v.key} appears twice` })
      keys.add(v.key)
    })
  })

export const Coverage = z.number().min(0, 'coverage is a fraction in [0, 1]').max(1, 'coverage is a fraction in [0, 1]')

/** Attribute names targeting may use: the lead's own, the visit's, and custom ones under `custom.`. */
export const Attribute = z.string().regex(/^(country|source|channel|tags|status|form|device|custom\.[A-Za-z0-9_.-]{1,60})$/,
  'one of country, source, channel, tags, status, form, device, or custom.<name>')
const Scalar = z.union([z.string().max(200), z.number(), z.boolean()])

export type Condition =
  | { attribute: string; op: 'eq'; value: string | number | boolean }
  | { attribute: string; op: 'in'; value: (string | number | boolean)[] }
  | { attribute: string; op: 'gt' | 'lt'; value: number | string }
  | { attribute: string; op: 'exists'; value: boolean }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition }

/** Targeting: a tree of attribute tests, combined with and / or / not (targeting.ts evaluates it). */
export const Condition: z.ZodType<Condition> = z.lazy(() => z.union([
  z.strictObject({ attribute: Attribute, op: z.literal('eq'), value: Scalar }),
  z.strictObject({ attribute: Attribute, op: z.literal('in'), value: z.array(Scalar).min(1).max(500) }),
  z.strictObject({ attribute: Attribute, op: z.enum(['gt', 'lt']), value: z.union([z.number(), z.string().max(200)]) }),
  z.strictObject({ attribute: Attribute, op: z.literal('exists'), value: z.boolean().default(true) }),
  z.strictObject({ and: z.array(Condition).min(1).max(50) }),
  z.strictObject({ or: z.array(Condition).min(1).max(50) }),
  z.strictObject({ not: Condition }),
])) as z.ZodType<Condition>

/** The slice [start, end) of a namespace an experiment takes; experiments on disjoint slices share no unit. */
export const NamespaceRange = z.object({ id: Key, start: z.number().min(0).max(1), end: z.number().min(0).max(1) })
  .refine((n) => n.start < n.end, { message: 'start must be below end', path: ['end'] })

export const Goal = z.object({
  /** An analytics event name, e.g. lead.qualified, whatsapp.message_received. */
  event: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/).max(120),
  /** A conversion counts when the event happens within this many hours of the unit's assignment. */
  windowHours: z.number().int().min(1).max(24 * 90).default(24 * 7),
  /**
   * What is compared: `conversion` (the share of units with the event: two-proportion test), or a mean per unit (Welch's
   * t-test): `count` (events per unit, e.g. messages received) or `sum` (a numeric property summed per unit, e.g. revenue).
   */
  aggregate: z.enum(['conversion', 'count', 'sum']).optional(),
  /** The event property summed by `sum` (a JSON number in the event's properties; other values count as 0). */
  property: z.string().regex(/^[A-Za-z0-9_]{1,60}$/, 'letters, digits and underscores').optional(),
}).superRefine((g, ctx) => {
  if (g.aggregate === 'sum' && g.property === undefined) ctx.addIssue({ code: 'custom', path: ['property'], message: "a 'sum' goal names the numeric property it sums" })
  if (g.aggregate !== 'sum' && g.property !== undefined) ctx.addIssue({ code: 'custom', path: ['property'], message: "only a 'sum' goal takes a property" })
})
export type Goal = z.infer<typeof Goal>

export const ExperimentStatus = z.enum(['draft', 'running', 'paused', 'stopped'])
export const ExperimentUnit = z.enum(['lead', 'anonymous'])

export const CreateExperimentBody = z.object({
  key: Key,
  name: z.string().min(1).max(200),
  hypothesis: z.string().max(4000).default(''),
  unit: ExperimentUnit.default('lead'),
  /** Defaults to the key, as GrowthBook's. */
  seed: z.string().min(1).max(200).optional(),
  hashVersion: z.union([z.literal(1), z.literal(2)]).default(2),
  coverage: Coverage.default(1),
  variations: Variations,
  targeting: Condition.nullable().default(null),
  namespace: NamespaceRange.nullable().default(null),
  goals: z.array(Goal).max(10).default([]),
})
export type CreateExperimentBody = z.infer<typeof CreateExperimentBody>

/** Any field of the definition; variations, coverage and the bucketing fields only while draft (409 after: start a new phase). */
export const PatchExperimentBody = z.object({
  name: z.string().min(1).max(200).optional(),
  hypothesis: z.string().max(4000).optional(),
  unit: ExperimentUnit.optional(),
  seed: z.string().min(1).max(200).optional(),
  hashVersion: z.union([z.literal(1), z.literal(2)]).optional(),
  coverage: Coverage.optional(),
  variations: Variations.optional(),
  targeting: Condition.nullable().optional(),
  namespace: NamespaceRange.nullable().optional(),
  goals: z.array(Goal).max(10).optional(),
}).refine((b) => Object.keys(b).length > 0, { message: 'nothing to change' })
export type PatchExperimentBody = z.infer<typeof PatchExperimentBody>

/** Fields that decide who gets what: frozen once an experiment has started. */
export const BUCKETING_FIELDS = ['unit', 'seed', 'hashVersion', 'coverage', 'variations', 'namespace'] as const

export const NewPhaseBody = z.object({ variations: Variations, coverage: Coverage.optional() })
export type NewPhaseBody = z.infer<typeof NewPhaseBody>

export const ExperimentView = z.object({
  id: z.uuid(),
  key: z.string(),
  name: z.string(),
  hypothesis: z.string(),
  status: ExperimentStatus,
  unit: ExperimentUnit,
  seed: z.string(),
  hashVersion: z.number(),
  coverage: z.number(),
  variations: z.array(Variation),
  targeting: z.unknown().nullable(),
  namespace: NamespaceRange.nullable(),
  goals: z.array(Goal),
  phase: z.number().int(),
  createdAt: z.date(),
  updatedAt: z.date(),
  startedAt: z.date().nullable(),
  stoppedAt: z.date().nullable(),
})
export type ExperimentView = z.infer<typeof ExperimentView>

/** Attributes targeting reads; the lead's own (status, source, tags) fill in what the caller leaves out. */
export const Attributes = z.record(z.string().max(100), z.union([Scalar, z.array(Scalar).max(100), z.null()])).default({})
export type Attributes = z.infer<typeof Attributes>

export const AssignBody = z.object({
  leadId: z.uuid().optional(),
  /** A website visitor's id (analytics' anonymousId). With leadId too: the visitor is that lead, and keeps its variations. */
  anonymousId: z.string().min(1).max(200).optional(),
  attributes: Attributes,
}).refine((b) => b.leadId !== undefined || b.anonymousId !== undefined, { message: 'leadId or anonymousId is required', path: ['leadId'] })
export type AssignBody = z.infer<typeof AssignBody>

export const AssignmentView = z.object({
  experimentId: z.uuid(),
  experimentKey: z.string(),
  phase: z.number().int(),
  variationKey: z.string(),
  variationIndex: z.number().int(),
  value: z.unknown().optional(),
  /** True when this request made the assignment; false when it was stored before. */
  isNew: z.boolean(),
  assignedAt: z.date(),
})
export type AssignmentView = z.infer<typeof AssignmentView>
export const AssignResult = z.object({ assignments: z.array(AssignmentView) })

/** experiments__maintain_results: one tenant (enqueued by a goal change), or every tenant with work (the crontab's run). */
export const MAINTAIN_RESULTS_TASK = 'experiments__maintain_results'
export const MaintainResultsPayload = z.object({ tenantId: z.uuid().optional() }).loose()
