import { describe, expect, it } from 'vitest'
import { memoize } from './memo.js'

/** A memo over a compute that counts its calls per key. */
const counted = (max: number) => {
  const calls = new Map<string, number>()
  const memo = memoize(max, (key) => {
    calls.set(key, (calls.get(key) ?? 0) + 1)
    return { key }
  })
  return { memo, callsOf: (key: string) => calls.get(key) ?? 0 }
}

describe('memoize', () => {
  it('answers what compute answers, once per key, the same object each time', () => {
    const { memo, callsOf } = counted(3)
    const first = memo('a')
    expect(first).toEqual({ key: 'a' })
    expect(memo('a')).toBe(first)
    expect(callsOf('a')).toBe(1)
  })

  it('keeps a key until max other keys have been used since its last use, like an LRU of max', () => {
    const { memo, callsOf } = counted(3)
    memo('a')
    // Used again after every two others: never computed again, however many keys go by.
    for (let i = 0; i < 30; i++) {
      memo(`k${i}`)
      if (i % 2 === 1) memo('a')
    }
    expect(callsOf('a')).toBe(1)
  })

  it('computes again a key not used for long, and keeps a null or undefined answer like any other', () => {
    const { memo, callsOf } = counted(2)
    memo('old')
    for (let i = 0; i < 10; i++) memo(`k${i}`)
    memo('old')
    expect(callsOf('old')).toBe(2)
    let computed = 0
    const nothing = memoize(2, () => { computed++; return undefined })
    nothing('x')
    nothing('x')
    expect(computed).toBe(1)
  })

  it('holds at most twice max keys', () => {
    const { memo, callsOf } = counted(4)
    for (let i = 0; i < 100; i++) memo(`k${i}`)
    // The last four are kept; the older ones are gone (computed again).
    expect([96, 97, 98, 99].map((i) => (memo(`k${i}`), callsOf(`k${i}`)))).toEqual([1, 1, 1, 1])
    expect([0, 50, 90].map((i) => (memo(`k${i}`), callsOf(`k${i}`)))).toEqual([2, 2, 2])
  })
})
