import { describe, expect, it } from 'vitest'
import { unstorableReason } from './inbox.js'

const check = (text: string) => unstorableReason(text, JSON.parse(text))

describe('unstorableReason: what PostgreSQL cannot store as jsonb', () => {
  it.each([
    ['a NUL in a value', '{"a":{"b":["x","y\\u0000z"]}}', 'a NUL character (\\u0000) in the value at $.a.b[1]'],
    ['a NUL in a key', '{"a":{"k\\u0000":1}}', 'a NUL character (\\u0000) in a key at $.a'],
    ['a lone high surrogate', '{"t":"\\ud800x"}', 'a lone surrogate (\\ud800) in the value at $.t'],
    ['a high surrogate at the end', '{"t":"x\\uDBFF"}', 'a lone surrogate (\\udbff) in the value at $.t'],
    ['a lone low surrogate', '{"t":"\\udc00"}', 'a lone surrogate (\\udc00) in the value at $.t'],
    ['two high surrogates', '{"t":"\\ud83d\\ud83d\\ude00"}', 'a lone surrogate (\\ud83d) in the value at $.t'],
  ])('names %s and where it is', (_name, text, reason) => {
    expect(check(text)).toBe(reason)
  })

  it.each([
    ['plain text', '{"t":"olá 😀"}'],
    ['an escaped emoji (a surrogate pair)', '{"t":"\\ud83d\\ude00"}'],
    ['an escaped backslash before u0000', '{"t":"\\\\u0000"}'],
    ['other escapes', '{"t":"\\u00e1\\n\\u0001"}'],
    ['nesting deeper than the call stack', `${'['.repeat(200_000)}"\\ud83d\\ude00"${']'.repeat(200_000)}`],
  ])('lets %s through', (_name, text) => {
    expect(check(text)).toBeNull()
  })

  it('finds an offender nested deeper than the call stack', () => {
    const text = `${'['.repeat(200_000)}"\\u0000"${']'.repeat(200_000)}`
    expect(check(text)).toMatch(/^a NUL character \(\\u0000\) in the value at \$(\[0\])+$/)
  })
})
