import { z } from 'zod'
import { findPlaceholders, KEY_PATTERN, parsePlaceholderPath } from './text.js'

/**
 * The flow language: what a tenant writes (a JSON document, versioned by whoever stores it), the state the
 * interpreter keeps per lead, and the events and actions it exchanges with the worker. See README.md.
 */

// Meta's limits for interactive messages; a document that breaks them would fail at send time, mid-conversation.
const WA_TEXT_MAX = 4096
const WA_INTERACTIVE_BODY_MAX = 1024
const WA_BUTTON_TITLE_MAX = 20
const WA_LIST_BUTTON_TEXT_MAX = 20
const WA_LIST_ROW_TITLE_MAX = 24
const WA_LIST_ROW_DESCRIPTION_MAX = 72
// Free-form messages may only be sent within 24 hours of the lead's last message; a timer that fires later
// could only reach the lead with an approved template, which flows do not send.
const WA_SERVICE_WINDOW_SECONDS = 24 * 60 * 60

export const MAX_NODES = 200

const NodeId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and -, 1-64 characters')
const Key = z.string().regex(KEY_PATTERN, 'a letter, then letters, digits or _, up to 64 characters')
const OptionId = z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'letters, digits, _ . : and -, 1-100 characters')
const Tag = z.string().trim().min(1).max(64)

const MessageText = z.string().trim().min(1).max(WA_TEXT_MAX)
const PromptText = z.string().trim().min(1).max(WA_INTERACTIVE_BODY_MAX)
const Note = z.string().trim().min(1).max(500)

// ---------------------------------------------------------------------------------------------------------
// Triggers

export const FlowTrigger = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('first_message') }),
  z.strictObject({
    type: z.literal('keyword'),
    // Matched case- and accent-insensitively against the whole message or its first word.
    keywords: z.array(z.string().trim().min(1).max(50).regex(/[\p{L}\p{N}]/u, 'needs a letter or digit')).min(1).max(50),
  }),
  z.strictObject({
    // A click-to-WhatsApp ad; without sourceIds any ad starts the flow.
    type: z.literal('referral'),
    sourceIds: z.array(z.string().min(1).max(200)).min(1).max(100).optional(),
  }),
])
export type FlowTrigger = z.infer<typeof FlowTrigger>

// ---------------------------------------------------------------------------------------------------------
// Conditions (branch rules)

export const LeadStatusTarget = z.enum(['qualified', 'lost', 'contacted'])
export type LeadStatusTarget = z.infer<typeof LeadStatusTarget>

const Scalar = z.union([z.string().max(500), z.number()])

// Repeated groups (`(a+)+`) and backreferences are the usual catastrophic-backtracking shapes; patterns come from
// tenants and run against text from anyone, so those are refused and matching sees at most 500 characters.
const REPEATED_GROUP = /\)[*+{]/
const BACKREFERENCE = /\\[1-9]|\\k</
export const MATCH_INPUT_MAX = 500

const SafePattern = z.string().min(1).max(200).superRefine((pattern, ctx) => {
  if (REPEATED_GROUP.test(pattern)) ctx.addIssue({ code: 'custom', message: 'repeated groups like (...)+ are not allowed' })
  if (BACKREFERENCE.test(pattern)) ctx.addIssue({ code: 'custom', message: 'backreferences are not allowed' })
  try {
    new RegExp(pattern, 'iu')
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a valid regular expression' })
  }
})

const exactlyOne = (keys: readonly string[]) => (value: Record<string, unknown>) =>
  keys.filter((k) => value[k] !== undefined).length === 1

const ANSWER_OPS = ['equals', 'in', 'matches', 'exists'] as const
const AnswerCondition = z
  .strictObject({
    answer: Key,
    equals: Scalar.optional(),
    in: z.array(Scalar).min(1).max(50).optional(),
    // Case-insensitive; tested against the first 500 characters of the answer.
    matches: SafePattern.optional(),
    exists: z.boolean().optional(),
  })
  .refine(exactlyOne(ANSWER_OPS), `exactly one of ${ANSWER_OPS.join(', ')}`)

const LEAD_OPS = ['equals', 'exists'] as const
const LeadCondition = z
  .strictObject({ lead: Key, equals: Scalar.optional(), exists: z.boolean().optional() })
  .refine(exactlyOne(LEAD_OPS), `exactly one of ${LEAD_OPS.join(', ')}`)

export type AnswerCondition = z.infer<typeof AnswerCondition>
export type LeadCondition = z.infer<typeof LeadCondition>
export type Condition =
  | AnswerCondition
  | LeadCondition
  | { tag: string }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }

