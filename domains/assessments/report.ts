import { type Sql, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import * as q from './queries.js'
import { definitionOf } from './service.js'

/**
 * The assessment's report: starts, completions, completion rate, median time to complete, the score distribution
 * (by band and in fixed-width buckets) and, per question of the published version, how many answered it, how many
 * stopped there (sessions not completed whose current question it is) and the median response time.
 *
 * Read from the assessments tables, not the analytics rollups: the rollups' dimensions (migration 0022) have no
 * assessment or question column, so they cannot split by assessment or question. The same facts are in the event
 * stream (assessment.started / answered / completed), for funnels and PostHog.
 */

export interface ReportQuery { from?: Date; to?: Date; bucketWidth: number }

export const assessmentReport = (sql: Sql, tenantId: string, assessmentId: string, query: ReportQuery) =>
  withTenant(sql, tenantId, async (tx) => {
    const a = await q.findAssessment(tx, assessmentId)
    if (!a) throw new AppError('NOT_FOUND', `assessment ${assessmentId} not found`)
    const from = query.from ?? null
    const to = query.to ?? null
    const [totals, scores, questions] = [await q.reportTotals(tx, assessmentId, from, to), await q.reportScores(tx, assessmentId, from, to, query.bucketWidth), await q.reportQuestions(tx, assessmentId, from, to)]
    const version = a.publishedVersion === null ? null : await q.findVersionByNumber(tx, assessmentId, a.publishedVersion)
    const order = version ? definitionOf(version).questions : []
    const byId = new Map(questions.map((x) => [x.questionId, x]))
    const perQuestion = order.map((question) => {
      const row = byId.get(question.id)
      const answered = row?.answered ?? 0
      const stoppedHere = row?.stoppedHere ?? 0
      const reached = answered + stoppedHere
      return { questionId: question.id, text: question.text, reached, answered, stoppedHere, dropOffRate: reached === 0 ? 0 : round4(stoppedHere / reached), medianResponseMs: row?.medianResponseMs ?? null }
    })
    const bands = new Map<string, number>()
    const buckets = new Map<number, number>()
    for (const s of scores) {
      bands.set(s.band ?? '', (bands.get(s.band ?? '') ?? 0) + s.sessions)
      buckets.set(s.bucket, (buckets.get(s.bucket) ?? 0) + s.sessions)
    }
    return {
      assessmentId,
      from: from?.toISOString() ?? null,
      to: to?.toISOString() ?? null,
      starts: totals.starts,
      completions: totals.completions,
      completionRate: totals.starts === 0 ? 0 : round4(totals.completions / totals.starts),
      medianSecondsToComplete: totals.medianSeconds === null ? null : Math.round(totals.medianSeconds * 10) / 10,
      byChannel: {
        web: { starts: totals.webStarts, completions: totals.webCompletions },
        whatsapp: { starts: totals.whatsappStarts, completions: totals.whatsappCompletions },
      },
      scoreDistribution: {
        bucketWidth: query.bucketWidth,
        buckets: [...buckets].sort((x, y) => x[0] - y[0]).map(([from, sessions]) => ({ from, to: from + query.bucketWidth, sessions })),
        bands: [...bands].map(([band, sessions]) => ({ band: band || null, sessions })),
      },
      questions: perQuestion,
    }
  })

const round4 = (x: number) => Math.round(x * 10_000) / 10_000
