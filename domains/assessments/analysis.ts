import { DivisionByZero, type Expr, evaluate, roundTo } from './expression.js'

/**
 * Static analysis of a formula over the values its questions can take, so that a rubric that can divide by zero is
 * refused when it is published, never met while scoring.
 *
 * Every question has a domain: the finite set of values it can contribute (a choice's option points, the subset sums
 * of a multiple choice, a scale's steps, a yes/no; 0 included when it may be unanswered or hidden), or a range (a
 * number question, whose answers carry at most 6 decimals). Then, per formula (c. and f. references inlined):
 *
 * 1. When every question it reads has a finite domain and their product is small (ENUMERATION_LIMIT), every
 *    combination is evaluated exactly. This is exact, guards included (`if q.x > 0 then 10 / q.x else 0` is fine),
 *    and a failure names the answers that divide by zero.
 * 2. Otherwise, branch and bound with interval arithmetic: a box (a sub-domain per question) is safe when interval
 *    evaluation shows no divisor interval containing 0 (an `if` whose condition is decided over the box takes one
 *    branch; a condition `q.x <op> number` narrows q.x in each branch). A box that may divide by zero is sampled at
 *    its corners and middle (an exact zero is a counterexample) and split along its widest question, until a budget
 *    is spent: then the formula is refused as unproven, with the advice to guard the divisor.
 *
 * Questions are treated as independent (a combination that visibility rules exclude is still checked): sound, never
 * lenient.
 */

export type Domain = { kind: 'set'; values: number[] } | { kind: 'range'; lo: number; hi: number }

export const ENUMERATION_LIMIT = 50_000
export const BOX_BUDGET = 4_000
/** Number answers are stored with at most this many decimals, so `q.x > 0` means `q.x >= 1e-6`. */
export const NUMBER_DECIMALS = 6
const EPSILON = 10 ** -NUMBER_DECIMALS

export type DivisionFinding =
  | { safe: true; method: 'enumeration' | 'intervals' | 'no-division'; combinations?: number; boxes?: number }
  | { safe: false; reason: 'divides-by-zero'; at: number; witness: Record<string, number> }
  | { safe: false; reason: 'unproven'; at: number; boxes: number }

interface Interval { lo: number; hi: number }
type Box = Map<string, Domain>

const hull = (a: Interval, b: Interval): Interval => ({ lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi) })
const point = (v: number): Interval => ({ lo: v, hi: v })
const BOOL: Interval = { lo: 0, hi: 1 }
const TRUE = point(1)
const FALSE = point(0)
const isTrue = (i: Interval) => i.lo > 0 || i.hi < 0
const isFalse = (i: Interval) => i.lo === 0 && i.hi === 0

function domainInterval(d: Domain): Interval {
  return d.kind === 'set' ? { lo: d.values[0]!, hi: d.values[d.values.length - 1]! } : { lo: d.lo, hi: d.hi }
}

const mulBound = (a: number, b: number) => (a === 0 || b === 0 ? 0 : a * b)

export function hasDivision(n: Expr): boolean {
  switch (n.k) {
    case 'bin': return n.op === '/' || hasDivision(n.a) || hasDivision(n.b)
    case 'neg': case 'not': return hasDivision(n.a)
    case 'if': return hasDivision(n.c) || hasDivision(n.t) || hasDivision(n.e)
    case 'call': return n.args.some(hasDivision)
    default: return false
  }
}

export function questionRefs(n: Expr, out = new Set<string>()): Set<string> {
  switch (n.k) {
    case 'ref': if (n.scope === 'q') out.add(n.id); break
    case 'bin': questionRefs(n.a, out); questionRefs(n.b, out); break
    case 'neg': case 'not': questionRefs(n.a, out); break
    case 'if': questionRefs(n.c, out); questionRefs(n.t, out); questionRefs(n.e, out); break
    case 'call': n.args.forEach((a) => questionRefs(a, out)); break
  }
  return out
}

