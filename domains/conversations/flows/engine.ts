import {
  type AskInput,
  type Condition,
  type FlowAction,
  type FlowDocument,
  type FlowEvent,
  type FlowNode,
  type FlowNodeOf,
  type FlowState,
  type TimerKind,
  MATCH_INPUT_MAX,
  MAX_NODES,
} from './schema.js'
import { foldText, foldWord, type PlaceholderPath, renderTemplate } from './text.js'

/**
 * The flow interpreter: pure and deterministic. Given a checked flow, the lead's state and one event, it returns
 * the next state and the actions to carry out. No I/O and no clock: `context.now` is the only time it knows.
 * The caller persists `state` and performs `actions` in order (outbox), and feeds events exactly once, in order.
 */

/**
 * A second guard against loops (the schema already refuses cycles without an ask or wait): a run visits each node
 * at most once per event in a valid flow, so more steps than nodes means a bug, not a big flow.
 */
export const MAX_STEPS_PER_EVENT = MAX_NODES + 50

/** What the interpreter may read about the lead: a snapshot taken before the event. */
export interface LeadSnapshot {
  name?: string | null
  email?: string | null
  phone?: string | null
  /** Read as `fields.company` when absent. */
  company?: string | null
  tags: readonly string[]
  status: string
  fields: Readonly<Record<string, unknown>>
}

export interface FlowContext {
  now: Date
  lead: LeadSnapshot
  /**
   * The lead's variation in each experiment the flow's experiment nodes name (the runtime assigns before the run);
   * absent or null: the lead is not in that experiment.
   */
  experiments?: Readonly<Record<string, string | null>>
}

export interface StepResult {
  state: FlowState
  actions: FlowAction[]
}

/** Which stored flow this run follows; copied into the state so a worker can load the same version later. */
export interface FlowRef {
  flowId?: string
  flowVersion?: number
}

type MessageEvent = Extract<FlowEvent, { type: 'message' }>
type TimerEvent = Extract<FlowEvent, { type: 'timer' }>
type AskNode = FlowNodeOf<'ask'>

interface WorkingLead {
  name?: string | null
  email?: string | null
  phone?: string | null
  company?: string | null
  tags: string[]
  status: string
  fields: Record<string, unknown>
}

