import { describe, expect, it } from 'vitest'
import { checkDivisions, type Domain, valueRange } from './analysis.js'
import { DivisionByZero, evaluate, ExpressionError, MAX_DEPTH, parseExpression, references, roundTo } from './expression.js'

const values: Record<string, number> = { 'q.sleep': 7, 'q.stress': 3, 'q.zero': 0, 'c.body': 40, 'c.mind': 60, 'f.bmi': 24.5 }
const run = (src: string) => evaluate(parseExpression(src), (scope, id) => values[`${scope}.${id}`] ?? 0)

describe('the formula language evaluates', () => {
  it.each([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['12 / 3 / 2', 2],
    ['-q.sleep + 10', 3],
    ['- -2', 2],
    ['q.sleep * 2 + q.stress', 17],
    ['c.body * 0.4 + c.mind * 0.6', 52],
    ['f.bmi', 24.5],
    ['min(q.sleep, q.stress, 5)', 3],
    ['max(1, 2, 3)', 3],
    ['round(2.5)', 3],
    ['round(-2.5)', -3],
    ['round(1.005, 2)', 1.01],
    ['round(10 / 3, 2)', 3.33],
    ['clamp(120, 0, 100)', 100],
    ['clamp(-5, 0, 100)', 0],
    ['clamp(50, 100, 0)', 50],
    ['abs(-4)', 4],
    ['if q.sleep >= 7 then 10 else 0', 10],
    ['if q.sleep < 7 then 10 else if q.stress > 2 then 5 else 1', 5],
    ['q.sleep > 5 and q.stress < 2', 0],
    ['q.sleep > 5 or q.stress < 2', 1],
    ['not q.zero', 1],
    ['q.sleep == 7', 1],
    ['q.sleep != 7', 0],
    ['q.unknown + 1', 1],
    ['1.5e2', 150],
    ['.5 * 4', 2],
    ['q.sleep > 5 && !(q.stress > 5) || q.zero', 1],
  ])('%s = %d', (src, expected) => {
    expect(run(src)).toBe(expected)
  })

  it('divides by zero only as a thrown DivisionByZero at the division', () => {
    expect(() => run('q.sleep / q.zero')).toThrow(DivisionByZero)
    // the untaken branch is never evaluated
    expect(run('if q.zero != 0 then 1 / q.zero else 0')).toBe(0)
  })

  it('lists references in order', () => {
    expect(references(parseExpression('q.a + c.b * f.c - q.a')).map((r) => `${r.scope}.${r.id}`)).toEqual(['q.a', 'c.b', 'f.c', 'q.a'])
  })

  it('rounds half away from zero without binary artefacts', () => {
    expect([roundTo(0.125, 2), roundTo(-0.125, 2), roundTo(2.675, 2), roundTo(1e-7, 4)]).toEqual([0.13, -0.13, 2.68, 0])
  })
})

describe('the formula language refuses, with the position', () => {
  it.each([
    ['', 'ended too early'],
    ['1 +', 'ended too early'],
    ['(1 + 2', 'expected ")"'],
    ['1 2', 'unexpected'],
    ['q.', 'must be followed by'],
    ['foo(1)', 'unknown name "foo"'],
    ['eval(1)', 'unknown name "eval"'],
    ['constructor', 'unknown name "constructor"'],
    ['q.a.b', 'unexpected character'],
    ['1 < 2 < 3', 'do not chain'],
    ['min()', 'unexpected ")"'],
    ['clamp(1, 2)', 'clamp takes 3 arguments'],
    ['round(1, q.a)', 'digits must be a whole number'],
    ['1 ; 2', 'unexpected character ";"'],
    ['"text"', 'unexpected character'],
    ['if 1 then 2', 'expected "else"'],
    ['Q.a', 'unexpected character'],
    ['1e999', 'out of range'],
  ])('%j', (src, message) => {
    expect(() => parseExpression(src)).toThrow(ExpressionError)
    expect(() => parseExpression(src)).toThrow(message)
  })

  it('bounds length, tokens and depth', () => {
    expect(() => parseExpression('1+'.repeat(1001) + '1')).toThrow(/at most/)
    expect(() => parseExpression('('.repeat(MAX_DEPTH + 1) + '1' + ')'.repeat(MAX_DEPTH + 1))).toThrow(/nests at most/)
    expect(() => parseExpression('-'.repeat(MAX_DEPTH + 5) + '1')).toThrow(/nests at most/)
  })
})

const set = (...values: number[]): Domain => ({ kind: 'set', values })
const range = (lo: number, hi: number): Domain => ({ kind: 'range', lo, hi })

describe('publish-time analysis finds every division that can be by zero', () => {
  const domains = new Map<string, Domain>([
    ['a', set(1, 2, 3, 4, 5)],
    ['b', set(1, 2, 3, 4, 5)],
    ['opt', set(0, 1, 2)],
    ['neg', set(-2, -1, 1, 2)],
    ['w', range(30, 200)],
    ['h', range(1.2, 2.2)],
    ['r', range(0, 100)],
    ['many', { kind: 'set', values: Array.from({ length: 400 }, (_, i) => i + 1) }],
  ])
  it.each([
    // [formula, safe?, reason or method]
    ['q.a / q.b', true, 'enumeration'],
    ['10 / 0', false, 'divides-by-zero'],
    ['10 / (q.a - q.a)', false, 'divides-by-zero'],
    ['10 / (q.a - q.b)', false, 'divides-by-zero'],
    ['10 / (q.a + q.b)', true, 'enumeration'],
    ['10 / q.opt', false, 'divides-by-zero'],
    ['if q.opt > 0 then 10 / q.opt else 0', true, 'enumeration'],
    ['10 / max(q.opt, 1)', true, 'enumeration'],
    ['10 / (q.neg + 1)', false, 'divides-by-zero'],
    ['10 / (q.a * q.a - 2 * q.a + 2)', true, 'enumeration'],
    ['q.w / (q.h * q.h)', true, 'intervals'],
    ['q.w / (q.h - 1.5)', false, 'divides-by-zero'],
    ['100 / q.r', false, 'divides-by-zero'],
    ['if q.r > 0 then 100 / q.r else 0', true, 'intervals'],
    ['10 / (q.many * q.many * q.many - q.many)', false, 'divides-by-zero'],
    ['q.w * 2', true, 'no-division'],
    ['100 / (q.r - 33.333)', false, 'divides-by-zero'],
    // sqrt(2) is no answer of 6 decimals: bisection narrows to the two neighbours and samples both
    ['100 / (q.r * q.r - 2)', true, 'intervals'],
    // a curve of near-zeros across two ranges: the budget runs out, refused as unproven (with advice)
    ['100 / (q.r * q.r + q.h * q.h - 2.5)', false, 'unproven'],
  ])('%s → safe %s (%s)', (src, safe, how) => {
    const finding = checkDivisions(parseExpression(src), domains)
    expect(finding.safe).toBe(safe)
    expect(finding.safe ? finding.method : finding.reason).toBe(how)
  })

  it('names the answers that divide by zero', () => {
    const finding = checkDivisions(parseExpression('10 / (q.a - 3)'), domains)
    expect(finding).toMatchObject({ safe: false, reason: 'divides-by-zero', witness: { a: 3 } })
  })

  it('computes the range a formula can take', () => {
    expect(valueRange(parseExpression('q.a + q.b'), domains)).toEqual({ lo: 2, hi: 10 })
    expect(valueRange(parseExpression('q.w / (q.h * q.h)'), domains)).toMatchObject({ lo: expect.any(Number), hi: expect.any(Number) })
  })
})
