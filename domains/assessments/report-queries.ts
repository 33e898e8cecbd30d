import type { Tx } from '../../lib/db.js'
import type { ReportFacts } from './report.js'

/**
 * The assessment report's facts from the assessments tables over [from, to), counted as the events count them
 * (domains/analytics/assessment-rollups.ts): the reconciliation's other side. Starts by started_at, completions,
 * durations (floored to the second) and scores by completed_at, each score as it stood at `to` (the result's oldest
 * history row replaced at or after `to`, else the result itself: a re-score moves the result as its event does),
 * answers and response times (floored to 100 ms) by answered_at; reached = answered + sessions not completed whose
 * current question it is.
 */
export async function reportFactsFromTables(tx: Tx, assessmentId: string, from: Date, to: Date, width: number): Promise<ReportFacts> {
  const inRange = (col: string) => tx`${tx(col)} >= ${from} and ${tx(col)} < ${to}`
  const started = await tx<{ channel: string; sessions: number }[]>`
    select channel, count(*)::int as sessions from assessments.sessions where assessment_id = ${assessmentId} and ${inRange('started_at')} group by 1`
  const completed = await tx<{ channel: string; sessions: number }[]>`
    select channel, count(*)::int as sessions from assessments.sessions
     where assessment_id = ${assessmentId} and status = 'completed' and ${inRange('completed_at')} group by 1`
  const durations = await tx<{ value: number; count: number }[]>`
    select floor(extract(epoch from completed_at - started_at))::float8 as value, count(*)::int as count from assessments.sessions
     where assessment_id = ${assessmentId} and status = 'completed' and ${inRange('completed_at')} group by 1`
  const scores = await tx<{ value: number; bucket: number; band: string; count: number }[]>`
    select x.score::float8 as value, (floor(x.score / ${width}::numeric) * ${width}::numeric)::float8 as bucket, coalesce(x.band, '') as band, count(*)::int as count
      from assessments.results r join assessments.sessions s on s.id = r.session_id
      cross join lateral (
        select coalesce(h.total_score, r.total_score) as score, case when h.id is null then r.band else h.band end as band
          from (select 1) one
          left join lateral (select id, total_score, band from assessments.result_history
                              where result_id = r.id and replaced_at >= ${to} order by replaced_at, id limit 1) h on true) x
     where r.assessment_id = ${assessmentId} and s.status = 'completed' and s.completed_at >= ${from} and s.completed_at < ${to}
     group by 1, 2, 3`
  const answered = await tx<{ questionId: string; count: number }[]>`
    select x.question_id, count(*)::int as count
      from assessments.responses x join assessments.sessions s on s.id = x.session_id
     where s.assessment_id = ${assessmentId} and x.answered_at >= ${from} and x.answered_at < ${to} group by 1`
  const stopped = await tx<{ questionId: string; count: number }[]>`
    select current_question_id as question_id, count(*)::int as count from assessments.sessions
     where assessment_id = ${assessmentId} and status <> 'completed' and current_question_id is not null and ${inRange('started_at')} group by 1`
  const responses = await tx<{ questionId: string; value: number; count: number }[]>`
    select x.question_id, (floor(x.response_ms / 100.0) * 100)::float8 as value, count(*)::int as count
      from assessments.responses x join assessments.sessions s on s.id = x.session_id
     where s.assessment_id = ${assessmentId} and x.response_ms is not null and x.answered_at >= ${from} and x.answered_at < ${to} group by 1, 2`
  const reached = new Map<string, number>()
  for (const r of [...answered, ...stopped]) reached.set(r.questionId, (reached.get(r.questionId) ?? 0) + r.count)
  return { started, completed, durations, scores, reached: [...reached].map(([questionId, count]) => ({ questionId, count })), answered, responses }
}

export interface LinkFacts {
  linkId: string; clicks: number; uniqueVisitors: number; inactiveClicks: number; starts: number; completions: number
  conversions: number; revenue: string
  commissions: { created: string; approved: string; paid: string; rejected: string; reversed: string }
}

/**
 * A partner's facts per link from the partner tables over [from, to), counted as the events count them: clicks (not
 * bots, not inactive) and visitors per day by clicked_at, inactive visits, sessions started / completed through the
 * link, conversions net of refunds (purchased_at in, minus refunded_at in) with their revenue, and commission amounts
 * by the moment they entered each status (created: the purchase's time).
 */
export const partnerFactsFromTables = (tx: Tx, partnerId: string, from: Date, to: Date) =>
  tx<(Omit<LinkFacts, 'commissions'> & { created: string; approved: string; paid: string; rejected: string; reversed: string })[]>`
    select l.id as link_id,
           (select count(*) from assessments.link_clicks k where k.link_id = l.id and k.outcome <> 'inactive' and not k.is_bot and k.clicked_at >= ${from} and k.clicked_at < ${to})::int as clicks,
           (select count(distinct (k.visitor_id, (k.clicked_at at time zone t.tz)::date)) from assessments.link_clicks k
             where k.link_id = l.id and k.outcome <> 'inactive' and not k.is_bot and k.clicked_at >= ${from} and k.clicked_at < ${to})::int as unique_visitors,
           (select count(*) from assessments.link_clicks k where k.link_id = l.id and k.outcome = 'inactive' and k.clicked_at >= ${from} and k.clicked_at < ${to})::int as inactive_clicks,
           (select count(*) from assessments.sessions s where s.link_id = l.id and s.started_at >= ${from} and s.started_at < ${to})::int as starts,
           (select count(*) from assessments.sessions s where s.link_id = l.id and s.status = 'completed' and s.completed_at >= ${from} and s.completed_at < ${to})::int as completions,
           ((select count(*) from assessments.purchases y where y.link_id = l.id and y.purchased_at >= ${from} and y.purchased_at < ${to})
            - (select count(*) from assessments.purchases y where y.link_id = l.id and y.refunded_at >= ${from} and y.refunded_at < ${to}))::int as conversions,
           (coalesce((select sum(amount) from assessments.purchases y where y.link_id = l.id and y.purchased_at >= ${from} and y.purchased_at < ${to}), 0)
            - coalesce((select sum(amount) from assessments.purchases y where y.link_id = l.id and y.refunded_at >= ${from} and y.refunded_at < ${to}), 0))::text as revenue,
           coalesce(sum(c.amount) filter (where y.purchased_at >= ${from} and y.purchased_at < ${to}), 0)::text as created,
           coalesce(sum(c.amount) filter (where c.approved_at >= ${from} and c.approved_at < ${to}), 0)::text as approved,
           coalesce(sum(c.amount) filter (where c.paid_at >= ${from} and c.paid_at < ${to}), 0)::text as paid,
           coalesce(sum(c.amount) filter (where c.rejected_at >= ${from} and c.rejected_at < ${to}), 0)::text as rejected,
           coalesce(sum(c.amount) filter (where c.reversed_at >= ${from} and c.reversed_at < ${to}), 0)::text as reversed
      from assessments.links l
      cross join (select coalesce((select timezone from core.tenants where id = core.current_tenant_id()), 'UTC') as tz) t
      left join assessments.purchases y on y.link_id = l.id
      left join assessments.commissions c on c.purchase_id = y.id and c.partner_id = ${partnerId}
     where l.partner_id = ${partnerId}
     group by l.id, t.tz
     order by l.id`
