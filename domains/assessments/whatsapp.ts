import type { Tx } from '../../lib/db.js'
import { foldText, foldWord } from '../conversations/flows/text.js'
import type { FlowAction } from '../conversations/flows/schema.js'
import { missingProfileFields, optionsOf, scaleSteps, visibleQuestions } from './definition.js'
import * as q from './queries.js'
import type { AnswerValue, ProfileField, Question } from './schemas.js'
import { linkOfConversation, recordLinkSessionStarted } from './partners/links.js'
import { answerQuestion, goBack, resumeIfAbandoned, saveProfile, type SessionContext, sessionContext, startSession } from './service.js'
import { AppError } from '../../lib/errors.js'

/**
 * An assessment inside a WhatsApp conversation (the bot's `assessment` node): each question becomes a message
 * within Meta's limits (up to 3 reply buttons with titles of 20 characters; a list of up to 10 rows with titles of 24,
 * paged with a "More…" row when a question has more options; otherwise a text prompt whose typed answer is
 * validated), and each reply goes through the same rules as the web (service.ts), so the same answers give the same
 * result. "back" goes back a question, "pause" pauses (any later message picks up where it stopped), "skip" skips an
 * optional question. The result is sent as a message when the session completes.
 */

export const BUTTON_TITLE_MAX = 20
export const LIST_ROW_TITLE_MAX = 24
export const LIST_ROW_DESCRIPTION_MAX = 72
export const LIST_ROWS_MAX = 10
export const BUTTONS_MAX = 3

const BACK = new Set(['back', 'voltar', 'atras', 'volver', 'anterior'])
const PAUSE = new Set(['pause', 'later', 'pausar', 'depois', 'mas tarde', 'despues'])
const SKIP = new Set(['skip', 'pular', 'saltar', 'omitir'])
const YES = new Set(['yes', 'y', 'sim', 's', 'si'])
const NO = new Set(['no', 'n', 'nao'])
const NONE = new Set(['none', 'nenhum', 'nenhuma', 'ninguno', 'nada'])

export interface ConversationRef { conversationId: string; leadId: string }
export interface InboundReply { messageId: string; kind: string; text?: string; buttonId?: string; listId?: string }
export interface StepOutcome {
  messages: FlowAction[]
  completed: { band: string | null; totalScore: number } | null
  /** Set when the node cannot run (no such published assessment): the runtime hands the lead to a person. */
  unavailable?: string
}

