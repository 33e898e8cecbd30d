import { describe, expect, it } from 'vitest'
import { fastAnswerBody, fastTokenParams } from './answer-fast-path.js'
import { AnswerBody, SessionTokenParams as TokenParams } from './schemas.js'

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T
const base = () => ({ questionId: 'sleep_hours', value: 'h7_8', responseMs: 3200 }) as Record<string, unknown>

/** Each a change to a valid answer body: valid or not, the fast path and zod must agree. */
const bodies: [string, Record<string, unknown>][] = [
  ['a choice', base()],
  ['no responseMs', { questionId: 'sleep_hours', value: 'h7_8' }],
  ['a number', { ...base(), value: 72.5 }],
  ['a negative number', { ...base(), value: -3 }],
  ['zero', { ...base(), value: 0 }],
  ['a boolean', { ...base(), value: false }],
  ['null (a skipped optional question)', { ...base(), value: null }],
  ['a list', { ...base(), value: ['walking', 'cycling'] }],
  ['an empty list', { ...base(), value: [] }],
  ['a list of 30', { ...base(), value: Array.from({ length: 30 }, (_, i) => `o${i}`) }],
  ['a list of 31', { ...base(), value: Array.from({ length: 31 }, (_, i) => `o${i}`) }],
  ['a list with a long option', { ...base(), value: ['a'.repeat(65)] }],
  ['a list with an option of 64', { ...base(), value: ['a'.repeat(64)] }],
  ['a list with a number', { ...base(), value: ['a', 1] }],
  ['a list with null', { ...base(), value: [null] }],
  ['text of 2,000', { ...base(), value: 'x'.repeat(2000) }],
  ['text of 2,001', { ...base(), value: 'x'.repeat(2001) }],
  ['empty text', { ...base(), value: '' }],
  ['text with emoji', { ...base(), value: 'dormir melhor 😴' }],
  ['an object value', { ...base(), value: { a: 1 } }],
  ['no value', { questionId: 'sleep_hours', responseMs: 1 }],
  ['no questionId', { value: 'h7_8' }],
  ['questionId a number', { ...base(), questionId: 7 }],
  ['questionId uppercase', { ...base(), questionId: 'Sleep' }],
  ['questionId starting with a digit', { ...base(), questionId: '1sleep' }],
  ['questionId of 64', { ...base(), questionId: 'q'.repeat(64) }],
  ['questionId of 65', { ...base(), questionId: 'q'.repeat(65) }],
  ['questionId empty', { ...base(), questionId: '' }],
  ['responseMs zero', { ...base(), responseMs: 0 }],
  ['responseMs negative', { ...base(), responseMs: -1 }],
  ['responseMs a fraction', { ...base(), responseMs: 1.5 }],
  ['responseMs a day', { ...base(), responseMs: 24 * 3600 * 1000 }],
  ['responseMs over a day', { ...base(), responseMs: 24 * 3600 * 1000 + 1 }],
  ['responseMs a string', { ...base(), responseMs: '1200' }],
  ['responseMs null', { ...base(), responseMs: null }],
  ['an unknown key (strict: refused)', { ...base(), extra: 1 }],
]

describe('fastAnswerBody', () => {
  it.each(bodies)('agrees with zod on %s', (_, body) => {
    const fast = fastAnswerBody(clone(body))
    const zod = AnswerBody.safeParse(clone(body))
    // Whatever it takes, zod takes, with the same value; whatever it leaves, zod decides (and reports).
    if (fast !== null) {
      expect(zod.success).toBe(true)
      expect(fast).toStrictEqual(zod.data)
      expect(Object.keys(fast)).toEqual(Object.keys(zod.data!))
    }
    // Every valid body takes the fast path (else it would silently stop being the path).
    if (zod.success) expect(fast).not.toBeNull()
  })

  it.each([['not an object', 'x'], ['null', null], ['an array', [base()]], ['a number', 3]])('leaves %s to zod', (_, body) => {
    expect(fastAnswerBody(body)).toBeNull()
  })

  it('does not hand back the caller\'s list', () => {
    const body = { ...base(), value: ['walking'] }
    const fast = fastAnswerBody(body)!
    expect(fast.value).toEqual(['walking'])
    expect(fast.value).not.toBe(body.value)
  })
})

describe('fastTokenParams', () => {
  it.each([['a token', 'ast_x'], ['empty', ''], ['200 characters', 't'.repeat(200)], ['201 characters', 't'.repeat(201)]])('agrees with zod on %s', (_, token) => {
    const fast = fastTokenParams({ token })
    const zod = TokenParams.safeParse({ token })
    expect(fast).toEqual(zod.success ? zod.data : null)
  })
  it('leaves a missing token to zod', () => expect(fastTokenParams({})).toBeNull())
})
