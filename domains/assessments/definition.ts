import { createHash } from 'node:crypto'
import { checkDivisions, type Domain, NUMBER_DECIMALS } from './analysis.js'
import { type Expr, ExpressionError, inline, parseExpression, references } from './expression.js'
import type { AnswerValue, Condition, Definition, Demographics, ProfileField, Question } from './schemas.js'

/**
 * A definition's rules, all pure: what is checked at publish (beyond the zod shapes), which questions are shown
 * for given answers, what an answer must look like, and what a question contributes to the score.
 */

export interface Issue { path: (string | number)[]; message: string }

/** yes/no questions have these two fixed options (points may be set for each). */
export const YES_NO_OPTIONS = [{ id: 'yes', label: 'Yes' }, { id: 'no', label: 'No' }] as const
export const MAX_SCALE_STEPS = 21

const isChoice = (q: Question) => q.type === 'single_choice' || q.type === 'multiple_choice'
export const optionsOf = (q: Question): { id: string; label: string }[] => (q.type === 'yes_no' ? [...YES_NO_OPTIONS] : q.options ?? [])

export function scaleSteps(q: Question): number[] {
  const min = q.min ?? 1
  const max = q.max ?? 5
  const step = q.step ?? 1
  const out: number[] = []
  for (let i = 0; min + i * step <= max + 1e-9 && out.length <= MAX_SCALE_STEPS; i++) out.push(Number((min + i * step).toFixed(6)))
  return out
}

/** sha256 of the questions as published: versions with equal hashes can score each other's sessions. */
export const questionsHash = (questions: readonly Question[]) =>
  createHash('sha256').update(JSON.stringify(questions.map(({ showIf, ...q }) => ({ ...q, showIf: showIf ?? null })))).digest('hex')

// ---------------------------------------------------------------------------------------------------------------
// Answers

export type Answers = ReadonlyMap<string, AnswerValue>

