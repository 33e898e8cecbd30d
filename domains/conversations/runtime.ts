import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import type { Logger } from '../../lib/logger.js'
import type { NormalizedMessage } from '../whatsapp/webhook/normalize.js'
import { interactiveButtonsBody, interactiveListBody, textBody } from '../whatsapp/graph/bodies.js'
import { changeLeads, optOutLeads, recordInteractions } from '../marketing/leads/service.js'
import { queueOutbound } from '../whatsapp/outbound/service.js'
import { botConversationCompleted, botConversationHandedOver, botConversationStarted, recordPlatformEvents } from '../analytics/platform-events.js'
import type { EventRow } from '../analytics/schemas.js'
import { advance, isOptOut, matchesTrigger, startFlow, type FlowContext, type LeadSnapshot, type StepResult } from './flows/engine.js'
import { FlowDocument, type FlowAction, type FlowState } from './flows/schema.js'
import * as q from './queries.js'
import { recordExposures, variationsForLead } from '../experiments/service.js'
import { replyInConversation, startInConversation, type StepOutcome } from '../assessments/whatsapp.js'
import { FLOW_TIMER_TASK, MessageEventPayload, RUN_BOT_TASK, type FlowTimerPayload } from './schemas.js'

/**
 * The bot runtime. Inbound messages, timers and releases are queued per conversation (conversations.events, once
 * each by dedupe key) and applied here one at a time, oldest first, each in its own transaction under the
 * conversation's row lock: the state change, the lead changes, the replies (outbox rows and their send jobs) and
 * the event's `applied` mark commit together or not at all. So a lead's conversation advances exactly once per
 * message and in order, however many messages arrive at once, however many runners race, and whatever is retried.
 */

export interface RuntimeOptions {
  sql: Sql
  log?: Logger
  now?: () => Date
  /** Attempts before an event that keeps failing is set aside (status failed), so one bad event cannot stall a lead. */
  maxEventAttempts?: number
}

const IN_FLIGHT_RECHECK_MS = 250

// Versions never change once written, so a parsed document can be kept for the life of the process.
const documents = new Map<string, FlowDocument>()
const DOCUMENT_CACHE_MAX = 500

async function loadDocument(tx: Tx, flowId: string, version: number): Promise<FlowDocument | null> {
  const key = `${flowId}@${version}`
  const cached = documents.get(key)
  if (cached) return cached
  const raw = await q.findFlowVersionDocument(tx, flowId, version)
  if (raw === null) return null
  const parsed = FlowDocument.parse(raw)
  if (documents.size >= DOCUMENT_CACHE_MAX) documents.delete(documents.keys().next().value!)
  documents.set(key, parsed)
  return parsed
}

/** Applies every pending event of one conversation. Returns how many were applied. */
export async function runConversation(options: RuntimeOptions, tenantId: string, conversationId: string): Promise<number> {
  const maxAttempts = options.maxEventAttempts ?? 5
  let applied = 0
  for (;;) {
    let eventId: string | null = null
    try {
      const more = await withTenant(options.sql, tenantId, async (tx) => {
        const conversation = await q.lockConversation(tx, conversationId)
        if (!conversation) return false
        const event = await q.nextPendingEvent(tx, conversationId)
        if (!event) return false
        if (await q.hasInboundInFlight(tx, conversation.waId)) {
          // Processing that message enqueues a run too; this one is a safety net in case it turns out a replay.
          await q.enqueueRunBot(tx, tenantId, conversationId, RUN_BOT_TASK, new Date(Date.now() + IN_FLIGHT_RECHECK_MS))
          return false
        }
        eventId = event.id
        const { outcome, actions } = await applyEvent(tx, conversation, event, options.now?.() ?? new Date())
        await q.markEventApplied(tx, event.id, outcome, actions)
        applied++
        return (await q.nextPendingEvent(tx, conversationId)) !== null
      })
      if (!more) return applied
    } catch (err) {
      if (eventId === null) throw err
      const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      const status = await withTenant(options.sql, tenantId, (tx) => q.recordEventFailure(tx, eventId!, message.slice(0, 2000), maxAttempts))
      if (status !== 'failed') throw err
      options.log?.error({ conversationId, eventId, err: message }, 'bot event set aside after repeated failures')
    }
  }
}

/** The conversation's mutable part while one event is applied, saved back at the end. */
interface Working extends Pick<q.ConversationRow, 'flowId' | 'flowVersion' | 'state' | 'handedOverAt' | 'handedOverBy' | 'handoverNote' | 'inboundCount'> {
  tenantId: string
  conversation: q.ConversationRow
  now: Date
  actions: FlowAction[]
  /** The event being applied: its id keys the analytics events it causes (applied once, so recorded once). */
  eventId: string
  /** Analytics events (platform-events.ts) of this step, recorded with it. */
  events: EventRow[]
  /** The context the current step ran with (an assessment completing mid-step advances the run with it). */
  context?: FlowContext
}

