import { describe, expect, it } from 'vitest'
import { compileDefinition, normalizeAnswer, visibleQuestions } from './definition.js'
import { Definition, type DefinitionInput } from './schemas.js'
import { HEALTH_DEFINITION, WEALTH_DEFINITION } from './sample-definitions.js'
import { score } from './scoring.js'

const compile = (d: DefinitionInput) => {
  const r = compileDefinition(Definition.parse(d))
  if (!r.compiled) throw new Error(JSON.stringify(r.issues))
  return r.compiled
}
const answers = (o: Record<string, unknown>) => new Map(Object.entries(o)) as Map<string, never>

const healthy = {
  sleep_hours: 'h7_8', sleep_quality: 5, exercise_days: 'd5', activities: ['running', 'cycling', 'swimming', 'strength', 'team', 'martial'], smoker: false,
  alcohol: 'never', fruit_veg: 'p6', water: 'w7', stress: 1, mood: 'great', weight_kg: 70, height_cm: 175,
}

describe('scoring the health assessment', () => {
  const health = compile(HEALTH_DEFINITION)
  it.each([
    ['the best answers', healthy, { totalScore: 100, band: 'excellent', categoryScores: { sleep: 100, activity: 100, nutrition: 100, habits: 100, mind: 100 } }],
    ['a smoker of 10 a day with a BMI of 25.3', { ...healthy, smoker: true, cigarettes: 10, weight_kg: 82, height_cm: 180 }, { totalScore: 78.5, band: 'good', formulaValues: { bmi: 25.3, bmi_adjustment: -4, smoking_penalty: 10 } }],
    ['cigarettes counted only while shown (a non-smoker with a stale answer)', { ...healthy, smoker: false, cigarettes: 40 }, { totalScore: 100, formulaValues: { smoking_penalty: 0 } }],
    ['the worst answers, clamped at 0', {
      sleep_hours: 'lt5', sleep_quality: 1, exercise_days: 'd0', smoker: true, cigarettes: 60, alcohol: 'daily', fruit_veg: 'p0_1', water: 'w1_3', stress: 10, mood: 'low', weight_kg: 130, height_cm: 160,
    }, { totalScore: 0, band: 'at_risk', categoryScores: { sleep: 0, activity: 0, habits: 0, mind: 0 } }],
    ['a middle case', { ...healthy, sleep_hours: 'h5_6', sleep_quality: 3, exercise_days: 'd1_2', activities: ['walking'], alcohol: 'weekly', fruit_veg: 'p2_3', water: 'w4_6', stress: 6, mood: 'ok' },
      { categoryScores: { sleep: 50, activity: 22.7273, nutrition: 50, habits: 75, mind: 40 }, band: 'fair' }],
  ])('%s', (_name, given, expected) => {
    expect(score(health, answers(given))).toMatchObject(expected)
  })

  it('adds the category advice below its threshold', () => {
    const r = score(health, answers({ ...healthy, exercise_days: 'd0', activities: [], stress: 9, mood: 'low' }))
    expect(r.recommendations).toEqual(expect.arrayContaining(['Start with a brisk 20-minute walk three times a week.', expect.stringContaining('Stress is high')]))
  })

  it('is a pure function: the same answers in any order give the same result', () => {
    const a = score(health, answers(healthy))
    const b = score(health, new Map([...answers(healthy)].reverse()))
    expect(b).toEqual(a)
  })
})

describe('scoring the wealth assessment', () => {
  const wealth = compile(WEALTH_DEFINITION)
  const base = { monthly_income: 4000, monthly_expenses: 2500, savings_rate: 's10_20', emergency_months: 4, high_interest_debt: false, budget: 'always', retirement: true, investments: ['funds', 'stocks'], risk: 3, insurance: ['health', 'life'] }
  it.each([
    ['a saver', base, { formulaValues: { expense_ratio: 0.63, cushion: 6.6667 }, band: 'stable' }],
    ['no income at all: the guarded ratio, not a division by zero', { ...base, monthly_income: 0 }, { formulaValues: { expense_ratio: 2500 } }],
    ['debt shown and scored', { ...base, high_interest_debt: true, debt_share: 'gt50' }, { categoryScores: { debt: 0 } }],
  ])('%s', (_name, given, expected) => {
    expect(score(wealth, answers(given))).toMatchObject(expected)
  })
})

