import { describe, expect, it } from 'vitest'
import { Definition } from '../schemas.js'
import { HEALTH_DEFINITION } from '../sample-definitions.js'
import { canonicalJson, patternHash, patternOf, type PatternSource } from './pattern.js'
import { promptOf, ruleBasedProvider } from './providers.js'

const def = Definition.parse(HEALTH_DEFINITION)
const source = (answers: Record<string, unknown>, demographics: Record<string, string | number> = { age: 41, gender: 'female', country: 'Portugal' }): PatternSource => ({
  assessment: { type: 'health', name: 'Health check' }, versionId: 'v1', rubricVersion: 1,
  questions: def.questions, categories: def.categories, rubric: def.rubric, profileFields: def.profileFields,
  answers: answers as never, demographics,
  result: { band: 'good', bandLabel: 'Good', categoryScores: { sleep: 80, activity: 20 }, recommendations: ['Keep it steady.'] },
})
const provider = { name: 'openai-compatible', model: 'gpt-test' }
const base = { sleep_hours: 'h7_8', smoker: false, weight_kg: 72.5, goals: 'Call Ana at +351 912 345 678', mood: 'good' }

describe('the pattern of a result: what the analysis may depend on, banded', () => {
  it.each([
    ['another age in the same decade', { ...base }, { age: 47, gender: 'female', country: 'Portugal' }, true],
    ['another free text answer', { ...base, goals: 'something else entirely' }, undefined, true],
    ['another country (a text field: never in the pattern)', { ...base }, { age: 41, gender: 'female', country: 'Brazil' }, true],
    ['a weight in the same fifth of its range', { ...base, weight_kg: 60 }, undefined, true],
    ['another decade', { ...base }, { age: 52, gender: 'female', country: 'Portugal' }, false],
    ['another gender', { ...base }, { age: 41, gender: 'male', country: 'Portugal' }, false],
    ['a smoker', { ...base, smoker: true }, undefined, false],
    ['a weight in another fifth', { ...base, weight_kg: 130 }, undefined, false],
  ])('%s → same pattern: %s', (_name, answers, demographics, same) => {
    const a = patternHash(patternOf(source(base), provider))
    const b = patternHash(patternOf(source(answers, demographics), provider))
    expect(a.equals(b)).toBe(same)
  })

  it('changes with the provider, the model and the detail asked for', () => {
    const a = patternHash(patternOf(source(base), provider))
    expect(a.equals(patternHash(patternOf(source(base), { ...provider, model: 'other' })))).toBe(false)
    expect(a.equals(patternHash(patternOf(source(base), provider, 'categories')))).toBe(false)
    expect(patternOf(source(base), provider, 'categories').answers).toEqual([])
  })

  it('puts no free text, raw number or text profile field in the prompt', () => {
    const prompt = promptOf(patternOf(source(base), provider))
    const text = `${prompt.system}\n${prompt.user}`
    for (const s of ['Ana', '912', '72.5', 'Portugal', '41']) expect(text).not.toContain(s)
    expect(text).toContain('40-49')
    expect(text).toContain('Result band: Good.')
  })

  it('hashes canonically (key order does not matter) and the rules write the same text for the same pattern', async () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe(canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }))
    const p = patternOf(source(base), provider)
    const [x, y] = await Promise.all([ruleBasedProvider.analyze(p), ruleBasedProvider.analyze(structuredClone(p))])
    expect(x).toEqual(y)
    expect(x.narrative).toContain('"Good" band')
    expect(x.recommendations).toEqual(['Keep it steady.'])
  })
})