const isRunning = (state: FlowState | null) => state !== null && (state.status === 'waiting_answer' || state.status === 'waiting_timer')

async function applyEvent(tx: Tx, conversation: q.ConversationRow, event: q.PendingEvent, now: Date): Promise<{ outcome: string; actions: FlowAction[] }> {
  const w: Working = {
    tenantId: conversation.tenantId,
    conversation,
    now,
    flowId: conversation.flowId,
    flowVersion: conversation.flowVersion,
    state: conversation.state,
    handedOverAt: conversation.handedOverAt,
    handedOverBy: conversation.handedOverBy,
    handoverNote: conversation.handoverNote,
    inboundCount: conversation.inboundCount,
    actions: [],
    eventId: event.id,
    events: [],
  }
  const outcome = await decide(tx, w, event)
  if (w.events.length > 0) await recordPlatformEvents(tx, w.events)
  await q.saveConversation(tx, conversation.id, {
    flowId: w.flowId, flowVersion: w.flowVersion, state: w.state, handedOverAt: w.handedOverAt, handedOverBy: w.handedOverBy,
    handoverNote: w.handoverNote, inboundCount: w.inboundCount,
  })
  return { outcome, actions: w.actions }
}

async function decide(tx: Tx, w: Working, event: q.PendingEvent): Promise<string> {
  const lead = await q.findLead(tx, w.conversation.leadId)
  if (!lead) return 'ignored: the lead is gone'
  const context: FlowContext = { now: w.now, lead: snapshot(lead) }

  switch (event.kind) {
    case 'message': {
      const isFirstMessage = w.inboundCount === 0
      w.inboundCount++
      const m = MessageEventPayload.parse(event.payload)
      if (isOptOut(m.text)) {
        await optOutLeads(tx, w.now, [{ leadId: lead.id, channel: 'whatsapp', actor: 'lead', occurredAt: event.occurredAt, messageId: event.messageId, details: { text: m.text }, dedupeKey: `opt-out:${event.id}` }])
        if (isRunning(w.state)) await endRun(tx, w)
        return 'opted out of marketing messages'
      }
      if (w.handedOverAt) return 'left for a person (handed over)'
      const flowEvent = { type: 'message' as const, messageId: m.wamid, kind: m.kind, ...(m.text !== undefined ? { text: m.text } : {}), ...(m.buttonId !== undefined ? { buttonId: m.buttonId } : {}), ...(m.listId !== undefined ? { listId: m.listId } : {}) }
      if (isRunning(w.state)) {
        const doc = await runDocument(tx, w)
        if (!doc) return 'ignored: the flow of the run is gone'
        await apply(tx, w, advance(doc, w.state!, flowEvent, await contextFor(tx, doc, context, lead.id, w)))
        return `advanced ${w.flowId}@v${w.flowVersion}`
      }
      const trigger = { isFirstMessage, text: m.text ?? null, referralSourceId: m.referralSourceId ?? null }
      const flow = await pickFlow(tx, trigger)
      if (!flow) return 'no flow triggered'
      w.flowId = flow.flowId
      w.flowVersion = flow.version
      w.events.push(botConversationStarted({ conversationId: w.conversation.id, flowId: flow.flowId, leadId: w.conversation.leadId, at: w.now, eventId: w.eventId }))
      // A new run: the last one's (ended) state is behind it, so this run's end counts as its own completion.
      w.state = null
      await apply(tx, w, startFlow(flow.document, await contextFor(tx, flow.document, context, lead.id, w), { flowId: flow.flowId, flowVersion: flow.version }))
      return `started ${flow.flowId}@v${flow.version}`
    }
    case 'timer': {
      if (w.handedOverAt || !isRunning(w.state)) return 'ignored: no run waiting for a timer'
      const doc = await runDocument(tx, w)
      if (!doc) return 'ignored: the flow of the run is gone'
      const p = event.payload as Pick<FlowTimerPayload, 'dueAt' | 'kind'>
      await apply(tx, w, advance(doc, w.state!, { type: 'timer', dueAt: p.dueAt, kind: p.kind }, await contextFor(tx, doc, context, lead.id, w)))
      return 'timer'
    }
    case 'release': {
      const wasHandedOver = w.handedOverAt !== null
      w.handedOverAt = null
      w.handedOverBy = null
      w.handoverNote = null
      if (w.state?.status === 'handed_over') {
        const doc = await runDocument(tx, w)
        if (doc) await apply(tx, w, advance(doc, w.state, { type: 'release' }, await contextFor(tx, doc, context, lead.id, w)))
        else w.state = { ...w.state, status: 'ended', currentNodeId: null }
        return 'released; the flow resumes'
      }
      return wasHandedOver ? 'released; the bot is back' : 'ignored: not handed over'
    }
  }
}

