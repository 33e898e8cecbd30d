import { z } from 'zod'

/**
 * Assessments: what a tenant writes (the definition: questions, categories, rubric, profile fields), what the public
 * and the bot send (answers), what they get back (the step, the result), and the jobs. Checks beyond shapes
 * (references, conditions on earlier questions, formulas that cannot divide by zero) are in definition.ts, run at
 * publish time.
 */

export const AssessmentType = z.enum(['health', 'wealth', 'hybrid'])
export const QuestionType = z.enum(['single_choice', 'multiple_choice', 'scale', 'number', 'text', 'yes_no'])
export type QuestionType = z.infer<typeof QuestionType>

export const KEY = /^[a-z][a-z0-9_]{0,63}$/
const Key = z.string().regex(KEY, 'a lowercase letter, then lowercase letters, digits or _, up to 64 characters')
const OptionId = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lowercase letters, digits, _ and -, up to 64 characters')
const Text = (max: number) => z.string().trim().min(1).max(max)

export type Condition =
  | { question: string; equals?: string | number | boolean; in?: (string | number)[]; includes?: string; gt?: number; gte?: number; lt?: number; lte?: number; answered?: boolean }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }

const CONDITION_OPS = ['equals', 'in', 'includes', 'gt', 'gte', 'lt', 'lte', 'answered'] as const
const QuestionCondition = z.strictObject({
  question: Key,
  equals: z.union([z.string().max(64), z.number(), z.boolean()]).optional(),
  in: z.array(z.union([z.string().max(64), z.number()])).min(1).max(50).optional(),
  includes: z.string().max(64).optional(),
  gt: z.number().optional(),
  gte: z.number().optional(),
  lt: z.number().optional(),
  lte: z.number().optional(),
  answered: z.boolean().optional(),
}).refine((c) => CONDITION_OPS.filter((k) => c[k] !== undefined).length >= 1, `at least one of ${CONDITION_OPS.join(', ')}`)

export const Condition: z.ZodType<Condition> = z.lazy(() => z.union([
  QuestionCondition,
  z.strictObject({ all: z.array(Condition).min(1).max(20) }),
  z.strictObject({ any: z.array(Condition).min(1).max(20) }),
  z.strictObject({ not: Condition }),
]))

export const QuestionOption = z.strictObject({
  id: OptionId,
  // Long enough for the web; WhatsApp shows the first 24 characters as a list row (the rest as its description).
  label: Text(72),
})

export const Question = z.strictObject({
  id: Key,
  type: QuestionType,
  // WhatsApp's interactive body is at most 1024 characters.
  text: Text(1000),
  help: Text(500).optional(),
  required: z.boolean().default(true),
  category: Key.optional(),
  options: z.array(QuestionOption).min(2).max(30).optional(),
  // scale: the steps min..max by step; number: the accepted range.
  min: z.number().optional(),
  max: z.number().optional(),
  step: z.number().positive().optional(),
  // number: whole numbers only.
  integer: z.boolean().optional(),
  unit: Text(20).optional(),
  // multiple_choice
  minSelections: z.number().int().min(0).max(30).optional(),
  maxSelections: z.number().int().min(1).max(30).optional(),
  // text
  maxLength: z.number().int().min(1).max(2000).optional(),
  // Shown only when this holds over earlier answers.
  showIf: Condition.optional(),
})
export type Question = z.infer<typeof Question>
export type QuestionInput = z.input<typeof Question>

export const Category = z.strictObject({
  key: Key,
  name: Text(100),
  weight: z.number().min(0).max(1000).default(1),
  // Extra advice when the category's score is below a threshold.
  recommendations: z.array(z.strictObject({ below: z.number(), text: Text(500) })).max(10).default([]),
})
export type Category = z.infer<typeof Category>

export const Band = z.strictObject({
  key: Key,
  label: Text(100),
  // The band holds totals from min (inclusive) up to the next band's min; the lowest band also takes anything below.
  min: z.number(),
  recommendations: z.array(Text(500)).max(20).default([]),
})
export type Band = z.infer<typeof Band>

export const Formula = z.strictObject({ key: Key, label: Text(100).optional(), expr: z.string().min(1).max(2000) })

export const Rubric = z.strictObject({
  // Points per option: { <questionId>: { <optionId | yes | no | scale value>: points } }.
  points: z.record(Key, z.record(z.string().max(64), z.number().min(-1e6).max(1e6))).default({}),
  // sum: a category is the sum of its questions' points; percent: that sum as a percentage of its maximum.
  categoryScoring: z.enum(['sum', 'percent']).default('sum'),
  // Named values computed in order (each may use earlier ones), shown with the result.
  formulas: z.array(Formula).max(30).default([]),
  // The total; without it, the categories' weighted mean (or, with no categories, the sum of all points).
  total: z.string().min(1).max(2000).optional(),
  bands: z.array(Band).min(1).max(20),
})
export type Rubric = z.infer<typeof Rubric>
export type RubricInput = z.input<typeof Rubric>

export const ProfileField = z.strictObject({
  key: Key,
  label: Text(100),
  type: z.enum(['text', 'number', 'choice']),
  required: z.boolean().default(false),
  options: z.array(QuestionOption).min(2).max(30).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
})
export type ProfileField = z.infer<typeof ProfileField>

export const Definition = z.strictObject({
  questions: z.array(Question).min(1).max(200),
  categories: z.array(Category).max(30).default([]),
  rubric: Rubric,
  profileFields: z.array(ProfileField).max(20).default([]),
})
export type Definition = z.infer<typeof Definition>
export type DefinitionInput = z.input<typeof Definition>

