import { type Sql, type Tx, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { planReport, type ReportPlan, reportRows, type RollupRow } from '../analytics/assessment-rollups.js'
import { metaOf } from './report-meta.js'
import { readWatermark } from '../analytics/rollups.js'
import * as q from './queries.js'
import * as rq from './report-queries.js'
import { definitionOf } from './service.js'

/**
 * The assessment's report over [from, to): sessions started and completed in it (completion rate = completed /
 * started, both counted in the period, like the analytics KPIs), the median time to complete, the score distribution
 * (by band and in fixed-width buckets) and, per question of the published version, how many reached it, answered it
 * and stopped there, with the median response time.
 *
 * Read from the analytics side: the days behind the rollups' watermark from analytics.assessment_rollups, the rest
 * from the raw events through the same select (domains/analytics/assessment-rollups.ts); `meta` says which. Medians
 * are exact medians of the stored values, which are durations floored to the whole second and response times floored
 * to 100 ms: the rollup keeps a histogram of those values per day, so a period's median combines days exactly.
 * Scores are a histogram of exact totals: any bucket width is exact. A result counts at its latest score: the
 * completion adds it at its score, each re-score (assessment.rescored) moves it on the re-score's day, so a period
 * holding both shows the new score, one holding only the re-score shows the move. `reached` counts a question when it was shown first or came next
 * after a first answer; a question shown again after going back is not reached twice.
 */

export interface ReportQuery { from?: Date; to?: Date; bucketWidth: number; /** The clock (tests): the watermark is read at it. */ now?: Date }

export { ReportMeta, metaOf } from './report-meta.js'

/** The plan of a report over [from, to) at `now`: whole days behind the watermark from the rollup, the rest raw. */
export async function reportPlan(tx: Tx, from: Date | null, to: Date, now: Date, rawOnly = false): Promise<ReportPlan> {
  // Raw only: a watermark at the range's start leaves no whole day to the rollup (tests compare both paths).
  const watermark = rawOnly ? new Date(0) : (await readWatermark(tx, now)).watermark
  return planReport(tx, { from, to }, watermark)
}

/** The median (percentile_cont(0.5)) of a histogram of values with counts. */
export function histogramMedian(entries: { value: number; count: number }[]): number | null {
  const sorted = entries.filter((e) => e.count > 0).sort((a, b) => a.value - b.value)
  const n = sorted.reduce((s, e) => s + e.count, 0)
  if (n === 0) return null
  const at = (index: number) => {
    let seen = 0
    for (const e of sorted) {
      seen += e.count
      if (index < seen) return e.value
    }
    return sorted[sorted.length - 1]!.value
  }
  const p = (n - 1) / 2
  const lo = at(Math.floor(p))
  const hi = at(Math.ceil(p))
  return lo + (hi - lo) * (p - Math.floor(p))
}

/** The facts a report is made of, from the rollup and raw rows or from the assessments tables (the same shape). */
export interface ReportFacts {
  started: { channel: string; sessions: number }[]
  completed: { channel: string; sessions: number }[]
  durations: { value: number; count: number }[]
  scores: { value: number; bucket: number; band: string; count: number }[]
  reached: { questionId: string; count: number }[]
  answered: { questionId: string; count: number }[]
  responses: { questionId: string; value: number; count: number }[]
}

export function factsOfRows(rows: (RollupRow & { bucket: number | null })[]): ReportFacts {
  const of = (m: string) => rows.filter((r) => r.measure === m)
  return {
    started: of('started').map((r) => ({ channel: r.channel, sessions: r.events })),
    completed: of('completed').map((r) => ({ channel: r.channel, sessions: r.events })),
    durations: of('duration').map((r) => ({ value: r.value, count: r.events })),
    scores: of('score').map((r) => ({ value: r.value, bucket: r.bucket!, band: r.band, count: r.events })),
    reached: of('reached').map((r) => ({ questionId: r.questionId, count: r.events })),
    answered: of('answered').map((r) => ({ questionId: r.questionId, count: r.events })),
    responses: of('response').map((r) => ({ questionId: r.questionId, value: r.value, count: r.events })),
  }
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000
const sumBy = <T>(xs: T[], key: (x: T) => string, n: (x: T) => number) => {
  const m = new Map<string, number>()
  for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + n(x))
  return m
}

/** The report's body from its facts and the published version's questions (in their order). */
export function reportOf(facts: ReportFacts, questions: { id: string; text: string }[], bucketWidth: number) {
  const starts = facts.started.reduce((s, r) => s + r.sessions, 0)
  const completions = facts.completed.reduce((s, r) => s + r.sessions, 0)
  const channel = (xs: { channel: string; sessions: number }[], c: string) => xs.filter((x) => x.channel === c).reduce((s, x) => s + x.sessions, 0)
  const median = histogramMedian(facts.durations)
  const reached = sumBy(facts.reached, (r) => r.questionId, (r) => r.count)
  const answered = sumBy(facts.answered, (r) => r.questionId, (r) => r.count)
  // A re-score moves a result between buckets (−1 and +1 rows): a bucket or band it left empty is not shown.
  const nonEmpty = <K,>(m: Map<K, number>) => new Map([...m].filter(([, n]) => n !== 0))
  const buckets = nonEmpty(sumBy(facts.scores, (r) => String(r.bucket), (r) => r.count))
  const bands = nonEmpty(sumBy(facts.scores, (r) => r.band, (r) => r.count))
  return {
    starts,
    completions,
    completionRate: starts === 0 ? 0 : round4(completions / starts),
    medianSecondsToComplete: median === null ? null : Math.round(median * 10) / 10,
    byChannel: {
      web: { starts: channel(facts.started, 'web'), completions: channel(facts.completed, 'web') },
      whatsapp: { starts: channel(facts.started, 'whatsapp'), completions: channel(facts.completed, 'whatsapp') },
    },
    scoreDistribution: {
      bucketWidth,
      buckets: [...buckets].map(([from, sessions]) => ({ from: Number(from), to: Number(from) + bucketWidth, sessions })).sort((x, y) => x.from - y.from),
      bands: [...bands].map(([band, sessions]) => ({ band: band || null, sessions })).sort((x, y) => String(x.band).localeCompare(String(y.band))),
    },
    questions: questions.map((question) => {
      const a = answered.get(question.id) ?? 0
      const r = Math.max(reached.get(question.id) ?? 0, a)
      const medianMs = histogramMedian(facts.responses.filter((x) => x.questionId === question.id))
      return { questionId: question.id, text: question.text, reached: r, answered: a, stoppedHere: r - a, dropOffRate: r === 0 ? 0 : round4((r - a) / r), medianResponseMs: medianMs }
    }),
  }
}

async function questionsOf(tx: Tx, assessmentId: string) {
  const a = await q.findAssessment(tx, assessmentId)
  if (!a) throw new AppError('NOT_FOUND', `assessment ${assessmentId} not found`)
  const version = a.publishedVersion === null ? null : await q.findVersionByNumber(tx, assessmentId, a.publishedVersion)
  return version ? definitionOf(version).questions.map((x) => ({ id: x.id, text: x.text })) : []
}

/** The report from the analytics rollups (and raw events after the watermark). `rawOnly`: every event raw (tests). */
export const assessmentReport = (sql: Sql, tenantId: string, assessmentId: string, query: ReportQuery & { rawOnly?: boolean }) =>
  withTenant(sql, tenantId, async (tx) => {
    const questions = await questionsOf(tx, assessmentId)
    const now = query.now ?? new Date()
    const to = query.to ?? now
    const from = query.from ?? null
    if (from && from >= to) throw new AppError('BAD_REQUEST', '`from` must be before `to`')
    const plan = await reportPlan(tx, from, to, now, query.rawOnly)
    const rows = await reportRows(tx, plan, { assessmentId }, query.bucketWidth)
    return {
      assessmentId, from: from?.toISOString() ?? null, to: to.toISOString(),
      ...reportOf(factsOfRows(rows), questions, query.bucketWidth),
      meta: metaOf(plan),
    }
  })

/**
 * The same report computed from the assessments tables (sessions, responses, results): the reconciliation's other
 * side. It agrees with the events' account when the range holds the sessions whole and nobody went back to change an
 * answer (the tables keep only the latest answer per question, the events every one).
 */
export const assessmentReportFromTables = (sql: Sql, tenantId: string, assessmentId: string, query: { from: Date; to: Date; bucketWidth: number }) =>
  withTenant(sql, tenantId, async (tx) => {
    const questions = await questionsOf(tx, assessmentId)
    const facts = await rq.reportFactsFromTables(tx, assessmentId, query.from, query.to, query.bucketWidth)
    return { assessmentId, from: query.from.toISOString(), to: query.to.toISOString(), ...reportOf(facts, questions, query.bucketWidth) }
  })