function snapshot(lead: q.LeadRow): LeadSnapshot {
  return {
    name: lead.name ?? lead.profileName,
    email: lead.email,
    phone: lead.phoneE164,
    company: lead.company,
    tags: lead.tags,
    status: lead.status,
    fields: lead.fields,
  }
}

async function runDocument(tx: Tx, w: Working): Promise<FlowDocument | null> {
  const flowId = w.state?.flowId ?? w.flowId
  const version = w.state?.flowVersion ?? w.flowVersion
  if (!flowId || !version) return null
  return loadDocument(tx, flowId, version)
}

// A click-to-WhatsApp ad is the most specific reason a conversation started, then a keyword, then "first message".
const TRIGGER_PRIORITY = { referral: 0, keyword: 1, first_message: 2 } as const

async function pickFlow(tx: Tx, input: Parameters<typeof matchesTrigger>[1]) {
  const candidates: { flowId: string; version: number; document: FlowDocument; rank: number }[] = []
  for (const f of await q.listPublishedFlows(tx)) {
    const document = await loadDocument(tx, f.flowId, f.version)
    if (document && matchesTrigger(document, input)) candidates.push({ flowId: f.flowId, version: f.version, document, rank: TRIGGER_PRIORITY[document.trigger.type] })
  }
  // Stable: among equals, the flow created first wins.
  return candidates.sort((a, b) => a.rank - b.rank)[0] ?? null
}

async function endRun(tx: Tx, w: Working) {
  const { timerDueAt: _due, timerKind: _kind, ...rest } = w.state!
  w.state = { ...rest, status: 'ended', currentNodeId: null, attempts: 0 }
  await q.cancelFlowTimer(tx, w.conversation.id)
}

/** Persists nothing itself: updates the working state, then carries out the actions in order (outbox). */
async function apply(tx: Tx, w: Working, step: StepResult) {
  const c = w.conversation
  // The flow reached its end (not a run ended by an opt-out or a merge: those do not go through a step).
  if (step.state.status === 'ended' && w.state?.status !== 'ended') {
    w.events.push(botConversationCompleted({ conversationId: c.id, flowId: step.state.flowId ?? w.flowId, leadId: c.leadId, at: w.now, eventId: w.eventId }))
  }
  w.state = step.state
  const to = c.waId
  const requestedBy = `bot:${w.state.flowId ?? w.flowId}@v${w.state.flowVersion}`
  const send = (body: Parameters<typeof queueOutbound>[1]['body']) =>
    queueOutbound(tx, { tenantId: w.tenantId, phoneId: c.phoneNumberId, leadId: c.leadId, waId: to, body, source: 'bot', requestedBy })
  for (const action of step.actions) {
    w.actions.push(action)
    switch (action.type) {
      case 'send_text':
        await send(textBody({ to, text: action.text }))
        break
      case 'send_buttons':
        await send(interactiveButtonsBody({ to, text: action.text, buttons: action.options }))
        break
      case 'send_list':
        await send(interactiveListBody({ to, text: action.text, buttonText: action.buttonText, sections: [{ rows: action.options }] }))
        break
      case 'set_lead_field':
        await changeLeads(tx, [c.leadId], { type: 'set_field', field: action.field, value: action.value })
        break
      case 'add_tags':
        await changeLeads(tx, [c.leadId], { type: 'add_tags', tags: action.tags })
        break
      case 'remove_tags':
        await changeLeads(tx, [c.leadId], { type: 'remove_tags', tags: action.tags })
        break
      case 'set_status':
        await changeLeads(tx, [c.leadId], { type: 'set_status', status: action.status })
        break
      case 'schedule_timer':
        await q.scheduleFlowTimer(tx, FLOW_TIMER_TASK, { tenantId: w.tenantId, conversationId: c.id, dueAt: action.dueAt, kind: action.kind })
        break
      case 'cancel_timer':
        await q.cancelFlowTimer(tx, c.id)
        break
      case 'handover':
        if (!w.handedOverAt) w.events.push(botConversationHandedOver({ conversationId: c.id, flowId: w.state.flowId ?? w.flowId, leadId: c.leadId, at: w.now, by: 'bot' }))
        w.handedOverAt = w.now
        w.handedOverBy = 'bot'
        w.handoverNote = action.note ?? null
        await recordInteractions(tx, [{
          leadId: c.leadId, type: 'handover', channel: 'whatsapp', actor: 'bot', occurredAt: w.now, messageId: null,
          details: { note: action.note ?? null, conversationId: c.id }, dedupeKey: `handover:${c.id}:${w.now.toISOString()}`,
        }])
        break
      case 'experiment_exposure':
        await recordExposures(tx, [{ leadId: c.leadId, experimentKey: action.experimentKey, variationKey: action.variationKey, source: 'flow', at: w.now }])
        break
      case 'assessment_start':
      case 'assessment_message': {
        const ref = { conversationId: c.id, leadId: c.leadId }
        const outcome = action.type === 'assessment_start'
          ? await startInConversation(tx, ref, action.assessmentKey)
          : await replyInConversation(tx, ref, action.assessmentKey, action.message)
        await runAssessmentOutcome(tx, w, outcome, send)
        break
      }
      case 'end':
        break
    }
  }
}