/** Checks an answer against its question; the value to store, or why it is refused (a 400). */
export function normalizeAnswer(q: Question, value: AnswerValue): { ok: true; value: AnswerValue } | { ok: false; message: string } {
  const bad = (message: string) => ({ ok: false as const, message })
  if (value === null || value === '' || (Array.isArray(value) && value.length === 0 && q.type !== 'multiple_choice')) {
    return q.required ? bad('this question needs an answer') : { ok: true, value: null }
  }
  switch (q.type) {
    case 'single_choice': {
      if (typeof value !== 'string') return bad('the answer is one option id')
      return optionsOf(q).some((o) => o.id === value) ? { ok: true, value } : bad(`"${value}" is not an option of this question`)
    }
    case 'multiple_choice': {
      if (!Array.isArray(value)) return bad('the answer is a list of option ids')
      const ids = new Set(optionsOf(q).map((o) => o.id))
      const unknown = value.find((v) => !ids.has(v))
      if (unknown !== undefined) return bad(`"${unknown}" is not an option of this question`)
      const chosen = [...new Set(value)]
      const min = q.minSelections ?? (q.required ? 1 : 0)
      if (chosen.length < min) return bad(`choose at least ${min}`)
      if (q.maxSelections !== undefined && chosen.length > q.maxSelections) return bad(`choose at most ${q.maxSelections}`)
      // Stored in the question's order, so equal choices are equal answers whatever order they came in.
      return { ok: true, value: optionsOf(q).map((o) => o.id).filter((id) => chosen.includes(id)) }
    }
    case 'yes_no':
      if (typeof value === 'boolean') return { ok: true, value }
      if (value === 'yes' || value === 'no') return { ok: true, value: value === 'yes' }
      return bad('the answer is true or false')
    case 'scale': {
      if (typeof value !== 'number') return bad('the answer is a number')
      return scaleSteps(q).includes(value) ? { ok: true, value } : bad(`the answer is one of ${scaleSteps(q).join(', ')}`)
    }
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad('the answer is a number')
      if (q.integer && !Number.isInteger(value)) return bad('the answer is a whole number')
      if (Number(value.toFixed(NUMBER_DECIMALS)) !== value) return bad(`at most ${NUMBER_DECIMALS} decimals`)
      if (q.min !== undefined && value < q.min) return bad(`at least ${q.min}`)
      if (q.max !== undefined && value > q.max) return bad(`at most ${q.max}`)
      return { ok: true, value }
    }
    case 'text': {
      if (typeof value !== 'string') return bad('the answer is text')
      const text = value.trim()
      if (text.length > (q.maxLength ?? 1000)) return bad(`at most ${q.maxLength ?? 1000} characters`)
      return text.length === 0 && q.required ? bad('this question needs an answer') : { ok: true, value: text }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Visibility

function holds(c: Condition, answers: Answers): boolean {
  if ('all' in c) return c.all.every((x) => holds(x, answers))
  if ('any' in c) return c.any.some((x) => holds(x, answers))
  if ('not' in c) return !holds(c.not, answers)
  const a = answers.get(c.question)
  const present = a !== undefined && a !== null
  if (c.answered !== undefined && c.answered !== present) return false
  if (!present) return c.answered === false
  const n = typeof a === 'number' ? a : null
  if (c.equals !== undefined && !(a === c.equals || (typeof a === 'boolean' && (c.equals === 'yes' ? a : c.equals === 'no' ? !a : false)))) return false
  if (c.in !== undefined && !c.in.some((v) => v === a)) return false
  if (c.includes !== undefined && !(Array.isArray(a) && a.includes(c.includes))) return false
  if (c.gt !== undefined && !(n !== null && n > c.gt)) return false
  if (c.gte !== undefined && !(n !== null && n >= c.gte)) return false
  if (c.lt !== undefined && !(n !== null && n < c.lt)) return false
  if (c.lte !== undefined && !(n !== null && n <= c.lte)) return false
  return true
}

/**
 * The questions shown for these answers, in order. A condition reads only earlier questions, and an answer to a
 * question that is itself hidden counts as no answer, so hiding cascades.
 */
export function visibleQuestions(questions: readonly Question[], answers: Answers): Question[] {
  const seen = new Map<string, AnswerValue>()
  const out: Question[] = []
  for (const q of questions) {
    if (!q.showIf || holds(q.showIf, seen)) {
      out.push(q)
      const a = answers.get(q.id)
      if (a !== undefined) seen.set(q.id, a)
    }
  }
  return out
}

/** Only the answers of shown questions: what scoring reads. */
export function visibleAnswers(questions: readonly Question[], answers: Answers): Map<string, AnswerValue> {
  const out = new Map<string, AnswerValue>()
  for (const q of visibleQuestions(questions, answers)) {
    const a = answers.get(q.id)
    if (a !== undefined) out.set(q.id, a)
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Points

/** What an answer contributes: its option points, a scale's points (or value), a number's value; text 0. */
export function answerValue(q: Question, points: Readonly<Record<string, number>> | undefined, a: AnswerValue | undefined): number {
  if (a === undefined || a === null) return 0
  switch (q.type) {
    case 'single_choice':
      return typeof a === 'string' ? points?.[a] ?? 0 : 0
    case 'multiple_choice':
      return Array.isArray(a) ? a.reduce((s, id) => s + (points?.[id] ?? 0), 0) : 0
    case 'yes_no':
      return typeof a === 'boolean' ? points?.[a ? 'yes' : 'no'] ?? 0 : 0
    case 'scale':
      return typeof a === 'number' ? (points && String(a) in points ? points[String(a)]! : points && Object.keys(points).length > 0 ? 0 : a) : 0
    case 'number':
      return typeof a === 'number' ? a : 0
    case 'text':
      return 0
  }
}

const MULTI_SUBSET_LIMIT = 12

/** The values a question can contribute (see analysis.ts); 0 included when it can be unanswered or hidden. */
export function questionDomain(q: Question, points: Readonly<Record<string, number>> | undefined): Domain {
  const mayBeMissing = !q.required || q.showIf !== undefined
  const set = (values: number[]) => ({ kind: 'set' as const, values: [...new Set([...values, ...(mayBeMissing ? [0] : [])])].sort((a, b) => a - b) })
  switch (q.type) {
    case 'single_choice':
    case 'yes_no':
      return set(optionsOf(q).map((o) => points?.[o.id] ?? 0))
    case 'multiple_choice': {
      const opts = optionsOf(q).map((o) => points?.[o.id] ?? 0)
      const minSel = q.minSelections ?? (q.required ? 1 : 0)
      const maxSel = q.maxSelections ?? opts.length
      if (opts.length <= MULTI_SUBSET_LIMIT) {
        const sums: number[] = []
        for (let mask = 0; mask < 1 << opts.length; mask++) {
          let n = 0
          let s = 0
          for (let i = 0; i < opts.length; i++) if (mask & (1 << i)) { n++; s += opts[i]! }
          if (n >= minSel && n <= maxSel) sums.push(s)
        }
        return set(sums)
      }
      const lo = opts.filter((p) => p < 0).reduce((a, b) => a + b, 0)
      const hi = opts.filter((p) => p > 0).reduce((a, b) => a + b, 0)
      return { kind: 'range', lo: Math.min(lo, 0), hi: Math.max(hi, 0) }
    }
    case 'scale':
      return set(scaleSteps(q).map((v) => answerValue(q, points, v)))
    case 'number': {
      const lo = q.min ?? -1e9
      const hi = q.max ?? 1e9
      if (q.integer && hi - lo <= 2000) {
        const values: number[] = []
        for (let v = Math.ceil(lo); v <= hi; v++) values.push(v)
        return set(values)
      }
      return mayBeMissing ? { kind: 'range', lo: Math.min(lo, 0), hi: Math.max(hi, 0) } : { kind: 'range', lo, hi }
    }
    case 'text':
      return { kind: 'set', values: [0] }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Compilation and the publish-time checks

export interface CompiledDefinition {
  definition: Definition
  byId: ReadonlyMap<string, Question>
  /** Each category as an expression over questions (its sum, or percentage of its maximum). */
  categories: { key: string; expr: Expr }[]
  formulas: { key: string; expr: Expr }[]
  total: Expr
}

const num = (v: number): Expr => ({ k: 'num', v, at: 0 })
const ref = (id: string): Expr => ({ k: 'ref', scope: 'q', id, at: 0 })
const sum = (xs: Expr[]): Expr => xs.reduce<Expr | null>((acc, x) => (acc ? { k: 'bin', op: '+', a: acc, b: x, at: 0 } : x), null) ?? num(0)
const times = (a: Expr, b: Expr): Expr => ({ k: 'bin', op: '*', a, b, at: 0 })

/** The largest value each category can reach (its questions' maxima), for percent scoring. */
function categoryMaximum(def: Definition, key: string): number {
  return def.questions.filter((q) => q.category === key && q.type !== 'text').reduce((s, q) => {
    const d = questionDomain(q, def.rubric.points[q.id])
    return s + (d.kind === 'set' ? d.values[d.values.length - 1]! : d.hi)
  }, 0)
}

/**
 * Checks everything zod cannot and compiles the rubric. Issues are what publishing answers with (400); compile
 * never throws on a definition without issues.
 */
export function compileDefinition(def: Definition): { compiled: CompiledDefinition | null; issues: Issue[] } {
  const issues: Issue[] = []
  const issue = (path: Issue['path'], message: string) => issues.push({ path, message })
  const byId = new Map<string, Question>()
  const position = new Map<string, number>()
  const categoryKeys = new Set(def.categories.map((c) => c.key))

  def.categories.forEach((c, i) => {
    if (def.categories.findIndex((x) => x.key === c.key) !== i) issue(['categories', i, 'key'], `duplicate category "${c.key}"`)
  })
  def.questions.forEach((q, i) => {
    const at = ['questions', i]
    if (byId.has(q.id)) issue([...at, 'id'], `duplicate question id "${q.id}"`)
    byId.set(q.id, q)
    position.set(q.id, i)
    if (isChoice(q)) {
      if (!q.options) issue([...at, 'options'], `a ${q.type} question needs options`)
      else q.options.forEach((o, j) => { if (q.options!.findIndex((x) => x.id === o.id) !== j) issue([...at, 'options', j, 'id'], `duplicate option "${o.id}"`) })
    } else if (q.options) issue([...at, 'options'], `a ${q.type} question has no options`)
    if (q.type === 'scale') {
      if (q.min === undefined || q.max === undefined) issue([...at], 'a scale needs min and max')
      else if (q.min >= q.max) issue([...at, 'max'], 'max must be above min')
      else if ((q.max - q.min) / (q.step ?? 1) + 1 > MAX_SCALE_STEPS) issue([...at, 'step'], `a scale has at most ${MAX_SCALE_STEPS} steps`)
    }
    if (q.type === 'number' && q.min !== undefined && q.max !== undefined && q.min > q.max) issue([...at, 'max'], 'max must not be below min')
    if (q.type === 'multiple_choice' && q.options) {
      if (q.maxSelections !== undefined && q.maxSelections > q.options.length) issue([...at, 'maxSelections'], 'more than there are options')
      if (q.minSelections !== undefined && q.maxSelections !== undefined && q.minSelections > q.maxSelections) issue([...at, 'minSelections'], 'above maxSelections')
    }
    if (q.category !== undefined && !categoryKeys.has(q.category)) issue([...at, 'category'], `no category "${q.category}"`)
    if (q.showIf) checkCondition(q.showIf, i, [...at, 'showIf'])
  })

  function checkCondition(c: Condition, index: number, path: Issue['path']): void {
    if ('all' in c) return c.all.forEach((x, j) => checkCondition(x, index, [...path, 'all', j]))
    if ('any' in c) return c.any.forEach((x, j) => checkCondition(x, index, [...path, 'any', j]))
    if ('not' in c) return checkCondition(c.not, index, [...path, 'not'])
    const target = byId.get(c.question)
    if (!target || (position.get(c.question) ?? Infinity) >= index) {
      issue([...path, 'question'], `"${c.question}" is not an earlier question`)
      return
    }
    const ids = new Set(optionsOf(target).map((o) => o.id))
    for (const v of [c.equals, ...(c.in ?? []), c.includes]) {
      if (typeof v === 'string' && isChoice(target) && !ids.has(v)) issue(path, `"${v}" is not an option of ${target.id}`)
    }
    if ((c.gt ?? c.gte ?? c.lt ?? c.lte) !== undefined && !['number', 'scale'].includes(target.type)) issue(path, `${target.id} is not a number or scale`)
    if (c.includes !== undefined && target.type !== 'multiple_choice') issue(path, `includes needs a multiple_choice question; ${target.id} is ${target.type}`)
  }

  for (const [qid, pts] of Object.entries(def.rubric.points)) {
    const q = byId.get(qid)
    if (!q) {
      issue(['rubric', 'points', qid], `no question "${qid}"`)
      continue
    }
    const allowed = q.type === 'scale' ? new Set(scaleSteps(q).map(String)) : new Set(optionsOf(q).map((o) => o.id))
    if (q.type === 'number' || q.type === 'text') issue(['rubric', 'points', qid], `${q.type} questions score their value (number) or nothing (text): use a formula`)
    else for (const k of Object.keys(pts)) if (!allowed.has(k)) issue(['rubric', 'points', qid, k], `"${k}" is not ${q.type === 'scale' ? 'a step' : 'an option'} of ${qid}`)
  }

  const bands = def.rubric.bands
  bands.forEach((b, i) => {
    if (bands.findIndex((x) => x.key === b.key) !== i) issue(['rubric', 'bands', i, 'key'], `duplicate band "${b.key}"`)
    if (i > 0 && b.min <= bands[i - 1]!.min) issue(['rubric', 'bands', i, 'min'], 'bands are listed by increasing min')
  })
  def.profileFields.forEach((f, i) => {
    if (def.profileFields.findIndex((x) => x.key === f.key) !== i) issue(['profileFields', i, 'key'], `duplicate profile field "${f.key}"`)
    if (f.type === 'choice' && !f.options) issue(['profileFields', i, 'options'], 'a choice field needs options')
  })
  if (issues.length > 0) return { compiled: null, issues }

  const domains = new Map(def.questions.map((q) => [q.id, questionDomain(q, def.rubric.points[q.id])]))
  const categories = def.categories.map((c) => {
    const members = def.questions.filter((q) => q.category === c.key && q.type !== 'text').map((q) => ref(q.id))
    if (def.rubric.categoryScoring === 'percent') {
      const max = categoryMaximum(def, c.key)
      if (!(max > 0)) {
        issue(['categories', def.categories.indexOf(c)], `category "${c.key}" can score at most ${max}, so it has no percentage (give its questions positive points)`)
        return { key: c.key, expr: num(0) }
      }
      return { key: c.key, expr: times(sum(members), num(100 / max)) }
    }
    return { key: c.key, expr: sum(members) }
  })
  const categoryExpr = new Map(categories.map((c) => [c.key, c.expr]))

  const formulas: { key: string; expr: Expr; inlined: Expr }[] = []
  const formulaIndex = new Map<string, number>()
  const parse = (source: string, path: Issue['path'], earlierFormulas: number): { expr: Expr; inlined: Expr } | null => {
    let expr: Expr
    try {
      expr = parseExpression(source)
    } catch (err) {
      issue(path, err instanceof ExpressionError ? err.message : 'cannot be parsed')
      return null
    }
    let ok = true
    for (const r of references(expr)) {
      if (r.scope === 'q') {
        const q = byId.get(r.id)
        if (!q) { issue(path, `unknown question q.${r.id} (at character ${r.at + 1})`); ok = false }
        else if (q.type === 'text') { issue(path, `q.${r.id} is a text question and has no value (at character ${r.at + 1})`); ok = false }
      } else if (r.scope === 'c') {
        if (!categoryExpr.has(r.id)) { issue(path, `unknown category c.${r.id} (at character ${r.at + 1})`); ok = false }
      } else if (!formulaIndex.has(r.id) || formulaIndex.get(r.id)! >= earlierFormulas) {
        issue(path, `f.${r.id} is not an earlier formula (at character ${r.at + 1})`)
        ok = false
      }
    }
    if (!ok) return null
    const inlined = inline(expr, (scope, id) => (scope === 'c' ? categoryExpr.get(id)! : formulas[formulaIndex.get(id)!]!.inlined))
    const finding = checkDivisions(inlined, domains)
    if (!finding.safe) {
      if (finding.reason === 'divides-by-zero') {
        const when = Object.entries(finding.witness).map(([id, v]) => `q.${id} = ${v}`).join(', ')
        issue(path, `can divide by zero${when ? ` when ${when}` : ''}${formulaHasPosition(source, finding.at) ? ` (the division at character ${finding.at + 1})` : ''}`)
      } else {
        issue(path, `cannot prove the divisor is never zero over the questions' ranges (checked ${finding.boxes} cases): guard it, e.g. max(<divisor>, 1) or if <divisor> != 0 then … else …`)
      }
      return null
    }
    return { expr, inlined }
  }
  def.rubric.formulas.forEach((f, i) => {
    if (formulaIndex.has(f.key)) issue(['rubric', 'formulas', i, 'key'], `duplicate formula "${f.key}"`)
    const parsed = parse(f.expr, ['rubric', 'formulas', i, 'expr'], i)
    formulaIndex.set(f.key, i)
    formulas.push({ key: f.key, expr: parsed?.expr ?? num(0), inlined: parsed?.inlined ?? num(0) })
  })

  let total: Expr
  if (def.rubric.total !== undefined) {
    total = parse(def.rubric.total, ['rubric', 'total'], formulas.length)?.expr ?? num(0)
  } else if (def.categories.length > 0) {
    const weight = def.categories.reduce((s, c) => s + c.weight, 0)
    if (!(weight > 0)) issue(['categories'], 'the category weights sum to 0, so there is no weighted mean: give one a weight or write rubric.total')
    total = sum(def.categories.map((c) => times({ k: 'ref', scope: 'c', id: c.key, at: 0 }, num(weight > 0 ? c.weight / weight : 0))))
  } else {
    total = sum(def.questions.filter((q) => q.type !== 'text').map((q) => ref(q.id)))
  }
  if (issues.length > 0) return { compiled: null, issues }
  return {
    compiled: { definition: def, byId, categories, formulas: formulas.map(({ key, expr }) => ({ key, expr })), total },
    issues: [],
  }
}

// Synthesised divisions have position 0 and no place in the tenant's text.
const formulaHasPosition = (source: string, at: number) => source[at] === '/'

// ---------------------------------------------------------------------------------------------------------------
// Profile fields

/** Checks profile values against the fields; unknown keys are refused so nothing unexpected is stored. */
export function normalizeDemographics(fields: readonly ProfileField[], given: Demographics): { ok: true; value: Demographics } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = []
  const out: Demographics = {}
  for (const [key, value] of Object.entries(given)) {
    const f = fields.find((x) => x.key === key)
    if (!f) { issues.push({ path: [key], message: 'not a profile field of this assessment' }); continue }
    if (f.type === 'number') {
      const n = typeof value === 'number' ? value : Number(String(value).replace(',', '.'))
      if (!Number.isFinite(n)) issues.push({ path: [key], message: 'a number' })
      else if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max)) issues.push({ path: [key], message: `between ${f.min ?? '-∞'} and ${f.max ?? '∞'}` })
      else out[key] = n
    } else if (f.type === 'choice') {
      if (!f.options!.some((o) => o.id === value)) issues.push({ path: [key], message: `one of ${f.options!.map((o) => o.id).join(', ')}` })
      else out[key] = value
    } else {
      const s = String(value).trim()
      if (s.length === 0 || s.length > 200) issues.push({ path: [key], message: '1 to 200 characters' })
      else out[key] = s
    }
  }
  return issues.length ? { ok: false, issues } : { ok: true, value: out }
}

export const missingProfileFields = (fields: readonly ProfileField[], demographics: Record<string, unknown>) =>
  fields.filter((f) => f.required && (demographics[f.key] === undefined || demographics[f.key] === ''))
