import { answerValue, type Answers, type CompiledDefinition, visibleAnswers } from './definition.js'
import { evaluate, roundTo } from './expression.js'
import type { Band } from './schemas.js'

/**
 * Scoring: a pure function of the compiled definition and the answers, used by the web path, the bot and
 * re-scoring alike, so identical answers give identical results whichever way they arrived. Only the answers of
 * questions shown for those answers count (a stale answer to a question hidden after going back does not).
 */

export interface Score {
  totalScore: number
  categoryScores: Record<string, number>
  formulaValues: Record<string, number>
  band: string | null
  bandLabel: string | null
  recommendations: string[]
}

/** Category scores and formulas keep 4 decimals, the total 2 (what bands compare). */
export const CATEGORY_DECIMALS = 4
export const TOTAL_DECIMALS = 2

export function bandFor(bands: readonly Band[], total: number): Band | null {
  let chosen: Band | null = bands[0] ?? null
  for (const b of bands) if (total >= b.min) chosen = b
  return chosen
}

export function score(c: CompiledDefinition, answers: Answers): Score {
  const def = c.definition
  const shown = visibleAnswers(def.questions, answers)
  const values = new Map<string, number>()
  for (const q of def.questions) values.set(q.id, answerValue(q, def.rubric.points[q.id], shown.get(q.id)))
  const qValue = (id: string) => values.get(id) ?? 0

  const categoryScores: Record<string, number> = {}
  for (const cat of c.categories) categoryScores[cat.key] = roundTo(evaluate(cat.expr, (_s, id) => qValue(id)), CATEGORY_DECIMALS)
  const formulaValues: Record<string, number> = {}
  const resolve = (scope: 'q' | 'c' | 'f', id: string) => (scope === 'q' ? qValue(id) : scope === 'c' ? categoryScores[id] ?? 0 : formulaValues[id] ?? 0)
  for (const f of c.formulas) formulaValues[f.key] = roundTo(evaluate(f.expr, resolve), CATEGORY_DECIMALS)
  const totalScore = roundTo(evaluate(c.total, resolve), TOTAL_DECIMALS)

  const band = bandFor(def.rubric.bands, totalScore)
  const recommendations = [...(band?.recommendations ?? [])]
  for (const cat of def.categories) {
    for (const r of cat.recommendations) if ((categoryScores[cat.key] ?? 0) < r.below) recommendations.push(r.text)
  }
  return { totalScore, categoryScores, formulaValues, band: band?.key ?? null, bandLabel: band?.label ?? null, recommendations }
}

/** Two scores are the same result (re-scoring leaves a result alone when nothing changed). */
export const sameScore = (a: Pick<Score, 'totalScore' | 'band' | 'categoryScores' | 'recommendations'>, b: Pick<Score, 'totalScore' | 'band' | 'categoryScores' | 'recommendations'>) =>
  a.totalScore === b.totalScore && a.band === b.band && sameRecord(a.categoryScores, b.categoryScores) &&
  a.recommendations.length === b.recommendations.length && a.recommendations.every((r, i) => r === b.recommendations[i])

// Stored as jsonb, whose keys come back in its own order: compare by key.
const sameRecord = (a: Record<string, number>, b: Record<string, number>) =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v)
