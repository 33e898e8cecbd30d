import { createRequire } from 'node:module'
import path from 'node:path'
import { GrowthBookClient, type Experiment } from '@growthbook/growthbook'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { bucketUnit, chooseVariation, compileBucketing, getBucketRanges, hash, inNamespace, type Namespace } from './hashing.js'
import { seededRandom } from '../../lib/seeded-random.js'

/**
 * GrowthBook's own JavaScript SDK is the oracle: its public runInlineExperiment for whole assignments, and (for the
 * edge cases of the individual functions) its util module, which the package does not export by name, loaded by path.
 */
const require = createRequire(import.meta.url)
const gbRoot = path.dirname(require.resolve('@growthbook/growthbook/package.json'))
interface GbUtil {
  hash(seed: string, value: string, version: number): number | null
  getBucketRanges(n: number, coverage: number | undefined, weights?: number[]): [number, number][]
  chooseVariation(n: number, ranges: [number, number][]): number
  inNamespace(id: string, ns: [string, number, number]): boolean
}
let gb: GbUtil
const client = new GrowthBookClient({})

// The SDK complains on console.error about the bad weights and coverage these cases feed it on purpose.
beforeAll(async () => {
  vi.spyOn(console, 'error').mockImplementation(() => {})
  gb = (await import(path.join(gbRoot, 'dist/cjs/util.js'))) as GbUtil
})
afterAll(() => vi.restoreAllMocks())

/** Seeded (lib/seeded-random.ts), so a failure names a case that can be run again. */
const random = seededRandom

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:@'
const UNICODE = ['é', 'ß', 'ü', 'ñ', '中', '文', 'ж', 'ي', 'ह', '😀', '👩‍💻', '🇧🇷', '\u200d', 'Å', 'Å', '𝔘']
function randomId(next: () => number, unicode: boolean): string {
  const len = 1 + Math.floor(next() * 40)
  let s = ''
  for (let i = 0; i < len; i++) {
    s += unicode && next() < 0.3 ? UNICODE[Math.floor(next() * UNICODE.length)] : ALPHABET[Math.floor(next() * ALPHABET.length)]
  }
  return s
}

interface Case { id: string; seed: string; key: string; weights: number[]; coverage: number; hashVersion: number; namespace: Namespace | null }

function randomCase(next: () => number, unicode: boolean): Case {
  const n = 2 + Math.floor(next() * 4)
  const raw = Array.from({ length: n }, () => next())
  const total = raw.reduce((a, b) => a + b, 0)
  // Mostly valid weights (summing to 1), some deliberately off so the equal-weights fallback is compared too.
  const weights = next() < 0.85 ? raw.map((w) => w / total) : raw
  const coverage = next() < 0.7 ? 1 : next() < 0.8 ? next() : -0.5 + next() * 2
  const start = next() < 0.5 ? null : Math.floor(next() * 100) / 100
  const namespace: Namespace | null = start === null ? null : [`ns-${Math.floor(next() * 5)}`, start, Math.min(1, start + Math.floor(next() * 100) / 100)]
  const key = randomId(next, false)
  return { id: randomId(next, unicode), key, seed: next() < 0.5 ? key : randomId(next, unicode), weights, coverage, hashVersion: next() < 0.9 ? 2 : 1, namespace }
}

/** GrowthBook's answer for a whole assignment: the variation index, or -1 when the unit is not in the experiment. */
function oracle(c: Case): number {
  const experiment: Experiment<number> = {
    key: c.key, seed: c.seed, variations: c.weights.map((_, i) => i) as [number, number, ...number[]], weights: c.weights, coverage: c.coverage, hashVersion: c.hashVersion,
    ...(c.namespace ? { namespace: [...c.namespace] as [string, number, number] } : {}),
  }
  const r = client.runInlineExperiment(experiment, { attributes: { id: c.id } })
  return r.inExperiment ? r.variationId : -1
}

const bucketingOf = (c: Case) => ({ seed: c.seed, hashVersion: c.hashVersion, coverage: c.coverage, weights: c.weights, namespace: c.namespace })
/** Both of ours: the plain composition and the compiled one the assign route runs; they must agree with the SDK alike. */
const ours = (c: Case) => {
  const plain = bucketUnit(bucketingOf(c), c.id)
  const compiled = compileBucketing(bucketingOf(c))(c.id)
  return plain === compiled ? plain : -2
}