/**
 * Sends what the assessment says; when it completed, the run moves past the node in this same transaction (the
 * band under the node's answerKey); when it cannot run, a person takes over.
 */
async function runAssessmentOutcome(tx: Tx, w: Working, outcome: StepOutcome, send: (body: Parameters<typeof queueOutbound>[1]['body']) => Promise<unknown>) {
  const to = w.conversation.waId
  for (const m of outcome.messages) {
    if (m.type === 'send_text') await send(textBody({ to, text: m.text }))
    else if (m.type === 'send_buttons') await send(interactiveButtonsBody({ to, text: m.text, buttons: m.options }))
    else if (m.type === 'send_list') await send(interactiveListBody({ to, text: m.text, buttonText: m.buttonText, sections: [{ rows: m.options }] }))
  }
  if (outcome.unavailable) {
    await apply(tx, w, { state: { ...w.state!, status: 'handed_over', currentNodeId: null }, actions: [{ type: 'handover', note: `flow error: ${outcome.unavailable}` }] })
    return
  }
  if (outcome.completed && w.state) {
    const doc = await runDocument(tx, w)
    if (doc && w.context) await apply(tx, w, advance(doc, w.state, { type: 'assessment_completed', ...outcome.completed }, w.context))
  }
}

/** The context for running `doc`: the lead's variations in the experiments its experiment nodes name (none: no query). */
async function contextFor(tx: Tx, doc: FlowDocument, context: FlowContext, leadId: string, w?: Working): Promise<FlowContext> {
  const c = await experimentContext(tx, doc, context, leadId)
  if (w) w.context = c
  return c
}

async function experimentContext(tx: Tx, doc: FlowDocument, context: FlowContext, leadId: string): Promise<FlowContext> {
  const keys = [...new Set(doc.nodes.flatMap((n) => (n.type === 'experiment' ? [n.experimentKey] : [])))]
  return keys.length === 0 ? context : { ...context, experiments: await variationsForLead(tx, leadId, keys) }
}

/** What an inbound message means to the bot: its text, or the id and title of the button or list row tapped. */
export function messageEventPayload(message: Pick<NormalizedMessage, 'wamid' | 'type' | 'content' | 'referral'>): MessageEventPayload {
  const c = message.content as Record<string, any>
  const base = { wamid: message.wamid, kind: message.type, ...(message.referral?.sourceId ? { referralSourceId: message.referral.sourceId } : {}) }
  switch (message.type) {
    case 'text':
      return { ...base, ...(typeof c.body === 'string' ? { text: c.body } : {}) }
    case 'button':
      // A template's quick-reply button: the payload is the id we set, the text its title.
      return { ...base, ...(typeof c.text === 'string' ? { text: c.text } : {}), ...(typeof c.payload === 'string' ? { buttonId: c.payload } : {}) }
    case 'interactive': {
      const reply = c.button_reply ?? c.list_reply
      const id = typeof reply?.id === 'string' ? reply.id : undefined
      return {
        ...base,
        ...(typeof reply?.title === 'string' ? { text: reply.title } : {}),
        ...(id !== undefined ? (c.type === 'list_reply' ? { listId: id } : { buttonId: id }) : {}),
      }
    }
    default:
      return { ...base, ...(typeof c.caption === 'string' ? { text: c.caption } : {}) }
  }
}

/** A due flow timer becomes an event (once per due time and kind) with a bot job, in one commit. */
export async function queueTimerEvent(sql: Sql, timer: FlowTimerPayload): Promise<void> {
  await withTenant(sql, timer.tenantId, async (tx) => {
    // The conversation may be gone (its lead was deleted): then there is nothing to wake.
    if (!(await q.lockConversation(tx, timer.conversationId))) return
    const queued = await q.insertEvent(tx, {
      tenantId: timer.tenantId, conversationId: timer.conversationId, kind: 'timer', dedupeKey: `timer:${timer.kind}:${timer.dueAt}`,
      messageId: null, payload: { dueAt: timer.dueAt, kind: timer.kind }, occurredAt: timer.dueAt,
    })
    if (queued) await q.enqueueRunBot(tx, timer.tenantId, timer.conversationId, RUN_BOT_TASK)
  })
}