// ---------------------------------------------------------------------------------------------------------------
// Admin API

export const CreateAssessmentBody = z.strictObject({
  key: Key,
  type: AssessmentType,
  name: Text(200),
  description: z.string().trim().max(2000).default(''),
  definition: Definition,
})
export type CreateAssessmentBody = z.infer<typeof CreateAssessmentBody>

export const PatchAssessmentBody = z.strictObject({
  name: Text(200).optional(),
  description: z.string().trim().max(2000).optional(),
  status: z.enum(['published', 'archived']).optional(),
})

/** Replaces the draft version's definition (a new draft is opened from the published one if there is none). */
export const SaveDraftBody = z.strictObject({ definition: Definition })

export const AssessmentView = z.object({
  id: z.uuid(),
  key: z.string(),
  type: AssessmentType,
  name: z.string(),
  description: z.string(),
  publicKey: z.string(),
  status: z.string(),
  publishedVersion: z.number().int().nullable(),
  rubricVersion: z.number().int(),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type AssessmentView = z.infer<typeof AssessmentView>

export const VersionView = z.object({
  id: z.uuid(),
  version: z.number().int(),
  questions: z.array(z.unknown()),
  categories: z.array(z.unknown()),
  rubric: z.unknown(),
  profileFields: z.array(z.unknown()),
  questionsHash: z.string(),
  rubricVersion: z.number().int(),
  publishedAt: z.date().nullable(),
  createdAt: z.date(),
})
export type VersionView = z.infer<typeof VersionView>

export const RescoreBody = z.strictObject({ versionId: z.uuid().optional() })

// ---------------------------------------------------------------------------------------------------------------
// Sessions (public web and the bot)

export const Channel = z.enum(['web', 'whatsapp'])
export type Channel = z.infer<typeof Channel>

export const AnswerValue = z.union([z.string().max(2000), z.number(), z.boolean(), z.array(z.string().max(64)).max(30), z.null()])
export type AnswerValue = z.infer<typeof AnswerValue>

export const Demographics = z.record(Key, z.union([z.string().trim().max(200), z.number()])).refine((d) => Object.keys(d).length <= 20, 'at most 20 fields')
export type Demographics = z.infer<typeof Demographics>

export const StartWebSessionBody = z.strictObject({ demographics: Demographics.optional() })
export const AnswerBody = z.strictObject({
  questionId: Key,
  value: AnswerValue,
  // How long the participant took, measured by the page (ms).
  responseMs: z.number().int().min(0).max(24 * 3600 * 1000).optional(),
})
export type AnswerBody = z.infer<typeof AnswerBody>
export const ProfileBody = z.strictObject({ demographics: Demographics })
/** A web session's routes name it by its resume token (`ast_…`; anything else is a 404, not a 400). */
export const SessionTokenParams = z.object({ token: z.string().min(1).max(200) })

export const PublicQuestion = z.object({
  id: z.string(),
  type: QuestionType,
  text: z.string(),
  help: z.string().optional(),
  required: z.boolean(),
  options: z.array(z.object({ id: z.string(), label: z.string() })).optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  step: z.number().optional(),
  unit: z.string().optional(),
  minSelections: z.number().optional(),
  maxSelections: z.number().optional(),
  maxLength: z.number().optional(),
})

export const ResultView = z.object({
  id: z.uuid(),
  totalScore: z.number(),
  categoryScores: z.record(z.string(), z.number()),
  formulaValues: z.record(z.string(), z.number()),
  band: z.string().nullable(),
  bandLabel: z.string().nullable(),
  recommendations: z.array(z.string()),
  rubricVersion: z.number().int(),
  computedAt: z.date(),
})
export type ResultView = z.infer<typeof ResultView>

export const SessionStateView = z.object({
  sessionId: z.uuid(),
  assessment: z.object({ key: z.string(), name: z.string(), type: AssessmentType }),
  version: z.number().int(),
  status: z.enum(['in_progress', 'completed', 'abandoned']),
  progress: z.number().int(),
  answered: z.number().int(),
  total: z.number().int(),
  // The question to answer now (null once all are answered).
  question: PublicQuestion.nullable(),
  // The current answer to it, when going back.
  currentAnswer: AnswerValue.optional(),
  canGoBack: z.boolean(),
  // Required profile fields still missing (completion waits for them).
  missingProfile: z.array(z.object({ key: z.string(), label: z.string(), type: z.string(), options: z.array(z.object({ id: z.string(), label: z.string() })).optional() })),
  demographics: z.record(z.string(), z.unknown()),
  result: ResultView.nullable(),
})
export type SessionStateView = z.infer<typeof SessionStateView>

// ---------------------------------------------------------------------------------------------------------------
// Jobs

/** Written by assessments-ai (the analysis of a new result). Enqueued here, in the completion's transaction. */
export const ANALYZE_RESULT_TASK = 'assessments__analyze_result'
export const AnalyzeResultPayload = z.object({ tenantId: z.uuid(), resultId: z.uuid() })

/** The idle batch (cron, cross-tenant): no parameters. */
export const AbandonIdleSessionsPayload = z.object({}).loose()

export const RESCORE_TASK = 'assessments__rescore'
export const RescorePayload = z.object({ tenantId: z.uuid(), runId: z.uuid() })
export type RescorePayload = z.infer<typeof RescorePayload>