/** Narrows `box` so that the condition holds (`want` true) or fails; null when no value is left. */
function narrow(c: Expr, box: Box, want: boolean): Box | null {
  if (c.k === 'not') return narrow(c.a, box, !want)
  if (c.k !== 'bin' || !['<', '<=', '>', '>=', '==', '!='].includes(c.op)) return box
  let ref: string | null = null
  let value = 0
  let op = c.op
  if (c.a.k === 'ref' && c.a.scope === 'q' && c.b.k === 'num') {
    ref = c.a.id
    value = c.b.v
  } else if (c.b.k === 'ref' && c.b.scope === 'q' && c.a.k === 'num') {
    ref = c.b.id
    value = c.a.v
    op = ({ '<': '>', '<=': '>=', '>': '<', '>=': '<=', '==': '==', '!=': '!=' } as const)[op as '<']
  }
  const d = ref === null ? undefined : box.get(ref)
  if (!d || ref === null) return box
  if (!want) op = ({ '<': '>=', '<=': '>', '>': '<=', '>=': '<', '==': '!=', '!=': '==' } as const)[op as '<']
  const keep = (x: number) => {
    switch (op) {
      case '<': return x < value
      case '<=': return x <= value
      case '>': return x > value
      case '>=': return x >= value
      case '==': return x === value
      default: return x !== value
    }
  }
  let narrowed: Domain | null
  if (d.kind === 'set') {
    const values = d.values.filter(keep)
    narrowed = values.length ? { kind: 'set', values } : null
  } else {
    let { lo, hi } = d
    switch (op) {
      case '<': hi = Math.min(hi, value - EPSILON); break
      case '<=': hi = Math.min(hi, value); break
      case '>': lo = Math.max(lo, value + EPSILON); break
      case '>=': lo = Math.max(lo, value); break
      case '==': lo = Math.max(lo, value); hi = Math.min(hi, value); break
      // != on a range removes one point: the range stays (sound, a little wide).
    }
    narrowed = lo <= hi ? { kind: 'range', lo, hi } : null
  }
  if (!narrowed) return null
  const out = new Map(box)
  out.set(ref, narrowed)
  return out
}

/** Interval evaluation; divisions whose divisor interval contains 0 are added to `risky` (their positions). */
function ieval(n: Expr, box: Box, risky: Set<number>): Interval {
  switch (n.k) {
    case 'num': return point(n.v)
    case 'ref': {
      const d = box.get(n.id)
      return d ? domainInterval(d) : point(0)
    }
    case 'neg': {
      const a = ieval(n.a, box, risky)
      return { lo: -a.hi, hi: -a.lo }
    }
    case 'not': {
      const a = ieval(n.a, box, risky)
      return isTrue(a) ? FALSE : isFalse(a) ? TRUE : BOOL
    }
    case 'if': {
      const c = ieval(n.c, box, risky)
      if (isTrue(c)) return ieval(n.t, box, risky)
      if (isFalse(c)) return ieval(n.e, box, risky)
      const tBox = narrow(n.c, box, true)
      const eBox = narrow(n.c, box, false)
      const t = tBox ? ieval(n.t, tBox, risky) : null
      const e = eBox ? ieval(n.e, eBox, risky) : null
      return t && e ? hull(t, e) : (t ?? e ?? point(0))
    }
    case 'call': {
      const args = n.args.map((a) => ieval(a, box, risky))
      switch (n.fn) {
        case 'min': return { lo: Math.min(...args.map((a) => a.lo)), hi: Math.min(...args.map((a) => a.hi)) }
        case 'max': return { lo: Math.max(...args.map((a) => a.lo)), hi: Math.max(...args.map((a) => a.hi)) }
        case 'abs': {
          const a = args[0]!
          if (a.lo >= 0) return a
          if (a.hi <= 0) return { lo: -a.hi, hi: -a.lo }
          return { lo: 0, hi: Math.max(-a.lo, a.hi) }
        }
        case 'round': {
          const digits = n.args[1]?.k === 'num' ? n.args[1].v : 0
          return { lo: roundTo(args[0]!.lo, digits), hi: roundTo(args[0]!.hi, digits) }
        }
        case 'clamp': {
          const [x, a, b] = args as [Interval, Interval, Interval]
          const lo = { lo: Math.min(a.lo, b.lo), hi: Math.min(a.hi, b.hi) }
          const hi = { lo: Math.max(a.lo, b.lo), hi: Math.max(a.hi, b.hi) }
          return { lo: Math.min(Math.max(x.lo, lo.lo), hi.lo), hi: Math.min(Math.max(x.hi, lo.hi), hi.hi) }
        }
      }
      break
    }
    case 'bin': {
      if (n.op === 'and' || n.op === 'or') {
        const a = ieval(n.a, box, risky)
        if (n.op === 'and' && isFalse(a)) return FALSE
        if (n.op === 'or' && isTrue(a)) return TRUE
        const b = ieval(n.b, box, risky)
        if (n.op === 'and') return isTrue(a) && isTrue(b) ? TRUE : isFalse(b) ? FALSE : BOOL
        return isTrue(b) ? TRUE : isFalse(a) && isFalse(b) ? FALSE : BOOL
      }
      const a = ieval(n.a, box, risky)
      const b = ieval(n.b, box, risky)
      switch (n.op) {
        case '+': return { lo: a.lo + b.lo, hi: a.hi + b.hi }
        case '-': return { lo: a.lo - b.hi, hi: a.hi - b.lo }
        case '*': {
          const p = [mulBound(a.lo, b.lo), mulBound(a.lo, b.hi), mulBound(a.hi, b.lo), mulBound(a.hi, b.hi)]
          return { lo: Math.min(...p), hi: Math.max(...p) }
        }
        case '/': {
          if (b.lo <= 0 && b.hi >= 0) {
            risky.add(n.at)
            return { lo: -Infinity, hi: Infinity }
          }
          const p = [a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi].map((x) => (Number.isNaN(x) ? 0 : x))
          return { lo: Math.min(...p), hi: Math.max(...p) }
        }
        case '<': return a.hi < b.lo ? TRUE : a.lo >= b.hi ? FALSE : BOOL
        case '<=': return a.hi <= b.lo ? TRUE : a.lo > b.hi ? FALSE : BOOL
        case '>': return a.lo > b.hi ? TRUE : a.hi <= b.lo ? FALSE : BOOL
        case '>=': return a.lo >= b.hi ? TRUE : a.hi < b.lo ? FALSE : BOOL
        case '==': return a.lo === a.hi && b.lo === b.hi && a.lo === b.lo ? TRUE : a.hi < b.lo || b.hi < a.lo ? FALSE : BOOL
        case '!=': return a.lo === a.hi && b.lo === b.hi && a.lo === b.lo ? FALSE : a.hi < b.lo || b.hi < a.lo ? TRUE : BOOL
      }
    }
  }
  return { lo: -Infinity, hi: Infinity }
}

