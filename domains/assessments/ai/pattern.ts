/**
 * The pattern of a result: the inputs that matter to its analysis, banded, and nothing else. The prompt is written
 * from the pattern alone (prompt.ts), so two results with the same pattern get the same prompt, and a cached
 * analysis is exactly what the provider would have written for either: the cache is sound, not approximate.
 *
 * Banded:
 * - a scored answer → its points tier among the question's options: low / mid / high (thirds of the question's
 *   points range); an answer to an unscored choice question → its option id; numbers → fifths of their range;
 * - free text → never (it could name anyone, and the provider never sees it);
 * - profile fields → choice: the option id; number: decades for an age, fifths of the range otherwise; text: never;
 * - the result → its band and each category's level (thirds of the observed category scale, see levelOf).
 */
import { createHash } from 'node:crypto'
import type { AnswerValue, Category, ProfileField, Question, Rubric } from '../schemas.js'

export const PROMPT_VERSION = 1

export interface PatternSource {
  assessment: { type: string; name: string }
  versionId: string
  rubricVersion: number
  questions: readonly Question[]
  categories: readonly Category[]
  rubric: Pick<Rubric, 'points' | 'bands'>
  profileFields: readonly ProfileField[]
  answers: Readonly<Record<string, AnswerValue>>
  demographics: Readonly<Record<string, string | number>>
  result: { band: string | null; bandLabel: string | null; categoryScores: Readonly<Record<string, number>>; recommendations: readonly string[] }
}

export type Tier = 'low' | 'mid' | 'high'

export interface Pattern {
  assessment: { type: string; name: string }
  versionId: string
  rubricVersion: number
  band: { key: string | null; label: string | null }
  categories: { key: string; name: string; level: Tier }[]
  answers: { id: string; text: string; value: string }[]
  profile: { key: string; label: string; value: string }[]
  /** The rubric's own advice for this result (the band's and the categories'), which the provider may build on. */
  advice: string[]
  provider: string
  model: string | null
  promptVersion: number
}

const tierOf = (value: number, lo: number, hi: number): Tier => {
  if (!(hi > lo)) return 'mid'
  const t = (value - lo) / (hi - lo)
  return t < 1 / 3 ? 'low' : t > 2 / 3 ? 'high' : 'mid'
}

const fifthOf = (value: number, lo: number | undefined, hi: number | undefined): string => {
  if (lo === undefined || hi === undefined || !(hi > lo)) {
    // No range declared: the order of magnitude and the sign.
    if (value === 0) return '0'
    const m = Math.floor(Math.log10(Math.abs(value)))
    return `${value < 0 ? '-' : ''}1e${m}`
  }
  const i = Math.min(4, Math.max(0, Math.floor(((value - lo) / (hi - lo)) * 5)))
  return `q${i + 1}/5`
}

/** The points tier of a choice answer (a multiple choice: of its points' sum against the question's possible sums). */
function answerBand(q: Question, value: AnswerValue, points: Record<string, number> | undefined): string | null {
  if (value === null || value === undefined) return null
  if (q.type === 'text') return null
  if (q.type === 'number') return typeof value === 'number' ? fifthOf(value, q.min, q.max) : null
  const keyOf = (v: AnswerValue): string[] => Array.isArray(v) ? v.map(String) : typeof v === 'boolean' ? [v ? 'yes' : 'no'] : [String(v)]
  const chosen = keyOf(value)
  if (!points || Object.keys(points).length === 0) return q.type === 'multiple_choice' ? [...chosen].sort().join('+') : chosen.join('')
  const all = Object.values(points)
  let lo: number
  let hi: number
  if (q.type === 'multiple_choice') {
    lo = all.filter((p) => p < 0).reduce((a, b) => a + b, 0)
    hi = all.filter((p) => p > 0).reduce((a, b) => a + b, 0)
  } else {
    lo = Math.min(...all)
    hi = Math.max(...all)
  }
  const got = chosen.reduce((sum, k) => sum + (points[k] ?? 0), 0)
  return tierOf(got, lo, hi)
}

function profileBand(f: ProfileField, value: string | number | undefined): string | null {
  if (value === undefined || value === '') return null
  if (f.type === 'text') return null
  if (f.type === 'choice') return String(value)
  const n = Number(value)
  if (!Number.isFinite(n)) return null
  if (/age/i.test(f.key)) {
    const d = Math.floor(n / 10) * 10
    return `${d}-${d + 9}`
  }
  return fifthOf(n, f.min, f.max)
}

/**
 * A category's level. Category scores are sums or percentages depending on the rubric; the tiers are taken over the
 * category's possible range when it can be derived from its questions' points, else over 0..100 (percent).
 */
function levelOf(key: string, score: number, questions: readonly Question[], points: Rubric['points']): Tier {
  let lo = 0
  let hi = 0
  let known = false
  for (const q of questions) {
    if (q.category !== key) continue
    const p = points[q.id]
    if (!p || Object.keys(p).length === 0) continue
    known = true
    const all = Object.values(p)
    if (q.type === 'multiple_choice') {
      lo += all.filter((x) => x < 0).reduce((a, b) => a + b, 0)
      hi += all.filter((x) => x > 0).reduce((a, b) => a + b, 0)
    } else {
      lo += Math.min(0, ...all)
      hi += Math.max(...all)
    }
  }
  // A percent-scored category (0..100) whose raw range is larger than 100 is still read as a percentage.
  if (!known || score > hi || score < lo) return tierOf(score, 0, 100)
  return tierOf(score, lo, hi)
}

/**
 * `answers` (the default): the pattern has each scored answer's tier, so the analysis can speak to single answers.
 * `categories`: only the band, the categories' levels and the profile: coarser, so far more participants share a
 * pattern (see the bench), at the price of a less specific text.
 */
export type PatternDetail = 'answers' | 'categories'

export function patternOf(src: PatternSource, provider: { name: string; model: string | null }, detail: PatternDetail = 'answers'): Pattern {
  const answers: Pattern['answers'] = []
  for (const q of detail === 'answers' ? src.questions : []) {
    const band = answerBand(q, src.answers[q.id] ?? null, src.rubric.points[q.id])
    if (band !== null) answers.push({ id: q.id, text: q.text, value: band })
  }
  const profile: Pattern['profile'] = []
  for (const f of src.profileFields) {
    const band = profileBand(f, src.demographics[f.key])
    if (band !== null) profile.push({ key: f.key, label: f.label, value: band })
  }
  return {
    assessment: src.assessment,
    versionId: src.versionId,
    rubricVersion: src.rubricVersion,
    band: { key: src.result.band, label: src.result.bandLabel },
    categories: src.categories.map((c) => ({ key: c.key, name: c.name, level: levelOf(c.key, src.result.categoryScores[c.key] ?? 0, src.questions, src.rubric.points) })),
    answers,
    profile,
    advice: [...src.result.recommendations],
    provider: provider.name,
    model: provider.model,
    promptVersion: PROMPT_VERSION,
  }
}

/** A canonical JSON (keys sorted), so equal patterns hash equally whatever the order they were built in. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`
  return JSON.stringify(v ?? null)
}

export const patternHash = (p: Pattern): Buffer => createHash('sha256').update(canonicalJson(p)).digest()