const truncate = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`)

// ---------------------------------------------------------------------------------------------------------------
// Prompts

interface Choice { id: string; title: string; description?: string }

/** The choices a question offers as buttons or list rows (ids we parse back), or null when it is typed. */
function choicesOf(question: Question): Choice[] | null {
  switch (question.type) {
    case 'single_choice':
    case 'yes_no':
      return optionsOf(question).map((o) => ({ id: `opt:${o.id}`, title: o.label }))
    case 'scale': {
      const steps = scaleSteps(question)
      return steps.length <= LIST_ROWS_MAX ? steps.map((v) => ({ id: `scale:${v}`, title: String(v) })) : null
    }
    default:
      return null
  }
}

function typedHint(question: Question): string {
  const skip = question.required ? '' : '\nReply *skip* to skip this one.'
  switch (question.type) {
    case 'multiple_choice': {
      const lines = optionsOf(question).map((o, i) => `${i + 1}. ${o.label}`).join('\n')
      const none = question.required ? '' : ' or *none*'
      return `${lines}\n\nReply with the numbers of all that apply, separated by commas (e.g. 1, 3)${none}.${skip}`
    }
    case 'number':
      return `Reply with a number${question.unit ? ` (${question.unit})` : ''}${question.min !== undefined && question.max !== undefined ? ` from ${question.min} to ${question.max}` : ''}.${skip}`
    case 'scale': {
      const steps = scaleSteps(question)
      return `Reply with a number from ${steps[0]} to ${steps[steps.length - 1]}.${skip}`
    }
    case 'text':
      return `Reply with your answer.${skip}`
    default:
      return skip.trim()
  }
}

/** The message that asks `question` (page `page` of a long option list). */
export function questionMessage(question: Question, position: { index: number; total: number }, page = 0): FlowAction {
  const head = `(${position.index}/${position.total}) ${question.text}${question.help ? `\n_${question.help}_` : ''}`
  const choices = choicesOf(question)
  if (!choices) return { type: 'send_text', text: truncate(`${head}\n\n${typedHint(question)}`, 4096) }
  const withSkip = question.required ? choices : [...choices, { id: 'skip', title: 'Skip' }]
  if (withSkip.length <= BUTTONS_MAX && withSkip.every((c) => c.title.length <= BUTTON_TITLE_MAX)) {
    return { type: 'send_buttons', text: truncate(head, 1024), options: withSkip.map((c) => ({ id: c.id, title: c.title })) }
  }
  const rows = pageOf(withSkip, page)
  return {
    type: 'send_list', text: truncate(head, 1024), buttonText: 'Choose',
    options: rows.map((c) => ({
      id: c.id, title: truncate(c.title, LIST_ROW_TITLE_MAX),
      ...(c.title.length > LIST_ROW_TITLE_MAX ? { description: truncate(c.title, LIST_ROW_DESCRIPTION_MAX) } : {}),
    })),
  }
}

/** Rows of one page: up to 10; when more remain, 9 and a "More…" row (the last page goes back to the first). */
export function pageOf(choices: Choice[], page: number): Choice[] {
  if (choices.length <= LIST_ROWS_MAX) return choices
  const per = LIST_ROWS_MAX - 1
  const pages = Math.ceil(choices.length / per)
  const p = ((page % pages) + pages) % pages
  const slice = choices.slice(p * per, p * per + per)
  return [...slice, { id: 'more', title: p === pages - 1 ? 'Back to the start' : 'More…', description: `Options ${p === pages - 1 ? 1 : (p + 1) * per + 1}+` }]
}

function profileMessage(field: ProfileField): FlowAction {
  const text = `${field.label}?`
  if (field.type === 'choice' && field.options) {
    const opts = field.options.map((o) => ({ id: `opt:${o.id}`, title: o.label }))
    if (opts.length <= BUTTONS_MAX && opts.every((o) => o.title.length <= BUTTON_TITLE_MAX)) return { type: 'send_buttons', text, options: opts }
    return { type: 'send_list', text, buttonText: 'Choose', options: opts.slice(0, LIST_ROWS_MAX).map((o) => ({ id: o.id, title: truncate(o.title, LIST_ROW_TITLE_MAX) })) }
  }
  return { type: 'send_text', text: field.type === 'number' ? `${text} (a number${field.min !== undefined && field.max !== undefined ? ` from ${field.min} to ${field.max}` : ''})` : text }
}

export function resultMessage(ctx: SessionContext, result: { totalScore: number; bandLabel: string | null; categoryScores: Record<string, number>; recommendations: string[] }): FlowAction {
  const names = new Map(ctx.compiled.definition.categories.map((c) => [c.key, c.name]))
  const categories = Object.entries(result.categoryScores).map(([k, v]) => `• ${names.get(k) ?? k}: ${Math.round(v * 10) / 10}`).join('\n')
  const advice = result.recommendations.map((r) => `• ${r}`).join('\n')
  const text = [`*${ctx.assessment.name}: ${result.bandLabel ?? 'done'}*`, `Your score: *${result.totalScore}*`, categories, advice ? `What to do next:\n${advice}` : ''].filter(Boolean).join('\n\n')
  return { type: 'send_text', text: truncate(text, 4096) }
}

// ---------------------------------------------------------------------------------------------------------------
// Replies

type Parsed = { value: AnswerValue } | { more: true } | { invalid: string }

const numberIn = (text: string) => {
  const t = text.trim().replace(/\s/g, '').replace(',', '.')
  return /^[-+]?\d+(\.\d+)?$/.test(t) ? Number(t) : null
}

/** What a reply means for the question: a value to answer with, a page turn, or why it is not an answer. */
export function parseReply(question: Question, reply: InboundReply): Parsed {
  const id = reply.listId ?? reply.buttonId
  const text = reply.text ?? ''
  const word = foldWord(text)
  if (id === 'more') return { more: true }
  if (id === 'skip' || (!id && SKIP.has(word))) return question.required ? { invalid: 'This question needs an answer.' } : { value: null }
  const options = optionsOf(question)
  switch (question.type) {
    case 'single_choice':
    case 'yes_no': {
      let optionId: string | undefined
      if (id?.startsWith('opt:')) optionId = id.slice(4)
      else if (!id) {
        const n = numberIn(text)
        if (n !== null && Number.isInteger(n) && n >= 1 && n <= options.length) optionId = options[n - 1]!.id
        else optionId = options.find((o) => foldText(o.label) === foldText(text))?.id
        if (!optionId && question.type === 'yes_no') optionId = YES.has(word) ? 'yes' : NO.has(word) ? 'no' : undefined
      }
      if (!optionId || !options.some((o) => o.id === optionId)) return { invalid: 'Please choose one of the options.' }
      return { value: question.type === 'yes_no' ? optionId === 'yes' : optionId }
    }
    case 'scale': {
      const n = id?.startsWith('scale:') ? Number(id.slice(6)) : numberIn(text)
      return n !== null && scaleSteps(question).includes(n) ? { value: n } : { invalid: typedHint(question) }
    }
    case 'number': {
      const n = numberIn(text)
      return n === null ? { invalid: typedHint(question) } : { value: n }
    }
    case 'multiple_choice': {
      if (NONE.has(word)) return { value: [] }
      const parts = text.split(/[,;\n]+|\s+e\s+|\s+and\s+/).map((p) => p.trim()).filter(Boolean)
      const chosen: string[] = []
      for (const p of parts) {
        const n = numberIn(p)
        const found = n !== null && Number.isInteger(n) && n >= 1 && n <= options.length ? options[n - 1] : options.find((o) => foldText(o.label) === foldText(p))
        if (!found) return { invalid: `"${truncate(p, 30)}" is not one of the options. ${typedHint(question)}` }
        chosen.push(found.id)
      }
      return chosen.length ? { value: chosen } : { invalid: typedHint(question) }
    }
    case 'text':
      return text.trim() ? { value: text } : { invalid: typedHint(question) }
  }
}

function parseProfileReply(field: ProfileField, reply: InboundReply): string | number | null {
  const id = reply.listId ?? reply.buttonId
  if (field.type === 'choice') {
    if (id?.startsWith('opt:')) return id.slice(4)
    const found = field.options?.find((o, i) => foldText(o.label) === foldText(reply.text ?? '') || String(i + 1) === (reply.text ?? '').trim())
    return found?.id ?? null
  }
  if (field.type === 'number') return numberIn(reply.text ?? '')
  return reply.text?.trim() ? reply.text.trim() : null
}

// ---------------------------------------------------------------------------------------------------------------
// The node's two moments

/** What to ask now: the current question, the first missing profile field, or nothing (completed). */
function promptFor(ctx: SessionContext): FlowAction[] {
  const s = ctx.session
  if (s.currentQuestionId) {
    const question = ctx.compiled.byId.get(s.currentQuestionId)!
    const shown = visibleQuestions(ctx.compiled.definition.questions, ctx.answers)
    return [questionMessage(question, { index: shown.findIndex((x) => x.id === question.id) + 1, total: shown.length }, s.optionPage)]
  }
  const missing = missingProfileFields(ctx.compiled.definition.profileFields, s.demographics)[0]
  return missing ? [profileMessage(missing)] : []
}

async function finished(tx: Tx, ctx: SessionContext, messages: FlowAction[]): Promise<StepOutcome> {
  if (ctx.session.status !== 'completed') return { messages: [...messages, ...promptFor(ctx)], completed: null }
  const result = (await q.findResultOfSession(tx, ctx.session.id))!
  return { messages: [...messages, resultMessage(ctx, result)], completed: { band: result.band, totalScore: result.totalScore } }
}

async function assessmentByKey(tx: Tx, key: string) {
  const a = await q.findAssessmentByKey(tx, key)
  return a && a.status === 'published' ? a : null
}

/** The node is reached: the conversation's session of this assessment continues, or a new one starts. */
export async function startInConversation(tx: Tx, ref: ConversationRef, assessmentKey: string, extra: { linkId?: string | null; partnerId?: string | null } = {}): Promise<StepOutcome> {
  const a = await assessmentByKey(tx, assessmentKey)
  if (!a) return { messages: [], completed: null, unavailable: `assessment "${assessmentKey}" is not published` }
  const open = await q.lockOpenSessionOfConversation(tx, ref.conversationId, a.id)
  if (open) {
    const ctx = await sessionContext(tx, open)
    await resumeIfAbandoned(tx, ctx)
    ctx.session = await q.updateSession(tx, open.id, { pausedAt: null })
    return finished(tx, ctx, [{ type: 'send_text', text: `Welcome back to ${a.name}: let's pick up where you left off.` }])
  }
  // A conversation that came through a partner link (its first message carried ref:<code>): the session names the link.
  const via = extra.linkId ? { linkId: extra.linkId, partnerId: extra.partnerId ?? null } : await linkOfConversation(tx, ref.conversationId)
  const started = await startSession(tx, { assessmentId: a.id, channel: 'whatsapp', leadId: ref.leadId, conversationId: ref.conversationId, linkId: via?.linkId ?? null, partnerId: via?.partnerId ?? null })
  if (via?.linkId && via.partnerId) {
    await recordLinkSessionStarted(tx, {
      tenantId: started.session.tenantId, sessionId: started.session.id, linkId: via.linkId, partnerId: via.partnerId, channel: 'whatsapp',
      leadId: ref.leadId, conversationId: ref.conversationId, at: started.session.startedAt,
    })
  }
  const ctx = await sessionContext(tx, started.session)
  const intro = `${a.name}: ${visibleQuestions(ctx.compiled.definition.questions, new Map()).length} short questions. Reply *back* to change your last answer, *pause* to stop and continue later.`
  return finished(tx, ctx, [{ type: 'send_text', text: intro }])
}