/** The range a formula's value can take over the domains (an over-approximation; exact when enumerable). */
export function valueRange(n: Expr, domains: ReadonlyMap<string, Domain>): Interval {
  const deps = [...questionRefs(n)]
  const sets = deps.map((id) => domains.get(id)).filter((d): d is Extract<Domain, { kind: 'set' }> => d?.kind === 'set')
  if (sets.length === deps.length && !hasDivision(n) && product(sets.map((s) => s.values.length)) <= ENUMERATION_LIMIT) {
    let lo = Infinity
    let hi = -Infinity
    forEachCombination(deps, domains, (values) => {
      const v = evaluate(n, (_s, id) => values.get(id) ?? 0)
      lo = Math.min(lo, v)
      hi = Math.max(hi, v)
      return true
    })
    return deps.length === 0 ? point(evaluate(n, () => 0)) : { lo, hi }
  }
  return ieval(n, new Map(deps.map((id) => [id, domains.get(id) ?? { kind: 'set', values: [0] }])), new Set())
}

const product = (xs: number[]) => xs.reduce((p, x) => (p > ENUMERATION_LIMIT ? p : p * x), 1)

/** Calls fn for every combination of the questions' (set) domains; stops when fn returns false. */
function forEachCombination(ids: string[], domains: ReadonlyMap<string, Domain>, fn: (values: Map<string, number>) => boolean): number {
  const lists = ids.map((id) => {
    const d = domains.get(id)
    return d?.kind === 'set' ? d.values : [0]
  })
  const index = ids.map(() => 0)
  const values = new Map(ids.map((id, i) => [id, lists[i]![0]!]))
  let count = 0
  for (;;) {
    count++
    if (!fn(values)) return count
    let i = 0
    for (; i < ids.length; i++) {
      index[i]!++
      if (index[i]! < lists[i]!.length) {
        values.set(ids[i]!, lists[i]![index[i]!]!)
        break
      }
      index[i] = 0
      values.set(ids[i]!, lists[i]![0]!)
    }
    if (i === ids.length) return count
  }
}

const evaluatesToDivisionByZero = (n: Expr, values: ReadonlyMap<string, number>): number | null => {
  try {
    evaluate(n, (_s, id) => values.get(id) ?? 0)
    return null
  } catch (err) {
    if (err instanceof DivisionByZero) return (err as DivisionByZero).at ?? 0
    return null
  }
}

