import { type Sql, withTenant } from '../../lib/db.js'
import { assessmentRescored, recordPlatformEvents } from '../analytics/platform-events.js'
import type { Logger } from '../../lib/logger.js'
import { type PatternDetail, patternOf } from './ai/pattern.js'
import type { CompiledDefinition } from './definition.js'
import * as q from './queries.js'
import { ANALYZE_RESULT_TASK, type AnswerValue, Demographics, RESCORE_TASK, type RescorePayload } from './schemas.js'
import { sameScore, score, type Score } from './scoring.js'
import { compiledVersion } from './service.js'

/**
 * Re-scoring after a rubric change. A run (assessments.rescoring_runs) walks the completed sessions of every
 * version with the same questions as the rubric's version, in id order, one batch per transaction: it reads the
 * batch with its answers in one query, scores it in memory with the same `score` as completion, and writes the
 * changed results in one statement, each one's previous form appended to assessments.result_history (history is
 * kept: a result's earlier totals and bands stay queryable; the result row itself always holds the newest). The
 * batch, its history, the cursor and the next batch's job commit together, so a crash or a retry repeats at most
 * the batch that did not commit, and a result already scored by this rubric is left alone (nothing doubled).
 * Results that come out equal are only stamped with the new rubric version (no history row). A result whose total
 * or band changed gets one `assessment.rescored` platform event (old and new score and band), in the same
 * transaction, keyed by run and result: the report's score distribution follows it (analytics/assessment-rollups.ts).
 *
 * A result whose banded pattern (ai/pattern.ts: its band, category levels, answer tiers, profile bands and the
 * rubric's advice, the inputs its AI analysis is written from) differs after the re-score gets a new analysis job
 * in the batch's transaction; one whose pattern is the same keeps its analysis and gets no job.
 */

export interface RescoreOptions {
  batchSize: number
  log?: Logger
  /** Batches per job before it hands over to a new one (bounded job time). */
  batchesPerJob?: number
  /** The pattern detail the analysis cache uses (AI_PATTERN_DETAIL): what counts as a changed pattern. */
  patternDetail?: PatternDetail
}

export interface BatchOutcome { done: boolean; rescored: number; unchanged: number; skipped: number; reanalyzed: number }

/**
 * A result's banded pattern without what names its rubric (version ids and numbers) or the provider: equal keys
 * mean the analysis would be written from the same inputs, so it stays valid.
 */
export function bandedPatternKey(compiled: CompiledDefinition, answers: ReadonlyMap<string, AnswerValue>, demographics: unknown,
  result: { band: string | null; bandLabel: string | null; categoryScores: Record<string, number>; recommendations: readonly string[] }, detail: PatternDetail = 'answers'): string {
  const d = compiled.definition
  const p = patternOf({
    assessment: { type: '', name: '' }, versionId: '', rubricVersion: 0,
    questions: d.questions, categories: d.categories, rubric: d.rubric, profileFields: d.profileFields,
    answers: Object.fromEntries(answers), demographics: Demographics.catch({}).parse(demographics ?? {}), result,
  }, { name: '', model: null }, detail)
  // Flat arrays in the definition's order, not canonicalJson (7× dearer, measured): versions a run compares have the
  // same questions, so their order is the same; a reordered category list only costs an extra analysis.
  return JSON.stringify([p.band.key, p.band.label, p.categories.map((c) => [c.key, c.name, c.level]), p.answers.map((x) => [x.id, x.value]),
    p.profile.map((x) => [x.key, x.label, x.value]), p.advice])
}