describe('answers are checked against their question', () => {
  const health = compile(HEALTH_DEFINITION)
  const q = (id: string) => health.byId.get(id)!
  it.each([
    ['sleep_hours', 'h7_8', true],
    ['sleep_hours', 'h10', false],
    ['sleep_hours', ['h7_8'], false],
    ['activities', ['running', 'walking'], true],
    ['activities', ['running', 'flying'], false],
    ['activities', ['walking', 'running', 'cycling', 'swimming', 'strength', 'yoga', 'team'], false],
    ['activities', null, true],
    ['smoker', true, true],
    ['smoker', 'yes', true],
    ['smoker', 'maybe', false],
    ['sleep_quality', 3, true],
    ['sleep_quality', 3.5, false],
    ['sleep_quality', 6, false],
    ['weight_kg', 72.5, true],
    ['weight_kg', 20, false],
    ['weight_kg', 72.1234567, false],
    ['cigarettes', 2.5, false],
    ['goals', 'x'.repeat(501), false],
    ['mood', null, false],
  ])('%s ← %j: %s', (id, value, ok) => {
    expect(normalizeAnswer(q(id), value as never).ok).toBe(ok)
  })

  it('stores multiple choices in the question\'s order, once each', () => {
    expect(normalizeAnswer(q('activities'), ['yoga', 'walking', 'yoga'])).toEqual({ ok: true, value: ['walking', 'yoga'] })
  })

  it('shows a conditional question only when its condition holds', () => {
    const ids = (a: Record<string, unknown>) => visibleQuestions(health.definition.questions, answers(a)).map((x) => x.id)
    expect(ids({ smoker: true })).toContain('cigarettes')
    expect(ids({ smoker: false })).not.toContain('cigarettes')
    expect(ids({})).not.toContain('cigarettes')
  })
})

describe('publishing refuses a rubric that could fail at scoring time', () => {
  const small = (rubric: Partial<DefinitionInput['rubric']>, extra: Partial<DefinitionInput> = {}): DefinitionInput => ({
    questions: [
      { id: 'a', type: 'single_choice', text: 'A?', options: [{ id: 'x', label: 'X' }, { id: 'y', label: 'Y' }] },
      { id: 'n', type: 'number', text: 'N?', min: 0, max: 10 },
      { id: 'm', type: 'number', text: 'M?', min: 1, max: 10, required: false },
      { id: 't', type: 'text', text: 'T?', required: false },
    ],
    rubric: { points: { a: { x: 0, y: 5 } }, bands: [{ key: 'low', label: 'Low', min: 0 }], ...rubric },
    ...extra,
  })
  const issuesOf = (d: DefinitionInput) => compileDefinition(Definition.parse(d)).issues.map((i) => `${i.path.join('.')}: ${i.message}`)
  it.each([
    ['an unknown question', { total: 'q.nope + 1' }, 'rubric.total: unknown question q.nope'],
    ['a text question', { total: 'q.t * 2' }, 'rubric.total: q.t is a text question'],
    ['an unknown category', { total: 'c.body' }, 'rubric.total: unknown category c.body'],
    ['a later formula', { formulas: [{ key: 'f1', expr: 'f.f2' }, { key: 'f2', expr: '1' }] }, 'rubric.formulas.0.expr: f.f2 is not an earlier formula'],
    ['itself', { formulas: [{ key: 'f1', expr: 'f.f1 + 1' }] }, 'rubric.formulas.0.expr: f.f1 is not an earlier formula'],
    ['a literal zero divisor', { total: 'q.n / 0' }, 'rubric.total: can divide by zero (the division at character 5)'],
    ['an option worth 0', { total: '10 / q.a' }, 'rubric.total: can divide by zero when q.a = 0'],
    ['a number that may be 0', { total: '10 / q.n' }, 'rubric.total: can divide by zero when q.n = 0'],
    ['an optional number (0 when skipped)', { total: '10 / q.m' }, 'rubric.total: can divide by zero when q.m = 0'],
    ['a zero through a formula', { formulas: [{ key: 'd', expr: 'q.n - 5' }], total: '1 / f.d' }, 'rubric.total: can divide by zero when q.n = 5'],
    ['a syntax error', { total: 'q.n +' }, 'rubric.total: the formula ended too early'],
    ['points for an unknown option', { points: { a: { z: 1 } } }, 'rubric.points.a.z: "z" is not an option of a'],
    ['bands out of order', { bands: [{ key: 'b', label: 'B', min: 10 }, { key: 'a', label: 'A', min: 5 }] }, 'rubric.bands.1.min: bands are listed by increasing min'],
  ])('%s', (_name, rubric, expected) => {
    expect(issuesOf(small(rubric as never))).toContainEqual(expect.stringContaining(expected))
  })

  it('accepts a guarded division', () => {
    expect(issuesOf(small({ total: 'if q.n > 0 then 10 / q.n else 0' }))).toEqual([])
    expect(issuesOf(small({ total: '10 / max(q.n, 1)' }))).toEqual([])
  })

  it('refuses conditions on later or unknown questions and unknown options', () => {
    const d = small({}, {})
    d.questions[0] = { ...d.questions[0]!, showIf: { question: 'n', gt: 1 } } as never
    d.questions[1] = { ...d.questions[1]!, showIf: { question: 'a', equals: 'nope' } } as never
    expect(issuesOf(d)).toEqual(expect.arrayContaining([
      'questions.0.showIf.question: "n" is not an earlier question',
      'questions.1.showIf: "nope" is not an option of a',
    ]))
  })
})