export const Condition: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    AnswerCondition,
    LeadCondition,
    z.strictObject({ tag: Tag }),
    z.strictObject({ all: z.array(Condition).min(1).max(20) }),
    z.strictObject({ any: z.array(Condition).min(1).max(20) }),
    z.strictObject({ not: Condition }),
  ]),
)

// ---------------------------------------------------------------------------------------------------------
// Nodes

const ButtonOption = z.strictObject({ id: OptionId, title: z.string().trim().min(1).max(WA_BUTTON_TITLE_MAX) })
const ListOption = z.strictObject({
  id: OptionId,
  title: z.string().trim().min(1).max(WA_LIST_ROW_TITLE_MAX),
  description: z.string().trim().min(1).max(WA_LIST_ROW_DESCRIPTION_MAX).optional(),
})

// Replies are matched by id or by title (case- and accent-insensitive), so both must be unambiguous.
const distinctOptions = (options: { id: string; title: string }[], ctx: z.RefinementCtx) => {
  const ids = new Set<string>()
  const titles = new Set<string>()
  options.forEach((o, i) => {
    if (ids.has(o.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate option id "${o.id}"` })
    const title = o.title.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase()
    if (titles.has(title)) ctx.addIssue({ code: 'custom', path: [i, 'title'], message: `duplicate option title "${o.title}"` })
    ids.add(o.id)
    titles.add(title)
  })
}

export const AskInput = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('buttons'), options: z.array(ButtonOption).min(1).max(3).superRefine(distinctOptions) }),
  z.strictObject({
    kind: z.literal('list'),
    buttonText: z.string().trim().min(1).max(WA_LIST_BUTTON_TEXT_MAX),
    options: z.array(ListOption).min(1).max(10).superRefine(distinctOptions),
  }),
  z
    .strictObject({
      kind: z.literal('text'),
      validate: z.enum(['email', 'phone', 'number', 'any']).optional(),
      // For `number` the bounds apply to the value; otherwise to the answer's length in characters.
      min: z.number().optional(),
      max: z.number().optional(),
    })
    .refine((t) => t.min === undefined || t.max === undefined || t.min <= t.max, { message: 'min must not exceed max', path: ['max'] }),
])
export type AskInput = z.infer<typeof AskInput>

const AskTimeout = z
  .strictObject({
    afterSeconds: z.number().int().min(1).max(WA_SERVICE_WINDOW_SECONDS),
    // Sent after afterSeconds; with thenNodeId too, the flow moves on after another afterSeconds.
    reminderText: MessageText.optional(),
    thenNodeId: NodeId.optional(),
  })
  .refine((t) => t.reminderText !== undefined || t.thenNodeId !== undefined, 'needs reminderText, thenNodeId or both')
  .refine(
    (t) => (t.reminderText !== undefined && t.thenNodeId !== undefined ? 2 : 1) * t.afterSeconds <= WA_SERVICE_WINDOW_SECONDS,
    { message: 'reminder and timeout must both fall within the 24-hour customer service window', path: ['afterSeconds'] },
  )

const SendMessageNode = z.strictObject({ type: z.literal('send_message'), id: NodeId, text: MessageText, next: NodeId })

const AskNode = z.strictObject({
  type: z.literal('ask'),
  id: NodeId,
  text: PromptText,
  answerKey: Key,
  input: AskInput,
  invalidText: PromptText,
  maxAttempts: z.number().int().min(1).max(10).default(3),
  onMaxAttempts: NodeId.optional(),
  timeout: AskTimeout.optional(),
  next: NodeId,
})

const SetFieldNode = z.strictObject({
  type: z.literal('set_field'),
  id: NodeId,
  // name, email, phone, company, or a custom field; status and tags have their own nodes.
  field: Key.refine((f) => f !== 'status' && f !== 'tags', 'use a qualify or tag node for status and tags'),
  value: z.string().min(1).max(1000),
  next: NodeId,
})

const BranchNode = z.strictObject({
  type: z.literal('branch'),
  id: NodeId,
  rules: z.array(z.strictObject({ when: Condition, next: NodeId })).min(1).max(20),
  otherwise: NodeId,
})

const TagNode = z
  .strictObject({ type: z.literal('tag'), id: NodeId, add: z.array(Tag).max(20).optional(), remove: z.array(Tag).max(20).optional(), next: NodeId })
  .refine((n) => (n.add?.length ?? 0) + (n.remove?.length ?? 0) > 0, 'add or remove at least one tag')

const QualifyNode = z.strictObject({ type: z.literal('qualify'), id: NodeId, status: LeadStatusTarget, next: NodeId })

const WaitNode = z.strictObject({
  type: z.literal('wait'),
  id: NodeId,
  seconds: z.number().int().min(1).max(WA_SERVICE_WINDOW_SECONDS),
  next: NodeId,
})

const HandoverNode = z.strictObject({
  type: z.literal('handover'),
  id: NodeId,
  text: MessageText.optional(),
  note: Note.optional(),
  // Where the bot picks up after a human releases the lead; without it the run ends on release.
  next: NodeId.optional(),
})

const EndNode = z.strictObject({ type: z.literal('end'), id: NodeId, text: MessageText.optional() })

/**
 * Branches by the lead's variation in an experiment (domains/experiments): the runtime assigns the lead before the
 * run (the first assignment wins) and records the exposure when this node runs. A lead in none of the listed
 * variations (not in the experiment: not running, not targeted, outside coverage) goes to `otherwise`.
 */
const ExperimentNode = z.strictObject({
  type: z.literal('experiment'),
  id: NodeId,
  experimentKey: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/).max(100),
  variations: z.array(z.strictObject({ variationKey: z.string().regex(/^[a-z0-9][a-z0-9_.-]*$/).max(100), next: NodeId })).min(1).max(20),
  otherwise: NodeId,
})

/**
 * Runs an assessment (domains/assessments) inside the conversation: the runtime starts (or resumes) the lead's
 * session and hands it every message while the run waits here; when the session completes, the run goes on to
 * `next`, with the result's band under `answerKey` for branches (`{ answer: key, equals: 'excellent' }`).
 */
const AssessmentNode = z.strictObject({
  type: z.literal('assessment'),
  id: NodeId,
  assessmentKey: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/),
  answerKey: Key.optional(),
  next: NodeId,
})

export const FlowNode = z.discriminatedUnion('type', [
  SendMessageNode,
  AskNode,
  SetFieldNode,
  BranchNode,
  TagNode,
  QualifyNode,
  WaitNode,
  HandoverNode,
  EndNode,
  ExperimentNode,
  AssessmentNode,
])
export type FlowNode = z.infer<typeof FlowNode>
export type FlowNodeOf<T extends FlowNode['type']> = Extract<FlowNode, { type: T }>

// ---------------------------------------------------------------------------------------------------------
// Graph checks

type Path = (string | number)[]

/** Every node id a node can lead to, with where it is written (for error paths). */
export function nodeEdges(node: FlowNode): { path: Path; target: string }[] {
  switch (node.type) {
    case 'send_message':
    case 'set_field':
    case 'tag':
    case 'qualify':
    case 'wait':
    case 'assessment':
      return [{ path: ['next'], target: node.next }]
    case 'ask':
      return [
        { path: ['next'], target: node.next },
        ...(node.onMaxAttempts !== undefined ? [{ path: ['onMaxAttempts'], target: node.onMaxAttempts }] : []),
        ...(node.timeout?.thenNodeId !== undefined ? [{ path: ['timeout', 'thenNodeId'], target: node.timeout.thenNodeId }] : []),
      ]
    case 'branch':
      return [...node.rules.map((r, i) => ({ path: ['rules', i, 'next'], target: r.next })), { path: ['otherwise'], target: node.otherwise }]
    case 'handover':
      return node.next !== undefined ? [{ path: ['next'], target: node.next }] : []
    case 'experiment':
      return [...node.variations.map((v, i) => ({ path: ['variations', i, 'next'], target: v.next })), { path: ['otherwise'], target: node.otherwise }]
    case 'end':
      return []
  }
}

/** Nodes where a run stops until the next event; a cycle must pass through one or it would never stop. */
export const isPausingNode = (node: FlowNode) =>
  node.type === 'ask' || node.type === 'wait' || node.type === 'handover' || node.type === 'end' || node.type === 'assessment'

/** Every template a node renders, with its path. */
export function nodeTemplates(node: FlowNode): { path: Path; template: string }[] {
  const found: { path: Path; template: string | undefined }[] = []
  switch (node.type) {
    case 'send_message':
      found.push({ path: ['text'], template: node.text })
      break
    case 'ask':
      found.push({ path: ['text'], template: node.text }, { path: ['invalidText'], template: node.invalidText })
      found.push({ path: ['timeout', 'reminderText'], template: node.timeout?.reminderText })
      break
    case 'set_field':
      found.push({ path: ['value'], template: node.value })
      break
    case 'handover':
      found.push({ path: ['text'], template: node.text }, { path: ['note'], template: node.note })
      break
    case 'end':
      found.push({ path: ['text'], template: node.text })
      break
  }
  return found.filter((t): t is { path: Path; template: string } => t.template !== undefined)
}

function conditionAnswerKeys(condition: Condition): string[] {
  if ('all' in condition) return condition.all.flatMap(conditionAnswerKeys)
  if ('any' in condition) return condition.any.flatMap(conditionAnswerKeys)
  if ('not' in condition) return conditionAnswerKeys(condition.not)
  if ('answer' in condition) return [condition.answer]
  return []
}

interface GraphInput {
  startNodeId: string
  nodes: FlowNode[]
}

function checkFlowGraph(flow: GraphInput, ctx: z.RefinementCtx) {
  const byId = new Map<string, FlowNode>()
  flow.nodes.forEach((node, i) => {
    if (byId.has(node.id)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'id'], message: `duplicate node id "${node.id}"` })
    else byId.set(node.id, node)
  })

  if (!byId.has(flow.startNodeId)) {
    ctx.addIssue({ code: 'custom', path: ['startNodeId'], message: `no node "${flow.startNodeId}"` })
  }

  const answerKeys = new Set(flow.nodes.flatMap((n) => (n.type === 'ask' || (n.type === 'assessment' && n.answerKey) ? [n.answerKey!] : [])))
  flow.nodes.forEach((node, i) => {
    for (const edge of nodeEdges(node)) {
      if (!byId.has(edge.target)) ctx.addIssue({ code: 'custom', path: ['nodes', i, ...edge.path], message: `no node "${edge.target}"` })
    }
    for (const { path, template } of nodeTemplates(node)) {
      for (const placeholder of findPlaceholders(template)) {
        const parsed = parsePlaceholderPath(placeholder.path)
        if (!parsed) {
          ctx.addIssue({ code: 'custom', path: ['nodes', i, ...path], message: `unknown placeholder ${placeholder.raw}: use {{lead.<field>}} or {{answers.<key>}}` })
        } else if (parsed.scope === 'answers' && !answerKeys.has(parsed.key)) {
          ctx.addIssue({ code: 'custom', path: ['nodes', i, ...path], message: `no ask node has answerKey "${parsed.key}"` })
        }
      }
    }
    if (node.type === 'branch') {
      node.rules.forEach((rule, r) => {
        for (const key of conditionAnswerKeys(rule.when)) {
          if (!answerKeys.has(key)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'rules', r, 'when'], message: `no ask node has answerKey "${key}"` })
        }
      })
    }
  })

  const targets = (node: FlowNode) => nodeEdges(node).map((e) => byId.get(e.target)).filter((n): n is FlowNode => n !== undefined)

  // Reachability: a node nobody can reach is almost always a wiring mistake, so it is an error.
  const start = byId.get(flow.startNodeId)
  if (start) {
    const reached = new Set<string>([start.id])
    const queue = [start]
    for (let node = queue.shift(); node; node = queue.shift()) {
      for (const t of targets(node)) {
        if (!reached.has(t.id)) {
          reached.add(t.id)
          queue.push(t)
        }
      }
    }
    flow.nodes.forEach((node, i) => {
      if (!reached.has(node.id)) ctx.addIssue({ code: 'custom', path: ['nodes', i, 'id'], message: `node "${node.id}" is unreachable from "${flow.startNodeId}"` })
    })
  }

  // Tight loops: a cycle through non-pausing nodes only would spin within one event. Depth-first search over
  // those nodes; a grey node met again closes a cycle.
  const colour = new Map<string, 'grey' | 'black'>()
  const stack: string[] = []
  const reported = new Set<string>()
  const visit = (node: FlowNode): void => {
    colour.set(node.id, 'grey')
    stack.push(node.id)
    for (const t of targets(node)) {
      if (isPausingNode(t)) continue
      const c = colour.get(t.id)
      if (c === 'grey') {
        const cycle = [...stack.slice(stack.indexOf(t.id)), t.id]
        if (!reported.has(t.id)) {
          reported.add(t.id)
          const index = flow.nodes.indexOf(t)
          ctx.addIssue({ code: 'custom', path: ['nodes', index, 'id'], message: `loop without an ask or wait: ${cycle.join(' -> ')}` })
        }
      } else if (c === undefined) visit(t)
    }
    stack.pop()
    colour.set(node.id, 'black')
  }
  for (const node of byId.values()) {
    if (!isPausingNode(node) && !colour.has(node.id)) visit(node)
  }
}

// ---------------------------------------------------------------------------------------------------------
// The document

export const FlowDocument = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    description: z.string().trim().max(2000).optional(),
    trigger: FlowTrigger,
    startNodeId: NodeId,
    nodes: z.array(FlowNode).min(1).max(MAX_NODES),
  })
  .superRefine(checkFlowGraph)
/** A parsed, checked flow: what the interpreter takes. */
export type FlowDocument = z.infer<typeof FlowDocument>
/** What a tenant writes (defaults not yet applied). */
export type FlowDocumentInput = z.input<typeof FlowDocument>

// ---------------------------------------------------------------------------------------------------------
// State, events, actions

export const FlowStatus = z.enum(['active', 'waiting_answer', 'waiting_timer', 'handed_over', 'ended'])
export type FlowStatus = z.infer<typeof FlowStatus>

/** ask_reminder and ask_timeout belong to an ask's `timeout`; wait to a wait node. */
export const TimerKind = z.enum(['ask_reminder', 'ask_timeout', 'wait'])
export type TimerKind = z.infer<typeof TimerKind>

/**
 * One lead's position in one flow run; JSON-serializable, persisted by the caller between events.
 * - waiting_answer: currentNodeId is the ask being answered; attempts counts invalid answers to it.
 * - waiting_timer: currentNodeId is the wait node.
 * - handed_over: currentNodeId is where the bot resumes on release (null: the run ends on release).
 * - ended: currentNodeId is null.
 * - active: only while the interpreter runs; never returned.
 * timerDueAt/timerKind are set while a timer is pending; a timer event that does not match them is stale.
 */
export const FlowState = z.object({
  flowId: z.string().optional(),
  flowVersion: z.number().int().nonnegative(),
  currentNodeId: z.string().nullable(),
  status: FlowStatus,
  attempts: z.number().int().nonnegative(),
  answers: z.record(z.string(), z.union([z.string(), z.number()])),
  timerDueAt: z.iso.datetime().optional(),
  timerKind: TimerKind.optional(),
})
export type FlowState = z.infer<typeof FlowState>

export const FlowEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('message'),
    messageId: z.string().min(1),
    // Body text; for a button or list reply, its title.
    text: z.string().optional(),
    buttonId: z.string().optional(),
    listId: z.string().optional(),
    // The WhatsApp message type (text, button, interactive, image, ...); the interpreter reads text and ids only.
    kind: z.string().min(1),
  }),
  z.object({ type: z.literal('timer'), dueAt: z.iso.datetime(), kind: TimerKind.optional() }),
  z.object({ type: z.literal('release') }),
  // The assessment of the node the run waits at completed (the runtime feeds this in the same transaction).
  z.object({ type: z.literal('assessment_completed'), band: z.string().nullable(), totalScore: z.number() }),
])
export type FlowEvent = z.infer<typeof FlowEvent>

const ActionButtonOption = z.object({ id: z.string(), title: z.string() })
const ActionListOption = z.object({ id: z.string(), title: z.string(), description: z.string().optional() })

/** What the worker must do after persisting the new state, in order. */
export const FlowAction = z.discriminatedUnion('type', [
  z.object({ type: z.literal('send_text'), text: z.string() }),
  z.object({ type: z.literal('send_buttons'), text: z.string(), options: z.array(ActionButtonOption) }),
  z.object({ type: z.literal('send_list'), text: z.string(), buttonText: z.string(), options: z.array(ActionListOption) }),
  z.object({ type: z.literal('set_lead_field'), field: z.string(), value: z.string() }),
  z.object({ type: z.literal('add_tags'), tags: z.array(z.string()) }),
  z.object({ type: z.literal('remove_tags'), tags: z.array(z.string()) }),
  z.object({ type: z.literal('set_status'), status: LeadStatusTarget }),
  // At most one flow timer per lead: scheduling replaces the pending one.
  z.object({ type: z.literal('schedule_timer'), dueAt: z.iso.datetime(), kind: TimerKind }),
  z.object({ type: z.literal('cancel_timer') }),
  z.object({ type: z.literal('handover'), note: z.string().optional() }),
  z.object({ type: z.literal('end') }),
  // An experiment node ran with the lead in this variation: the runtime records the exposure (once per unit and phase).
  z.object({ type: z.literal('experiment_exposure'), experimentKey: z.string(), variationKey: z.string() }),
  // An assessment node was reached: the runtime starts or resumes the lead's session and asks its question.
  z.object({ type: z.literal('assessment_start'), assessmentKey: z.string() }),
  // A message while at an assessment node: the runtime hands it to the session (an answer, back, pause, …).
  z.object({
    type: z.literal('assessment_message'), assessmentKey: z.string(),
    message: z.object({ messageId: z.string(), kind: z.string(), text: z.string().optional(), buttonId: z.string().optional(), listId: z.string().optional() }),
  }),
])
export type FlowAction = z.infer<typeof FlowAction>