/** One batch of a run. Returns null when the run is gone or no longer running. */
export async function rescoreOneBatch(sql: Sql, payload: RescorePayload, batchSize: number, detail: PatternDetail = 'answers'): Promise<BatchOutcome | null> {
  return withTenant(sql, payload.tenantId, async (tx) => {
    const run = await q.lockRun(tx, payload.runId)
    if (!run || run.status !== 'running') return null
    const { compiled } = await compiledVersion(tx, run.versionId)
    const rows = await q.rescoreBatch(tx, run, batchSize)
    const changed: { resultId: string; score: Score }[] = []
    const stamp: string[] = []
    const reanalyze: string[] = []
    const moved: Omit<Parameters<typeof assessmentRescored>[0], 'at'>[] = []
    let skipped = 0
    for (const row of rows) {
      // No answers left (erased) or no result: nothing to re-score from.
      if (!row.resultId || !row.answers) { skipped++; continue }
      const answers = new Map(Object.entries(row.answers).map(([k, v]) => [k, v.value] as const))
      const next = score(compiled, answers)
      const current = { totalScore: row.totalScore!, band: row.band, categoryScores: row.categoryScores!, recommendations: row.recommendations! }
      if (sameScore(next, current)) stamp.push(row.resultId)
      else {
        changed.push({ resultId: row.resultId, score: next })
        // Only a new total or band is an event (what the report's distribution counts); category-only changes are not.
        if (next.totalScore !== current.totalScore || next.band !== current.band) {
          moved.push({
            assessmentId: run.assessmentId, sessionId: row.sessionId, resultId: row.resultId, leadId: row.leadId, runId: run.id, rubricVersion: run.rubricVersion,
            previousTotalScore: current.totalScore, previousBand: current.band, totalScore: next.totalScore, band: next.band,
          })
        }
      }
      // The pattern before (the result as its own version scored it) and after (this rubric's score). Published
      // versions are cached compiled, so this costs no query.
      const before = (await compiledVersion(tx, row.scoredVersionId!)).compiled
      const was = bandedPatternKey(before, answers, row.demographics, { ...current, bandLabel: row.bandLabel }, detail)
      if (bandedPatternKey(compiled, answers, row.demographics, next, detail) !== was) reanalyze.push(row.resultId)
    }
    await q.replaceResults(tx, run.id, run.versionId, run.rubricVersion, changed)
    await q.stampResults(tx, run.versionId, run.rubricVersion, stamp)
    await q.enqueueAnalyzeResults(tx, ANALYZE_RESULT_TASK, payload.tenantId, reanalyze)
    if (moved.length > 0) {
      // The batch's transaction time (the results' rescored_at); keyed by run and result, so a retry records nothing twice.
      const at = (await tx<{ at: Date }[]>`select now() as at`)[0]!.at
      await recordPlatformEvents(tx, moved.map((m) => assessmentRescored({ ...m, at })))
    }
    const done = rows.length < batchSize
    await q.advanceRun(tx, run.id, { cursor: rows.at(-1)?.sessionId ?? run.cursor, rescored: changed.length, unchanged: stamp.length, skipped, done })
    return { done, rescored: changed.length, unchanged: stamp.length, skipped, reanalyzed: reanalyze.length }
  })
}

/** What the task runs: batches until the run is done or this job's share is used, then the next job continues. */
export async function rescoreRun(sql: Sql, payload: RescorePayload, options: RescoreOptions): Promise<{ batches: number; done: boolean }> {
  const perJob = options.batchesPerJob ?? 50
  for (let batches = 1; ; batches++) {
    const outcome = await rescoreOneBatch(sql, payload, options.batchSize, options.patternDetail)
    if (!outcome || outcome.done) return { batches, done: true }
    if (batches >= perJob) {
      await withTenant(sql, payload.tenantId, (tx) => q.enqueueRescore(tx, RESCORE_TASK, payload.tenantId, payload.runId))
      return { batches, done: false }
    }
  }
}

/** Records a run that cannot go on (its version is gone or does not compile): permanent, not retried. */
export const failRescoring = (sql: Sql, payload: RescorePayload, error: string) => withTenant(sql, payload.tenantId, (tx) => q.failRun(tx, payload.runId, error.slice(0, 2000)))