/** One event's worth of interpretation: a draft state, a working copy of the lead, and the actions so far. */
interface Run {
  flow: FlowDocument
  nodes: Map<string, FlowNode>
  now: Date
  // The lead as this run's own actions leave it, so a branch or template after set_field/tag/qualify sees them.
  lead: WorkingLead
  state: FlowState
  actions: FlowAction[]
  experiments: Readonly<Record<string, string | null>>
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

export function startFlow(flow: FlowDocument, context: FlowContext, ref: FlowRef = {}): StepResult {
  const initial: FlowState = {
    ...(ref.flowId !== undefined ? { flowId: ref.flowId } : {}),
    flowVersion: ref.flowVersion ?? 1,
    currentNodeId: flow.startNodeId,
    status: 'active',
    attempts: 0,
    answers: {},
  }
  const run = openRun(flow, initial, context)
  runFrom(run, flow.startNodeId)
  return closeRun(run)
}

export function advance(flow: FlowDocument, state: FlowState, event: FlowEvent, context: FlowContext): StepResult {
  switch (event.type) {
    case 'message': {
      // Messages while waiting on a timer, handed over or ended are the caller's or a human's business.
      if (state.status !== 'waiting_answer') return unchanged(state)
      const run = openRun(flow, state, context)
      receiveAnswer(run, event)
      return closeRun(run)
    }
    case 'assessment_completed': {
      const node = flow.nodes.find((n) => n.id === state.currentNodeId)
      if (state.status !== 'waiting_answer' || node?.type !== 'assessment') return unchanged(state)
      const run = openRun(flow, state, context)
      if (node.answerKey && event.band !== null) run.state.answers[node.answerKey] = event.band
      run.state.status = 'active'
      runFrom(run, node.next)
      return closeRun(run)
    }
    case 'timer': {
      if (!isPendingTimer(state, event)) return unchanged(state)
      const run = openRun(flow, state, context)
      fireTimer(run)
      return closeRun(run)
    }
    case 'release': {
      if (state.status !== 'handed_over') return unchanged(state)
      const run = openRun(flow, state, context)
      run.state.status = 'active'
      runFrom(run, state.currentNodeId)
      return closeRun(run)
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Triggers and opt-out

export interface TriggerInput {
  isFirstMessage: boolean
  text?: string | null
  /** The click-to-WhatsApp ad's source id, when the message came from one. */
  referralSourceId?: string | null
}

/** Whether an inbound message starts this flow. Keywords match the whole message or its first word. */
export function matchesTrigger(flow: Pick<FlowDocument, 'trigger'>, input: TriggerInput): boolean {
  const trigger = flow.trigger
  switch (trigger.type) {
    case 'first_message':
      return input.isFirstMessage
    case 'keyword': {
      const message = foldWord(input.text ?? '')
      if (message === '') return false
      const firstWord = foldWord(message.split(' ')[0] ?? '')
      return trigger.keywords.some((k) => {
        const keyword = foldWord(k)
        return keyword !== '' && (keyword === message || keyword === firstWord)
      })
    }
    case 'referral':
      if (!input.referralSourceId) return false
      return trigger.sourceIds === undefined || trigger.sourceIds.includes(input.referralSourceId)
  }
}

// The carriers' standard English set (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT) plus the Portuguese and
// Spanish words our leads actually send. Folded: lowercase, no accents, hyphens as spaces.
const OPT_OUT_KEYWORDS = new Set([
  'stop', 'stopall', 'unsubscribe', 'cancel', 'end', 'quit', 'opt out', 'optout',
  'parar', 'pare', 'sair', 'cancelar', 'descadastrar', 'remover',
  'baja', 'dar de baja', 'darme de baja', 'detener', 'salir',
])

/**
 * Whether a message asks to stop receiving messages: the whole message (trimmed; case, accents and surrounding
 * punctuation ignored) must be an opt-out keyword, so "STOP", "Sair." and "Darme de baja" count but "stop the
 * pain please" does not. The caller checks this before `advance` and records the opt-out; flows never see it.
 */
export function isOptOut(text: string | null | undefined): boolean {
  if (!text) return false
  return OPT_OUT_KEYWORDS.has(foldWord(text.replace(/[-_]/g, ' ')).replace(/\s+/g, ' '))
}

// ---------------------------------------------------------------------------------------------------------
// Running nodes

function openRun(flow: FlowDocument, state: FlowState, context: FlowContext): Run {
  const lead = context.lead
  return {
    flow,
    nodes: new Map(flow.nodes.map((n) => [n.id, n])),
    now: context.now,
    lead: { ...lead, tags: [...lead.tags], fields: { ...lead.fields } },
    state: { ...state, answers: { ...state.answers } },
    actions: [],
    experiments: context.experiments ?? {},
  }
}

function closeRun(run: Run): StepResult {
  return { state: compactState(run.state), actions: run.actions }
}

const unchanged = (state: FlowState): StepResult => ({ state, actions: [] })

// Optional keys are omitted rather than undefined, so the state survives a JSON round trip unchanged.
function compactState(state: FlowState): FlowState {
  const { flowId, timerDueAt, timerKind, ...rest } = state
  return {
    ...(flowId !== undefined ? { flowId } : {}),
    ...rest,
    ...(timerDueAt !== undefined ? { timerDueAt } : {}),
    ...(timerKind !== undefined ? { timerKind } : {}),
  }
}

/** Runs nodes from `nodeId` until one waits for an event; null means the run is over. */
function runFrom(run: Run, startId: string | null) {
  if (startId === null) return endRun(run)
  let nodeId: string | null = startId
  for (let steps = 0; nodeId !== null; steps++) {
    if (steps >= MAX_STEPS_PER_EVENT) return breakDown(run, `flow ran ${MAX_STEPS_PER_EVENT} steps without waiting; last node "${nodeId}"`)
    const node = run.nodes.get(nodeId)
    if (!node) return breakDown(run, `flow has no node "${nodeId}"`)
    run.state.currentNodeId = node.id
    nodeId = step(run, node)
  }
}

/** Executes one node; returns the next node to run, or null when the run now waits (or has ended). */
function step(run: Run, node: FlowNode): string | null {
  switch (node.type) {
    case 'send_message':
      sendText(run, node.text)
      return node.next
    case 'set_field': {
      const value = render(run, node.value).trim()
      // An empty value (say, an answer never given) must not wipe what the lead already has.
      if (value !== '') {
        run.actions.push({ type: 'set_lead_field', field: node.field, value })
        setLeadValue(run.lead, node.field, value)
      }
      return node.next
    }
    case 'branch': {
      const rule = node.rules.find((r) => holds(run, r.when))
      return rule ? rule.next : node.otherwise
    }
    case 'tag': {
      const add = node.add?.filter((t) => !run.lead.tags.includes(t)) ?? []
      const remove = node.remove ?? []
      if (add.length > 0) run.actions.push({ type: 'add_tags', tags: add })
      if (remove.length > 0) run.actions.push({ type: 'remove_tags', tags: [...remove] })
      run.lead.tags = [...run.lead.tags, ...add].filter((t) => !remove.includes(t))
      return node.next
    }
    case 'qualify':
      run.actions.push({ type: 'set_status', status: node.status })
      run.lead.status = node.status
      return node.next
    case 'ask':
      enterAsk(run, node)
      return null
    case 'wait':
      run.state.status = 'waiting_timer'
      run.state.attempts = 0
      scheduleTimer(run, node.seconds, 'wait')
      return null
    case 'handover':
      if (node.text !== undefined) sendText(run, node.text)
      handOver(run, node.note !== undefined ? render(run, node.note).trim() : undefined, node.next ?? null)
      return null
    case 'end':
      if (node.text !== undefined) sendText(run, node.text)
      endRun(run)
      return null
    case 'assessment':
      run.state.status = 'waiting_answer'
      run.state.attempts = 0
      run.actions.push({ type: 'assessment_start', assessmentKey: node.assessmentKey })
      return null
    case 'experiment': {
      const variationKey = run.experiments[node.experimentKey] ?? null
      const branch = variationKey === null ? undefined : node.variations.find((v) => v.variationKey === variationKey)
      // Exposed when the node uses the variation; a lead outside the experiment (or in an arm the node does not list) saw none.
      if (branch) run.actions.push({ type: 'experiment_exposure', experimentKey: node.experimentKey, variationKey: branch.variationKey })
      return branch ? branch.next : node.otherwise
    }
  }
}

function enterAsk(run: Run, node: AskNode) {
  run.state.status = 'waiting_answer'
  run.state.attempts = 0
  prompt(run, node, node.text)
  if (node.timeout) scheduleTimer(run, node.timeout.afterSeconds, node.timeout.reminderText !== undefined ? 'ask_reminder' : 'ask_timeout')
}

function receiveAnswer(run: Run, event: MessageEvent) {
  const at = run.state.currentNodeId === null ? undefined : run.nodes.get(run.state.currentNodeId)
  if (at?.type === 'assessment') {
    // The session (domains/assessments) judges the message; the run waits here until it reports completion.
    const { messageId, kind, text, buttonId, listId } = event
    run.actions.push({ type: 'assessment_message', assessmentKey: at.assessmentKey, message: { messageId, kind, ...(text !== undefined ? { text } : {}), ...(buttonId !== undefined ? { buttonId } : {}), ...(listId !== undefined ? { listId } : {}) } })
    return
  }
  const node = currentNode(run, 'ask')
  if (!node) return

  const answer = parseAnswer(node.input, event)
  if (answer !== undefined) {
    cancelTimer(run)
    run.state.answers[node.answerKey] = answer
    run.state.attempts = 0
    run.state.status = 'active'
    return runFrom(run, node.next)
  }

  run.state.attempts += 1
  if (run.state.attempts < node.maxAttempts) {
    prompt(run, node, node.invalidText)
    // The lead is engaged: the reminder clock starts over from the reprompt.
    if (node.timeout) scheduleTimer(run, node.timeout.afterSeconds, node.timeout.reminderText !== undefined ? 'ask_reminder' : 'ask_timeout')
    return
  }

  cancelTimer(run)
  run.state.attempts = 0
  if (node.onMaxAttempts !== undefined) {
    run.state.status = 'active'
    return runFrom(run, node.onMaxAttempts)
  }
  // Nobody said where to go: a person is better than a bot repeating itself. On release the run ends, since
  // the person has dealt with whatever the question was for.
  handOver(run, `no valid answer to "${node.id}" after ${node.maxAttempts} attempts`, null)
}

function fireTimer(run: Run) {
  const kind = run.state.timerKind
  // The timer has fired: nothing to cancel, only to forget.
  delete run.state.timerDueAt
  delete run.state.timerKind

  if (kind === 'wait') {
    const node = currentNode(run, 'wait')
    if (!node) return
    run.state.status = 'active'
    return runFrom(run, node.next)
  }

  const node = currentNode(run, 'ask')
  if (!node) return
  const timeout = node.timeout
  if (kind === 'ask_reminder' && timeout?.reminderText !== undefined) {
    sendText(run, timeout.reminderText)
    if (timeout.thenNodeId !== undefined) scheduleTimer(run, timeout.afterSeconds, 'ask_timeout')
    return
  }
  if (kind === 'ask_timeout' && timeout?.thenNodeId !== undefined) {
    run.state.attempts = 0
    run.state.status = 'active'
    return runFrom(run, timeout.thenNodeId)
  }
  // The flow changed under a waiting lead and this node no longer has that timer: keep waiting for an answer.
}

function currentNode<T extends FlowNode['type']>(run: Run, type: T): FlowNodeOf<T> | undefined {
  const id = run.state.currentNodeId
  const node = id === null ? undefined : run.nodes.get(id)
  if (node?.type === type) return node as FlowNodeOf<T>
  breakDown(run, `state is at "${id}", which is ${node ? `now a ${node.type} node` : 'not in the flow'}; expected the ${type} node`)
  return undefined
}

// ---------------------------------------------------------------------------------------------------------
// State transitions

function handOver(run: Run, note: string | undefined, resumeAt: string | null) {
  cancelTimer(run)
  run.actions.push({ type: 'handover', ...(note ? { note } : {}) })
  run.state.status = 'handed_over'
  run.state.currentNodeId = resumeAt
  run.state.attempts = 0
}

function endRun(run: Run) {
  cancelTimer(run)
  run.actions.push({ type: 'end' })
  run.state.status = 'ended'
  run.state.currentNodeId = null
  run.state.attempts = 0
}

/**
 * A flow that cannot go on (a node missing after an edit under a running conversation, or the step cap): hand the
 * lead to a person with a note rather than leave them talking to a silent bot.
 */
function breakDown(run: Run, reason: string) {
  handOver(run, `flow error: ${reason}`, null)
}

function scheduleTimer(run: Run, seconds: number, kind: TimerKind) {
  const dueAt = new Date(run.now.getTime() + seconds * 1000).toISOString()
  run.actions.push({ type: 'schedule_timer', dueAt, kind })
  run.state.timerDueAt = dueAt
  run.state.timerKind = kind
}

function cancelTimer(run: Run) {
  if (run.state.timerDueAt === undefined) return
  run.actions.push({ type: 'cancel_timer' })
  delete run.state.timerDueAt
  delete run.state.timerKind
}

/** A timer event counts only if it is the one the state is waiting for; anything else is stale. */
function isPendingTimer(state: FlowState, event: TimerEvent): boolean {
  if (state.timerDueAt === undefined || state.timerKind === undefined) return false
  const waitingFor = state.timerKind === 'wait' ? 'waiting_timer' : 'waiting_answer'
  if (state.status !== waitingFor) return false
  if (event.kind !== undefined && event.kind !== state.timerKind) return false
  return Date.parse(event.dueAt) === Date.parse(state.timerDueAt)
}

// ---------------------------------------------------------------------------------------------------------
// Messages out

function sendText(run: Run, template: string) {
  const text = render(run, template).trim()
  if (text !== '') run.actions.push({ type: 'send_text', text })
}

function prompt(run: Run, node: AskNode, template: string) {
  const text = render(run, template).trim()
  const input = node.input
  switch (input.kind) {
    case 'buttons':
      run.actions.push({ type: 'send_buttons', text, options: input.options.map((o) => ({ id: o.id, title: o.title })) })
      return
    case 'list':
      run.actions.push({
        type: 'send_list',
        text,
        buttonText: input.buttonText,
        options: input.options.map((o) => ({ id: o.id, title: o.title, ...(o.description !== undefined ? { description: o.description } : {}) })),
      })
      return
    case 'text':
      if (text !== '') run.actions.push({ type: 'send_text', text })
  }
}

function render(run: Run, template: string): string {
  return renderTemplate(template, (path) => resolvePath(run, path))
}

function resolvePath(run: Run, path: PlaceholderPath): string | undefined {
  if (path.scope === 'lead') return leadValue(run.lead, path.field)
  const answer = run.state.answers[path.key]
  if (answer === undefined) return undefined
  return choiceTitle(run.flow, path.key, String(answer)) ?? String(answer)
}

/** A button or list answer is stored as the option id (stable for branches); people should read its title. */
function choiceTitle(flow: FlowDocument, answerKey: string, optionId: string): string | undefined {
  for (const node of flow.nodes) {
    if (node.type !== 'ask' || node.answerKey !== answerKey || node.input.kind === 'text') continue
    const option = node.input.options.find((o) => o.id === optionId)
    if (option) return option.title
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------
// Lead values and conditions

function leadValue(lead: WorkingLead, field: string): string | undefined {
  const raw =
    field === 'name' || field === 'email' || field === 'phone' || field === 'status'
      ? lead[field]
      : field === 'company'
        ? (lead.company ?? lead.fields.company)
        : lead.fields[field]
  if (typeof raw === 'string') return raw
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw)
  return undefined
}

function setLeadValue(lead: WorkingLead, field: string, value: string) {
  if (field === 'name' || field === 'email' || field === 'phone' || field === 'company') lead[field] = value
  else lead.fields[field] = value
}

const sameValue = (a: string | number, b: string | number) => foldText(String(a)) === foldText(String(b))
const present = (value: string | number | undefined) => value !== undefined && String(value).trim() !== ''

function holds(run: Run, condition: Condition): boolean {
  if ('all' in condition) return condition.all.every((c) => holds(run, c))
  if ('any' in condition) return condition.any.some((c) => holds(run, c))
  if ('not' in condition) return !holds(run, condition.not)
  if ('tag' in condition) return run.lead.tags.some((t) => sameValue(t, condition.tag))

  const value = 'answer' in condition ? run.state.answers[condition.answer] : leadValue(run.lead, condition.lead)
  if (condition.exists !== undefined) return present(value) === condition.exists
  if (value === undefined) return false
  if (condition.equals !== undefined) return sameValue(value, condition.equals)
  if ('answer' in condition) {
    if (condition.in !== undefined) return condition.in.some((candidate) => sameValue(value, candidate))
    if (condition.matches !== undefined) return new RegExp(condition.matches, 'iu').test(String(value).slice(0, MATCH_INPUT_MAX))
  }
  return false
}

// ---------------------------------------------------------------------------------------------------------
// Answers in

const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/
const NUMBER = /^[-+]?\d+(?:[.,]\d+)?$/

/** The stored answer, or undefined when the message does not answer the question. */
export function parseAnswer(input: AskInput, event: Pick<MessageEvent, 'text' | 'buttonId' | 'listId'>): string | number | undefined {
  if (input.kind === 'buttons' || input.kind === 'list') {
    const options: { id: string; title: string }[] = input.options
    for (const id of [event.buttonId, event.listId]) {
      if (id !== undefined && options.some((o) => o.id === id)) return id
    }
    // Typed replies (or a tap on an older message whose id we lost) are matched on the title.
    const typed = foldText(event.text ?? '')
    if (typed === '') return undefined
    return options.find((o) => foldText(o.title) === typed)?.id
  }

  const text = event.text?.trim() ?? ''
  if (text === '') return undefined
  const withinLength = (value: string) => (input.min === undefined || value.length >= input.min) && (input.max === undefined || value.length <= input.max)

  switch (input.validate) {
    case 'email': {
      const email = text.toLowerCase()
      return email.length <= 254 && EMAIL.test(email) && withinLength(email) ? email : undefined
    }
    case 'phone': {
      // Only plausibility here; E.164 normalization happens where the country is known.
      const digits = text.replace(/[\s().\-/]/g, '').replace(/^\+/, '')
      return /^\d{6,15}$/.test(digits) && withinLength(text) ? text : undefined
    }
    case 'number': {
      // A decimal comma is common in our markets; thousands separators are ambiguous, so they are refused.
      if (!NUMBER.test(text)) return undefined
      const value = Number(text.replace(',', '.'))
      return (input.min === undefined || value >= input.min) && (input.max === undefined || value <= input.max) ? value : undefined
    }
    case 'any':
    case undefined:
      return withinLength(text) ? text : undefined
  }
}