/** A message while the run waits at the node: an answer, a page turn, back, pause, or a resume after a pause. */
export async function replyInConversation(tx: Tx, ref: ConversationRef, assessmentKey: string, reply: InboundReply): Promise<StepOutcome> {
  const a = await assessmentByKey(tx, assessmentKey)
  if (!a) return { messages: [], completed: null, unavailable: `assessment "${assessmentKey}" is not published` }
  const open = await q.lockOpenSessionOfConversation(tx, ref.conversationId, a.id)
  // No session open (erased meanwhile): start again rather than strand the lead.
  if (!open) return startInConversation(tx, ref, assessmentKey)
  let ctx = await sessionContext(tx, open)
  const word = foldWord(reply.text ?? '')
  // Back after a pause, or after the idle batch marked it abandoned: where they left off, asked again.
  if (ctx.session.pausedAt || ctx.session.status === 'abandoned') {
    await resumeIfAbandoned(tx, ctx)
    ctx.session = await q.updateSession(tx, open.id, { pausedAt: null })
    return finished(tx, ctx, [{ type: 'send_text', text: "Welcome back: here's where you left off." }])
  }
  if (!reply.buttonId && !reply.listId && PAUSE.has(word)) {
    await q.updateSession(tx, open.id, { pausedAt: 'now' })
    return { messages: [{ type: 'send_text', text: 'Paused. Send any message when you want to continue where you left off.' }], completed: null }
  }
  if (!reply.buttonId && !reply.listId && BACK.has(word)) {
    try {
      ctx = await goBack(tx, ctx)
      return finished(tx, ctx, [])
    } catch (err) {
      if (err instanceof AppError && err.code === 'CONFLICT') return finished(tx, ctx, [{ type: 'send_text', text: 'This is the first question.' }])
      throw err
    }
  }
  const s = ctx.session
  if (s.currentQuestionId) {
    const question = ctx.compiled.byId.get(s.currentQuestionId)!
    const parsed = parseReply(question, reply)
    if ('more' in parsed) {
      ctx.session = await q.updateSession(tx, s.id, { optionPage: s.optionPage + 1 })
      return finished(tx, ctx, [])
    }
    if ('invalid' in parsed) return finished(tx, ctx, [{ type: 'send_text', text: parsed.invalid }])
    try {
      const responseMs = Math.max(0, Date.now() - new Date(s.lastActivityAt).getTime())
      ctx = await answerQuestion(tx, ctx, { questionId: question.id, value: parsed.value, responseMs })
    } catch (err) {
      // The same rules as the web refuse it (too many choices, out of range): say why and ask again.
      if (err instanceof AppError && err.code === 'BAD_REQUEST') return finished(tx, ctx, [{ type: 'send_text', text: `${err.message.replace(/^invalid answer to [a-z0-9_]+: /, '')}.` }])
      throw err
    }
    return finished(tx, ctx, [])
  }
  const field = missingProfileFields(ctx.compiled.definition.profileFields, s.demographics)[0]
  if (field) {
    const value = parseProfileReply(field, reply)
    if (value === null) return finished(tx, ctx, [{ type: 'send_text', text: 'Sorry, I did not get that.' }])
    try {
      ctx = await saveProfile(tx, ctx, { [field.key]: value })
    } catch (err) {
      if (err instanceof AppError && err.code === 'BAD_REQUEST') return finished(tx, ctx, [{ type: 'send_text', text: `${field.label}: ${(err.details as { message: string }[])[0]?.message ?? 'not valid'}.` }])
      throw err
    }
  }
  return finished(tx, ctx, [])
}
