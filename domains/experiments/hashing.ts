/**
 * GrowthBook's bucketing, exactly (its JavaScript SDK's src/util.ts, checked against @growthbook/growthbook itself in
 * hashing.test.ts): the same unit id, seed, weights, coverage and namespace give the same variation here as in any
 * GrowthBook SDK, so an experiment can be moved between the two without anyone changing arms.
 *
 * Pure and allocation-light: the assign route runs it for every running experiment on every request.
 */

export type VariationRange = readonly [start: number, end: number]
/** [namespace id, start, end]: the unit is in the namespace when hash('__' + id, unit, 1) is in [start, end). */
export type Namespace = readonly [id: string, start: number, end: number]

/** FNV-1a, 32 bits, over UTF-16 code units (as GrowthBook's charCodeAt loop: an astral character is two units). */
function fnv1a32(str: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i)
    // h * 16777619 (the FNV prime) mod 2^32, with shifts so it stays within 32-bit integer arithmetic.
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)
  }
  return h >>> 0
}

/**
 * A number in [0, 1) for (seed, value). Version 2 (GrowthBook's unbiased hash): fnv(fnv(seed + value) as decimal
 * text) % 10000 / 10000. Version 1 (the original, kept for namespaces): fnv(value + seed) % 1000 / 1000. Any other
 * version: null (the unit is not bucketed), as GrowthBook does.
 */
export function hash(seed: string, value: string, version: number): number | null {
  if (version === 2) return (fnv1a32(String(fnv1a32(seed + value))) % 10000) / 10000
  if (version === 1) return (fnv1a32(value + seed) % 1000) / 1000
  return null
}

const equalWeights = (n: number): number[] => (n <= 0 ? [] : new Array<number>(n).fill(1 / n))

/**
 * Each variation's [start, end) on the unit interval. GrowthBook's rules for bad input, kept because they decide who
 * gets what: coverage is clamped into [0, 1] (undefined is 1); weights missing, of the wrong length, or not summing
 * to 1 within ±0.01 are replaced by equal weights. Coverage shrinks each range from its start, so raising coverage
 * later keeps every unit already in a variation in the same one.
 */
export function getBucketRanges(numVariations: number, coverage?: number, weights?: readonly number[]): VariationRange[] {
  let c = coverage === undefined ? 1 : coverage
  if (c < 0) c = 0
  else if (c > 1) c = 1
  const equal = equalWeights(numVariations)
  let w: readonly number[] = weights ?? equal
  if (w.length !== numVariations) w = equal
  const total = w.reduce((sum, x) => sum + x, 0)
  if (total < 0.99 || total > 1.01) w = equal
  let cumulative = 0
  return w.map((x) => {
    const start = cumulative
    cumulative += x
    return [start, start + c * x] as const
  })
}

/** The index of the range holding n ([start, end)), or -1: the unit is outside the experiment's coverage. */
export function chooseVariation(n: number, ranges: readonly VariationRange[]): number {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!
    if (n >= r[0] && n < r[1]) return i
  }
  return -1
}

/** Whether the unit falls in the namespace's slice, so experiments on disjoint slices never share a unit. */
export function inNamespace(id: string, namespace: Namespace): boolean {
  const n = hash(`__${namespace[0]}`, id, 1)
  if (n === null) return false
  return n >= namespace[1] && n < namespace[2]
}

export interface Bucketing {
  seed: string
  hashVersion: number
  coverage: number
  weights: readonly number[]
  namespace: Namespace | null
}

const FNV_BASIS = 0x811c9dc5

/** FNV-1a continued from state `h` over `str`: fnv(a + b) = fnvFrom(fnv(a), b), without building a + b. */
function fnvFrom(h: number, str: string): number {
  for (let i = 0; i < str.length; i++) {
    h ^= str.charCodeAt(i)
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)
  }
  return h >>> 0
}

const digits = new Uint8Array(10)
/** FNV-1a over the decimal text of a uint32 (what `fnv(x + "")` hashes), without making the string. */
function fnvOfDecimal(x: number): number {
  let n = 0
  do {
    digits[n++] = 48 + (x % 10)
    x = Math.floor(x / 10)
  } while (x > 0)
  let h = FNV_BASIS
  while (n > 0) {
    h ^= digits[--n]!
    h += (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)
  }
  return h >>> 0
}

/**
 * A unit id → variation index (or -1) function for one experiment, the same answer as namespace check + hash +
 * chooseVariation, with the per-experiment work done once: the seed's FNV state, the ranges, the namespace seed. The
 * assign route and the bench run this for every unit; hashing.test.ts holds it to GrowthBook's SDK.
 */
export function compileBucketing(b: Bucketing, ranges: readonly VariationRange[] = getBucketRanges(b.weights.length, b.coverage, b.weights)): (unitId: string) => number {
  const version = b.hashVersion
  const seedState = fnvFrom(FNV_BASIS, b.seed)
  const ns = b.namespace
  const nsSeed = ns ? `__${ns[0]}` : ''
  return (unitId) => {
    if (ns) {
      // Version 1 hashes value + seed: the unit first, then the namespace's seed.
      const v1 = (fnvFrom(fnvFrom(FNV_BASIS, unitId), nsSeed) % 1000) / 1000
      if (!(v1 >= ns[1] && v1 < ns[2])) return -1
    }
    let n: number
    if (version === 2) n = (fnvOfDecimal(fnvFrom(seedState, unitId)) % 10000) / 10000
    else if (version === 1) n = (fnvFrom(fnvFrom(FNV_BASIS, unitId), b.seed) % 1000) / 1000
    else return -1
    return chooseVariation(n, ranges)
  }
}

/**
 * The variation index a unit gets, or -1 (outside the namespace, outside coverage, or an unknown hash version), in
 * GrowthBook's order: namespace first, then the hash, then the ranges.
 */
export function bucketUnit(b: Bucketing, unitId: string, ranges: readonly VariationRange[] = getBucketRanges(b.weights.length, b.coverage, b.weights)): number {
  if (b.namespace && !inNamespace(unitId, b.namespace)) return -1
  const n = hash(b.seed, unitId, b.hashVersion)
  if (n === null) return -1
  return chooseVariation(n, ranges)
}