describe('bucketing agrees with the @growthbook/growthbook SDK', () => {
  it('gives the same variation for 100,000 random ids, seeds, weights, coverages and namespaces', () => {
    const next = random(20261201)
    const disagreements: Case[] = []
    const seen = new Set<number>()
    for (let i = 0; i < 100_000; i++) {
      const c = randomCase(next, false)
      const expected = oracle(c)
      seen.add(expected)
      if (ours(c) !== expected) disagreements.push(c)
    }
    expect(disagreements.slice(0, 5)).toEqual([])
    // Not vacuous: the cases reached every outcome, including "not in the experiment".
    expect([...seen].sort()).toEqual([-1, 0, 1, 2, 3, 4])
  })

  it('gives the same variation for 20,000 unicode ids and seeds (accents, CJK, emoji, flags, joiners, astral letters)', () => {
    const next = random(7)
    const disagreements: Case[] = []
    for (let i = 0; i < 20_000; i++) {
      const c = randomCase(next, true)
      if (ours(c) !== oracle(c)) disagreements.push(c)
    }
    expect(disagreements.slice(0, 5)).toEqual([])
  })

  it('hashes exactly as the SDK for versions 1 and 2, and answers null for any other version', () => {
    const next = random(99)
    for (let i = 0; i < 20_000; i++) {
      const seed = randomId(next, true)
      const value = randomId(next, true)
      for (const v of [1, 2]) expect(hash(seed, value, v)).toBe(gb.hash(seed, value, v))
    }
    for (const v of [0, 3, -1, 1.5, Number.NaN]) {
      expect(compileBucketing({ seed: 'seed', hashVersion: v, coverage: 1, weights: [0.5, 0.5], namespace: null })('id')).toBe(-1)
      expect(hash('seed', 'id', v)).toBeNull()
      expect(gb.hash('seed', 'id', v)).toBeNull()
    }
    expect(hash('', '', 2)).toBe(gb.hash('', '', 2))
  })

  it('builds the same ranges for weights that do not sum to 1, of the wrong length, and coverage outside [0, 1]', () => {
    const cases: [number, number | undefined, number[] | undefined][] = [
      [2, 1, [0.5, 0.5]], [3, 1, [0.2, 0.3, 0.5]], [2, undefined, undefined], [3, 0.5, undefined],
      [2, 1, [0.6, 0.6]], [2, 1, [0.3, 0.3]], [2, 1, [0.495, 0.5]], [2, 1, [0.5, 0.511]], [2, 1, [0.5]], [3, 1, [0.5, 0.5]],
      [2, -0.2, [0.5, 0.5]], [2, 1.7, [0.4, 0.6]], [2, 0, [0.4, 0.6]], [4, 0.33, [0.1, 0.2, 0.3, 0.4]], [0, 1, undefined], [1, 1, [1]],
      [2, 1, [-0.5, 1.5]], [2, 1, [1.2, -0.2]],
    ]
    for (const [n, coverage, weights] of cases) {
      expect(getBucketRanges(n, coverage, weights), JSON.stringify([n, coverage, weights])).toEqual(gb.getBucketRanges(n, coverage, weights))
    }
  })

  it('chooses the same variation at the range boundaries and outside every range', () => {
    const ranges = getBucketRanges(3, 0.8, [0.2, 0.3, 0.5])
    for (const n of [0, 0.16, 0.1599, 0.2, 0.44, 0.5, 0.8999, 0.9, 0.99, 1, -0.0001]) {
      expect(chooseVariation(n, ranges), String(n)).toBe(gb.chooseVariation(n, ranges as [number, number][]))
    }
    expect(chooseVariation(0.5, [])).toBe(-1)
  })

  it('places units in namespaces as the SDK does, including empty and full slices', () => {
    const next = random(3)
    for (let i = 0; i < 10_000; i++) {
      const id = randomId(next, i % 2 === 0)
      const start = Math.floor(next() * 1000) / 1000
      const ns: Namespace = [`pricing-${i % 7}`, start, i % 11 === 0 ? start : Math.min(1, start + next())]
      expect(inNamespace(id, ns)).toBe(gb.inNamespace(id, [...ns]))
    }
    expect(inNamespace('anyone', ['all', 0, 1])).toBe(true)
    expect(inNamespace('anyone', ['none', 0.3, 0.3])).toBe(false)
  })
})
