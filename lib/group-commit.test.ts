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

  it('starts a flush beside one in flight only once minConcurrentBatch items wait; the first starts at once', async () => {
    const batches: number[][] = []
    let inFlight = 0
    let most = 0
    const commit = new GroupCommit<number, number>(async (items) => {
      batches.push(items)
      most = Math.max(most, ++inFlight)
      await tick()
      inFlight--
      return items
    }, { noun: 'thing', maxConcurrentFlushes: 3, minConcurrentBatch: 3 })
    const first = commit.add(1) // alone, at once: nothing else is in flight
    const few = [commit.add(2), commit.add(3)] // two waiting: not enough for a second flush
    expect(batches).toEqual([[1]])
    const more = [commit.add(4)] // three waiting: a second flush starts beside the first
    expect(batches).toEqual([[1], [2, 3, 4]])
    await expect(Promise.all([first, ...few, ...more])).resolves.toEqual([1, 2, 3, 4])
    expect(most).toBe(2)
    // Without the option any waiting item starts a flush while fewer than maxConcurrentFlushes are in flight.
    const eager: number[][] = []
    const any = new GroupCommit<number, number>(async (items) => {
      eager.push(items)
      await tick()
      return items
    }, { noun: 'thing', maxConcurrentFlushes: 3 })
    await Promise.all([1, 2, 3].map((i) => any.add(i)))
    expect(eager).toEqual([[1], [2], [3]])
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

describe('GroupCommit when a batch write fails', () => {
  /** A writer like PostgreSQL's: a batch holding the poisoned item fails as a whole, with a data error. */
  const poisonedWriter = (poison: (item: number) => boolean, calls: number[][] = []) => async (items: number[]) => {
    calls.push(items)
    await tick()
    if (items.some(poison)) throw Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' })
    return items.map((i) => i * 10)
  }
  /** Starts the first item alone, then queues the rest, so they are written by the second flush, together. */
  const addAll = (commit: GroupCommit<number, number>, items: number[]) => Promise.allSettled(items.map((i) => commit.add(i)))

  it('retries each member alone, so only the poisoned one fails and its neighbours are stored and answered', async () => {
    const calls: number[][] = []
    const commit = new GroupCommit<number, number>(poisonedWriter((i) => i === 3, calls), { noun: 'thing' })
    const results = await addAll(commit, [1, 2, 3, 4, 5])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<number>).value)).toEqual([10, 20, 40, 50])
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: '22P05' })
    // The first flush, the failed batch, then one write per member of that batch.
    expect(calls).toEqual([[1], [2, 3, 4, 5], [2], [3], [4], [5]])
  })

  it('fails every member whose single write fails too, and no other', async () => {
    const commit = new GroupCommit<number, number>(poisonedWriter((i) => i % 2 === 0), { noun: 'thing' })
    const results = await addAll(commit, [1, 2, 3, 4, 5, 6, 7])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
  })

  it('answers a member only once its own write has committed, never with the batch that failed', async () => {
    const committed = new Set<number>()
    const answeredBeforeCommit: number[] = []
    const commit = new GroupCommit<number, number>(async (items) => {
      await tick()
      if (items.includes(3)) throw new Error('invalid input syntax for type json')
      for (const i of items) committed.add(i)
      return items
    }, { noun: 'thing' })
    await Promise.allSettled([1, 2, 3, 4].map((i) => commit.add(i).then((v) => {
      if (!committed.has(v)) answeredBeforeCommit.push(v)
    })))
    expect([...committed].sort()).toEqual([1, 2, 4])
    expect(answeredBeforeCommit).toEqual([])
  })

  it('keeps a per-item error from the single write', async () => {
    const commit = new GroupCommit<number, number>(async (items) => {
      if (items.length > 1 && items.includes(3)) throw new Error('batch refused')
      return items.map((i) => (i === 3 ? new Error('refused alone') : i))
    }, { noun: 'thing' })
    const results = await addAll(commit, [1, 2, 3, 4])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled'])
    expect((results[2] as PromiseRejectedResult).reason.message).toBe('refused alone')
  })

  it('writes the members alone at most retryConcurrency at a time', async () => {
    let inFlight = 0
    let most = 0
    const commit = new GroupCommit<number, number>(async (items) => {
      inFlight++
      most = Math.max(most, inFlight)
      await tick()
      inFlight--
      if (items.includes(5)) throw new Error('bad value')
      return items
    }, { noun: 'thing', retryConcurrency: 2 })
    const results = await addAll(commit, Array.from({ length: 12 }, (_, i) => i))
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1)
    expect(most).toBe(2)
  })

  it.each([
    ['the database refused the connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['the server is shutting down', Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })],
    ['the statement timed out', Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' })],
    ['a writer wrapped the outage in a 503', new AppError('UNAVAILABLE', 'could not be stored', { cause: Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' }) })],
    ['a writer gave up waiting for a connection', new AppError('UNAVAILABLE', 'took too long')],
  ])('does not retry alone when %s: every member fails with the same error', async (_, error) => {
    const calls: number[][] = []
    const commit = new GroupCommit<number, number>(async (items) => {
      calls.push(items)
      await tick()
      if (items.length > 1) throw error
      return items
    }, { noun: 'thing' })
    const results = await addAll(commit, [1, 2, 3, 4])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected'])
    for (const r of results.slice(1)) expect((r as PromiseRejectedResult).reason).toBe(error)
    expect(calls).toEqual([[1], [2, 3, 4]])
  })

  it('retries alone when a writer wrapped a data error in a 503, and stops at the first availability failure', async () => {
    const calls: number[][] = []
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const commit = new GroupCommit<number, number>(async (items) => {
      calls.push(items)
      await tick()
      if (items.length > 1) throw new AppError('UNAVAILABLE', 'could not be stored', { cause: Object.assign(new Error('bad'), { code: '22P05' }) })
      if (items[0] === 2) return items
      throw down // the database went away during the retries
    }, { noun: 'thing', retryConcurrency: 1 })
    const results = await Promise.allSettled([0, 2, 3, 4, 5].map((i) => commit.add(i)))
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'rejected', 'rejected'])
    for (const r of results.slice(2)) expect((r as PromiseRejectedResult).reason).toBe(down)
    // 4 and 5 were never tried alone.
    expect(calls).toEqual([[0], [2, 3, 4, 5], [2], [3]])
  })

  it('answers the members not yet retried with 503 at the deadline and stops retrying', async () => {
    const calls: number[][] = []
    const commit = new GroupCommit<number, number>(async (items, signal) => {
      calls.push(items)
      if (items.length > 1) throw new Error('bad value')
      // Each single write outlives the deadline.
      await new Promise((resolve) => setTimeout(resolve, 60))
      if (signal.aborted) throw new AppError('UNAVAILABLE', 'gave up')
      return items
    }, { noun: 'thing', timeoutMs: 30, retryConcurrency: 1 })
    const results = await Promise.allSettled([commit.add(1), commit.add(2), commit.add(3)])
    // The first flush [1] also outlives its deadline; [2, 3] fails, 2 is tried alone and the deadline passes.
    for (const r of results) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'UNAVAILABLE' })
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(calls).toEqual([[1], [2, 3], [2]])
  })
})
