import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { compileDefinition, normalizeAnswer } from './definition.js'
import { HEALTH_DEFINITION, WEALTH_DEFINITION } from './sample-definitions.js'
import { Definition, SessionStateView } from './schemas.js'
import { type SessionContext, viewOf } from './service.js'
import { fastStateJson } from './state-json.js'

/** What the route's zod serializer writes (fastify-type-provider-zod: encode, then JSON.stringify). */
const zodJson = (state: unknown) => {
  const r = SessionStateView.safeEncode(state as SessionStateView)
  return r.success ? JSON.stringify(r.data) : null
}

const compiledOf = (input: unknown) => compileDefinition(Definition.parse(input)).compiled!

/** Every state a participant sees, answering in order with a sample answer per question, going back included. */
function statesOf(input: unknown): unknown[] {
  const compiled = compiledOf(input)
  const ctx = {
    session: { id: randomUUID(), status: 'in_progress', currentQuestionId: compiled.definition.questions[0]!.id, demographics: { age: 41, country: 'PT' } },
    compiled, answers: new Map(), revisions: new Map(), assessment: { key: 'health_check', name: 'Health check', type: 'health' }, version: 3,
  } as unknown as SessionContext
  const states: unknown[] = [viewOf(ctx, null)]
  for (const q of compiled.definition.questions) {
    const sample = q.type === 'multiple_choice' ? [q.options![0]!.id] : q.type === 'single_choice' ? q.options![0]!.id : q.type === 'yes_no' ? true
      : q.type === 'text' ? 'dormir melhor 😴' : q.type === 'scale' ? 3 : (q.min ?? 0) + 1
    const v = normalizeAnswer(q, sample)
    if (!v.ok) throw new Error(`${q.id}: ${v.message}`)
    ctx.answers.set(q.id, v.value)
    ctx.session = { ...ctx.session, currentQuestionId: q.id } // going back to it: its answer is shown
    states.push(viewOf(ctx, null))
  }
  ctx.session = { ...ctx.session, currentQuestionId: null, status: 'completed' }
  states.push(viewOf(ctx, {
    id: randomUUID(), totalScore: 71.25, categoryScores: { sleep: 80, activity: 62.5 }, formulaValues: { bmi: 22.9 }, band: 'good', bandLabel: 'Good',
    recommendations: ['Keep it up.'], rubricVersion: 2, computedAt: new Date('2026-12-02T04:00:00.123Z'),
  } as never))
  ctx.session = { ...ctx.session, status: 'in_progress', demographics: {} } // a required profile field missing
  states.push(viewOf(ctx, null))
  return states
}

const clone = <T>(v: T): T => structuredClone(v)

describe('fastStateJson', () => {
  it.each([['health', HEALTH_DEFINITION], ['wealth', WEALTH_DEFINITION]])('writes every %s state as zod does, byte for byte', (_, input) => {
    const states = statesOf(input)
    expect(states.length).toBeGreaterThan(10)
    for (const s of states) {
      const fast = fastStateJson(s)
      expect(fast).not.toBeNull() // viewOf's states all take the fast path
      expect(fast).toBe(zodJson(s))
    }
  })

  const mutations: [string, (s: Record<string, any>) => void][] = [
    ['a bad session id', (s) => (s.sessionId = 'x')],
    ['an unknown key (zod drops it)', (s) => (s.extra = 1)],
    ['keys out of order', (s) => { const { sessionId } = s; delete s.sessionId; s.sessionId = sessionId }],
    ['a missing key', (s) => delete s.canGoBack],
    ['progress a fraction', (s) => (s.progress = 1.5)],
    ['progress NaN', (s) => (s.progress = Number.NaN)],
    ['an unknown status', (s) => (s.status = 'paused')],
    ['an unknown assessment type', (s) => (s.assessment.type = 'other')],
    ['a question of an unknown type', (s) => (s.question.type = 'slider')],
    ['a question with an unknown key', (s) => (s.question.extra = 1)],
    ['a question with help after required', (s) => { const { required } = s.question; delete s.question.required; s.question.help = 'h'; s.question.required = required }],
    ['an option with a number label', (s) => (s.question.options = [{ id: 'a', label: 1 }])],
    ['a current answer of an object', (s) => (s.currentAnswer = { a: 1 })],
    ['a current answer after canGoBack', (s) => { delete s.canGoBack; s.currentAnswer = 'x'; s.canGoBack = true }],
    ['demographics an array', (s) => (s.demographics = [])],
    ['a result with a bad date', (s) => (s.result = { ...s.result, computedAt: new Date(Number.NaN) })],
    ['a result with a string score', (s) => (s.result = { ...s.result, totalScore: '7' })],
    ['a result with a date as text', (s) => (s.result = { ...s.result, computedAt: '2026-12-02T04:00:00.000Z' })],
  ]
  it.each(mutations)('leaves %s to zod (or agrees with it)', (_, mutate) => {
    const states = statesOf(HEALTH_DEFINITION)
    const s = clone(states.find((x) => (x as { question: unknown }).question !== null && (x as { currentAnswer?: unknown }).currentAnswer === undefined)) as Record<string, any>
    s.result = clone((states.at(-2) as { result: unknown }).result)
    expect(fastStateJson(s)).toBe(zodJson(s)) // the state before the change takes the fast path
    mutate(s)
    const fast = fastStateJson(s)
    if (fast !== null) expect(fast).toBe(zodJson(s))
    expect(fast).toBeNull()
  })
})
