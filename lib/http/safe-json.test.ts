import { describe, expect, it } from 'vitest'
import { findUnstorableText, MAX_BODY_DEPTH, MAX_REPORTED, unstorableTextError } from './safe-json.js'

const NUL = 'contains a NUL character (\\u0000), which cannot be stored'
const LONE = 'contains a lone surrogate, which is not valid Unicode'

/** `levels` arrays inside each other around 1: [[[1]]] is three levels. */
const nestedArrays = (levels: number) => {
  let v: unknown = 1
  for (let i = 0; i < levels; i++) v = [v]
  return v
}

describe('findUnstorableText', () => {
  it('accepts ordinary text, emoji, valid surrogate pairs, accents and every other control character', () => {
    const value = {
      name: 'Joana Conceição', note: 'ok 😀👍🏽 𝄞 \ud83d\ude00', cjk: '漢字', controls: '\u0001\t\n\u001f\u007f', empty: '',
      nested: { list: ['a', '😀', 1, true, null, { deep: 'fine' }] }, n: 3.5,
    }
    expect(findUnstorableText(value)).toEqual([])
    expect(findUnstorableText(JSON.parse(JSON.stringify(value)))).toEqual([])
  })

  it('names a NUL in a value by its dotted path, array indexes included', () => {
    expect(findUnstorableText({ name: 'Mallory\u0000' })).toEqual([{ path: 'name', reason: NUL }])
    expect(findUnstorableText({ answers: { tags: ['ok', 'bad\u0000'] } })).toEqual([{ path: 'answers.tags.1', reason: NUL }])
    expect(findUnstorableText(['\u0000'])).toEqual([{ path: '0', reason: NUL }])
  })

  it('finds a NUL that arrives as a JSON escape', () => {
    expect(findUnstorableText(JSON.parse('{"note":"a\\u0000b"}'))).toEqual([{ path: 'note', reason: NUL }])
  })

  it.each([
    ['a lone high surrogate', 'x\ud800'],
    ['a lone high surrogate followed by a letter', '\ud800x'],
    ['a lone low surrogate first', '\udc00x'],
    ['a low surrogate after a complete pair', '😀\udc00'],
    ['two high surrogates', '\ud83d\ud83d\ude00'],
    ['a reversed pair', '\ude00\ud83d'],
  ])('refuses %s', (_, text) => {
    expect(findUnstorableText({ text })).toEqual([{ path: 'text', reason: LONE }])
  })

  it('refuses a lone surrogate that arrives as a JSON escape', () => {
    expect(findUnstorableText(JSON.parse('{"a":"\\ud800"}'))).toEqual([{ path: 'a', reason: LONE }])
    expect(findUnstorableText(JSON.parse('{"a":"\\ud83d\\ude00"}'))).toEqual([])
  })

  it('refuses bad keys, showing them escaped so the reported path is clean text', () => {
    expect(findUnstorableText({ 'na\u0000me': 'x' })).toEqual([{ path: 'na\\u0000me', reason: `has a field name that ${NUL}` }])
    expect(findUnstorableText({ outer: { '\ud800': 1 } })).toEqual([{ path: 'outer.\\ud800', reason: `has a field name that ${LONE}` }])
    expect(findUnstorableText({ '😀': 'emoji keys are fine' })).toEqual([])
  })

  it('checks a bare string, and leaves raw bytes, numbers and other objects alone', () => {
    expect(findUnstorableText('a\u0000')).toEqual([{ path: '', reason: NUL }])
    expect(findUnstorableText(Buffer.from('a\u0000'))).toEqual([])
    expect(findUnstorableText(new Date())).toEqual([])
    expect(findUnstorableText(undefined)).toEqual([])
    expect(findUnstorableText(42)).toEqual([])
  })

  it('looks into objects without a prototype (how form bodies are parsed)', () => {
    const body = Object.assign(Object.create(null) as Record<string, unknown>, { name: ['ok', '\u0000'] })
    expect(findUnstorableText(body)).toEqual([{ path: 'name.1', reason: NUL }])
  })

  it(`accepts ${MAX_BODY_DEPTH} levels of nesting and refuses one more, without recursing into the rest`, () => {
    expect(findUnstorableText(nestedArrays(MAX_BODY_DEPTH))).toEqual([])
    const [tooDeep, ...rest] = findUnstorableText(nestedArrays(MAX_BODY_DEPTH + 1))
    expect(rest).toEqual([])
    expect(tooDeep).toEqual({ path: Array(MAX_BODY_DEPTH).fill('0').join('.'), reason: `is nested deeper than ${MAX_BODY_DEPTH} levels` })
    // 20,000 levels, as an attacker sent: one finding, no stack overflow.
    expect(findUnstorableText(nestedArrays(20_000))).toHaveLength(1)
  })

  it('counts objects and arrays alike, and takes a smaller limit', () => {
    expect(findUnstorableText({ a: [{ b: [1] }] }, { maxDepth: 4 })).toEqual([])
    expect(findUnstorableText({ a: [{ b: [1] }] }, { maxDepth: 3 })).toEqual([{ path: 'a.0.b', reason: 'is nested deeper than 3 levels' }])
  })

  it(`reports the first ${MAX_REPORTED} problems, in order, and stops`, () => {
    const value = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, '\u0000']))
    expect(findUnstorableText(value).map((p) => p.path)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4'])
    expect(findUnstorableText({ a: ['\u0000', '\ud800'], b: '\u0000' }, { maxFindings: 2 }).map((p) => p.path)).toEqual(['a.0', 'a.1'])
  })
})

describe('unstorableTextError', () => {
  it('is the product 400, naming each field with where it was', () => {
    const err = unstorableTextError('body', [{ path: 'name', reason: NUL }, { path: 'tags.0', reason: LONE }])
    expect(err).toMatchObject({
      code: 'BAD_REQUEST', status: 400,
      message: `invalid body.name: ${NUL} (and body.tags.0)`,
      details: [{ in: 'body', path: 'name', message: NUL }, { in: 'body', path: 'tags.0', message: LONE }],
    })
    expect(unstorableTextError('querystring', [{ path: 'q', reason: NUL }]).message).toBe(`invalid querystring.q: ${NUL}`)
  })
})

describe('findUnstorableText on what the router hands over', () => {
  it('looks into route params, whose prototype is a prototype-less class', () => {
    // How find-my-way builds them.
    const NullObject = function () {} as unknown as new () => object
    NullObject.prototype = Object.create(null)
    const params = Object.assign(new NullObject(), { id: 'a\u0000' })
    expect(findUnstorableText(params)).toEqual([{ path: 'id', reason: NUL }])
  })
})
