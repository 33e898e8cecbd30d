import { describe, expect, it } from 'vitest'
import { AppError } from './errors.js'
import { GroupCommit } from './group-commit.js'

const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

describe('GroupCommit', () => {
  it('writes what arrives during a flush together in the next one', async () => {
    const batches: number[][] = []
    const commit = new GroupCommit<number, string>(async (items) => {
      batches.push(items)
      await tick()
      return items.map((i) => `ok ${i}`)
    }, { noun: 'thing' })
    const results = await Promise.all([1, 2, 3, 4].map((i) => commit.add(i)))
    expect(results).toEqual(['ok 1', 'ok 2', 'ok 3', 'ok 4'])
    expect(batches).toEqual([[1], [2, 3, 4]])
  })

  it('refuses one item alone when the writer returns an error for it', async () => {
    const commit = new GroupCommit<number, number>(async (items) => items.map((i) => (i === 2 ? new Error('not this one') : i)), { noun: 'thing' })
    const results = await Promise.allSettled([1, 2, 3].map((i) => commit.add(i)))
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
  })

  it('rejects the whole batch when the write fails, and goes on with the next', async () => {
    let fail = true
    const commit = new GroupCommit<number, number>(async (items) => {
      if (fail) throw new Error('database down')
      return items
    }, { noun: 'thing' })
    await expect(commit.add(1)).rejects.toThrow('database down')
    fail = false
    await expect(commit.add(2)).resolves.toBe(2)
  })

  it('answers 503 at the deadline and tells the writer, which may still be waiting for a connection', async () => {
    let signal: AbortSignal | undefined
    const commit = new GroupCommit<number, number>((items, s) => {
      signal = s
      return new Promise((resolve) => setTimeout(() => resolve(items), 200))
    }, { noun: 'thing', timeoutMs: 20 })
    const err = await commit.add(1).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AppError)
    expect(err).toMatchObject({ code: 'UNAVAILABLE', message: 'storing the thing took too long; retry later', headers: { 'retry-after': '2' } })
    expect(signal?.aborted).toBe(true)
  })

  it('refuses new items with 503 beyond maxQueued instead of queueing without end', async () => {
    let release = () => {}
    const commit = new GroupCommit<number, number>((items) => new Promise((resolve) => (release = () => resolve(items))), { noun: 'thing', maxQueued: 2 })
    const first = commit.add(1) // in flight
    const queued = [commit.add(2), commit.add(3)]
    await expect(commit.add(4)).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    release()
    await first
    await tick()
    release()
    await expect(Promise.all(queued)).resolves.toEqual([2, 3])
  })
})