/** Samples of a box: its low corner, high corner and middle (each question at its low, high, middle value). */
function samples(box: Box): Map<string, number>[] {
  const pick = (which: 'lo' | 'hi' | 'mid') => new Map([...box].map(([id, d]) => {
    if (d.kind === 'set') return [id, which === 'lo' ? d.values[0]! : which === 'hi' ? d.values[d.values.length - 1]! : d.values[Math.floor(d.values.length / 2)]!]
    return [id, which === 'lo' ? d.lo : which === 'hi' ? d.hi : roundTo((d.lo + d.hi) / 2, NUMBER_DECIMALS)]
  }))
  return [pick('lo'), pick('hi'), pick('mid')]
}

function split(box: Box): [Box, Box] | null {
  let widest: string | null = null
  let width = 0
  for (const [id, d] of box) {
    const w = d.kind === 'set' ? (d.values.length > 1 ? d.values.length : 0) : d.hi - d.lo > EPSILON ? (d.hi - d.lo) / EPSILON : 0
    if (w > width) {
      width = w
      widest = id
    }
  }
  if (widest === null) return null
  const d = box.get(widest)!
  const a = new Map(box)
  const b = new Map(box)
  if (d.kind === 'set') {
    const half = Math.ceil(d.values.length / 2)
    a.set(widest, { kind: 'set', values: d.values.slice(0, half) })
    b.set(widest, { kind: 'set', values: d.values.slice(half) })
  } else {
    const mid = roundTo((d.lo + d.hi) / 2, NUMBER_DECIMALS)
    a.set(widest, { kind: 'range', lo: d.lo, hi: mid })
    b.set(widest, { kind: 'range', lo: Math.min(d.hi, mid + EPSILON), hi: d.hi })
  }
  return [a, b]
}

/** The division at `at`: its divisor's questions are what a counterexample needs to name. */
function divisorRefs(n: Expr, at: number): Set<string> | null {
  if (n.k === 'bin' && n.op === '/' && n.at === at) return questionRefs(n.b)
  const kids = n.k === 'bin' ? [n.a, n.b] : n.k === 'neg' || n.k === 'not' ? [n.a] : n.k === 'if' ? [n.c, n.t, n.e] : n.k === 'call' ? n.args : []
  for (const k of kids) {
    const found = divisorRefs(k, at)
    if (found) return found
  }
  return null
}

/** Whether evaluating `n` can divide by zero for some answers (see the top of this file for how). */
export function checkDivisions(n: Expr, domains: ReadonlyMap<string, Domain>): DivisionFinding {
  const finding = searchDivisions(n, domains)
  if (finding.safe || finding.reason !== 'divides-by-zero') return finding
  const keep = divisorRefs(n, finding.at)
  return keep ? { ...finding, witness: Object.fromEntries(Object.entries(finding.witness).filter(([id]) => keep.has(id))) } : finding
}

function searchDivisions(n: Expr, domains: ReadonlyMap<string, Domain>): DivisionFinding {
  if (!hasDivision(n)) return { safe: true, method: 'no-division' }
  const deps = [...questionRefs(n)]
  const doms = deps.map((id) => domains.get(id) ?? ({ kind: 'set', values: [0] } as Domain))
  if (doms.every((d) => d.kind === 'set') && product(doms.map((d) => (d as { values: number[] }).values.length)) <= ENUMERATION_LIMIT) {
    let found: DivisionFinding | null = null
    const combinations = forEachCombination(deps, domains, (values) => {
      const at = evaluatesToDivisionByZero(n, values)
      if (at === null) return true
      found = { safe: false, reason: 'divides-by-zero', at, witness: Object.fromEntries(values) }
      return false
    })
    return found ?? { safe: true, method: 'enumeration', combinations }
  }
  const queue: Box[] = [new Map(deps.map((id, i) => [id, doms[i]!]))]
  let boxes = 0
  let firstRisk = 0
  while (queue.length > 0) {
    const box = queue.pop()!
    boxes++
    const risky = new Set<number>()
    ieval(n, box, risky)
    if (risky.size === 0) continue
    firstRisk = Math.min(...risky)
    for (const s of samples(box)) {
      const at = evaluatesToDivisionByZero(n, s)
      if (at !== null) return { safe: false, reason: 'divides-by-zero', at, witness: Object.fromEntries(s) }
    }
    const halves = split(box)
    // A box of single points was sampled exactly above: it is safe.
    if (!halves) continue
    if (boxes + queue.length >= BOX_BUDGET) return { safe: false, reason: 'unproven', at: firstRisk, boxes }
    queue.push(...halves)
  }
  return { safe: true, method: 'intervals', boxes }
}
