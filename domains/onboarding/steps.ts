import { z } from 'zod'

/**
 * The onboarding steps, in one place and versioned. A session follows the version it started with; a new version
 * is added beside the old one (never edited in place) so sessions in flight keep their steps.
 *
 * Each step lists its fields (zod, for partial saves and for completion), which of them are required, and how it
 * completes: `fields` (all required fields saved and valid, then its work runs), or `event` (completed by something
 * that happens elsewhere: test_message by the first inbound WhatsApp message on the registered number).
 */
export const STEP_NAMES = ['business_info', 'whatsapp_connect', 'bot_setup', 'test_message', 'go_live'] as const
export type StepName = (typeof STEP_NAMES)[number]

const timezoneNames = new Set(Intl.supportedValuesOf('timeZone').concat('UTC'))
const Timezone = z.string().refine((tz) => timezoneNames.has(tz), 'an IANA time zone such as Europe/Lisbon')
const Country = z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 country code such as PT')
const E164 = z.string().regex(/^\+[1-9]\d{6,14}$/, 'a phone number in international format, such as +351912345678')
const GraphId = z.string().regex(/^\d{5,20}$/, "Meta's numeric id, as shown in WhatsApp Manager")

export const INDUSTRIES = ['dental', 'health', 'beauty', 'education', 'real_estate', 'automotive', 'retail', 'services', 'other'] as const

export interface StepDefinition {
  name: StepName
  title: string
  /** What the business is asked to do, shown while the step is current. */
  instructions: string
  fields: z.ZodObject
  required: readonly string[]
  completion: 'fields' | 'event'
}

const v1: StepDefinition[] = [
  {
    name: 'business_info',
    title: 'Your business',
    instructions: 'Tell us who you are: this creates your workspace.',
    fields: z.object({
      businessName: z.string().trim().min(2).max(120),
      country: Country,
      timezone: Timezone,
      industry: z.enum(INDUSTRIES),
      contactEmail: z.email().max(254),
      contactPhone: E164,
    }),
    required: ['businessName', 'country', 'timezone', 'industry', 'contactEmail', 'contactPhone'],
    completion: 'fields',
  },
  {
    name: 'whatsapp_connect',
    title: 'Connect WhatsApp',
    instructions: "Enter your number's phone number ID, your WhatsApp Business Account ID and a system-user access token from Meta's WhatsApp Manager. We check them with Meta and subscribe our app to your account.",
    fields: z.object({
      phoneNumberId: GraphId,
      wabaId: GraphId,
      accessToken: z.string().trim().min(20).max(1000),
      appMode: z.enum(['platform', 'own']),
      // Only with appMode 'own': the business's own Meta app, whose secret signs its webhooks.
      appId: GraphId.optional(),
      appSecret: z.string().trim().min(16).max(200).optional(),
      verifyToken: z.string().trim().min(16).max(200).optional(),
    }),
    required: ['phoneNumberId', 'wabaId', 'accessToken', 'appMode'],
    completion: 'fields',
  },
  {
    name: 'bot_setup',
    title: 'Set up your bot',
    instructions: 'Pick a starter flow and list what you offer; we fill in your business name and publish it.',
    fields: z.object({
      starterFlow: z.enum(['qualification']),
      // Rows of a WhatsApp list (24 characters each), with "Talk to a person" as the tenth.
      services: z.array(z.string().trim().min(2).max(24)).min(1).max(9),
    }),
    required: ['starterFlow', 'services'],
    completion: 'fields',
  },
  {
    name: 'test_message',
    title: 'Send a test message',
    instructions: 'Send any WhatsApp message to your number from your phone. This step completes by itself when it arrives, and your bot answers.',
    fields: z.object({}),
    required: [],
    completion: 'event',
  },
  {
    name: 'go_live',
    title: 'Go live',
    instructions: 'Confirm to activate your workspace. Your admin API key is shown once, on the next screen: store it safely.',
    fields: z.object({ confirm: z.literal(true) }),
    required: ['confirm'],
    completion: 'fields',
  },
]

export const STEPS_VERSION = 1
const VERSIONS: Record<number, StepDefinition[]> = { 1: v1 }

/** Every version's step names in order ({ 1: [...] }): what SQL needs to name a session's current step. */
export const stepOrders = (): Record<string, string[]> =>
  Object.fromEntries(Object.entries(VERSIONS).map(([version, steps]) => [version, steps.map((s) => s.name)]))

export function stepsOf(version: number): StepDefinition[] {
  const steps = VERSIONS[version]
  if (!steps) throw new Error(`no onboarding steps version ${version}`)
  return steps
}

/** A step's weight in the progress: its required fields (a step completed by an event counts as one). */
const weightOf = (step: StepDefinition) => Math.max(1, step.required.length)

export interface SessionState {
  stepsVersion: number
  fields: Record<string, Record<string, unknown>>
  completedSteps: Record<string, string>
  status: 'in_progress' | 'completed' | 'abandoned'
}

export interface StepStatus {
  name: StepName
  title: string
  status: 'completed' | 'current' | 'blocked'
  completedAt: string | null
  missing: string[]
}

export interface Progress {
  steps: StepStatus[]
  currentStep: StepName | null
  /** 0–100, weighted by required fields: a half-filled business_info already counts. */
  percent: number
  next: string
}

/** The steps' status, what is missing, the current step and the progress, from the session's state alone. */
export function progressOf(state: SessionState): Progress {
  const steps = stepsOf(state.stepsVersion)
  let total = 0
  let done = 0
  let current: StepDefinition | null = null
  const out: StepStatus[] = []
  for (const step of steps) {
    const weight = weightOf(step)
    total += weight
    const completedAt = state.completedSteps[step.name] ?? null
    const saved = state.fields[step.name] ?? {}
    const missing = completedAt ? [] : step.required.filter((f) => saved[f] === undefined)
    if (completedAt) done += weight
    else if (step.required.length > 0) done += step.required.length - missing.length
    const status = completedAt ? 'completed' : current ? 'blocked' : 'current'
    if (!completedAt && !current) current = step
    out.push({ name: step.name, title: step.title, status, completedAt, missing })
  }
  const percent = Math.round((done / total) * 10000) / 100
  const next = current ? current.instructions : 'All done: your workspace is live.'
  return { steps: out, currentStep: current?.name ?? null, percent, next }
}

/** The first step before `step` that is not completed: saving `step` must wait for it. */
export function blockingStep(state: SessionState, step: StepName): StepName | null {
  for (const s of stepsOf(state.stepsVersion)) {
    if (s.name === step) return null
    if (!state.completedSteps[s.name]) return s.name
  }
  return null
}

export function stepDefinition(version: number, step: StepName): StepDefinition {
  return stepsOf(version).find((s) => s.name === step)!
}
