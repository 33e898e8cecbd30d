import type postgres from 'postgres'
import type { Tx } from '../../lib/db.js'

/**
 * The assessment and partner reports' daily rollup (analytics.assessment_rollups, migration 0054), from the platform
 * events the assessments domain records (platform-events.ts: assessment.*, link.*, commission.*). The analytics
 * roll-up job rebuilds a tenant day here whenever it rebuilds that day's KPIs (rollups.ts): the day's rows deleted,
 * then one insert … group by over the day's raw events, never an increment, so a duplicate (kept out of raw by its
 * dedupe key) or a late event (which dirties its bucket, hence its day, again) cannot make it drift. The reports
 * answer the days before the watermark from here and the rest from raw through the same select (`rawRows`), so both
 * paths count the same way.
 *
 * Every measure of a day reads only that day's events (the start of a completed session is found by its dedupe key in
 * analytics.event_keys, whose time never changes): a day before the watermark is final.
 *
 * Measures (dimensions in brackets):
 *   started, completed [assessment, channel]   sessions started / completed
 *   duration [assessment, value = whole seconds] completed sessions by completed − started, floored to the second
 *   score [assessment, band, value = total score] completed sessions by their latest score: +1 at the score given at
 *                                             completion, and each assessment.rescored moves the result on its own day
 *                                             (−1 at the previous score and band, +1 at the new one); summed over a
 *                                             range holding the completion, a result counts once, at its latest score
 *   reached [assessment, question]            the question was shown: first of a session, or next after a first answer
 *   answered [assessment, question]           first answers (revision 1) to the question
 *   response [assessment, question, value = ms in 100 ms steps] first answers by response time, floored to 100 ms
 *   clicked [partner, link, channel = outcome], visitors [partner, link] (distinct visitors of the day), inactive [partner, link]
 *   link_started, link_completed [partner, link, channel]
 *   converted, refunded [partner, link, currency]  purchases attributed to the link (last touch) and their refunds; amount
 *   commission_created|approved|paid|rejected|reversed [partner, link, currency]  commissions entering that status; amount
 */

/** The event names read, all recorded by the platform (source assessments or partner_link), never by clients. */
export const ASSESSMENT_ROLLUP_EVENTS = [
  'assessment.started', 'assessment.answered', 'assessment.completed', 'assessment.rescored',
  'link.clicked', 'link.inactive_visit', 'link.started', 'link.completed', 'link.converted', 'link.refunded',
  'commission.created', 'commission.approved', 'commission.paid', 'commission.rejected', 'commission.reversed',
] as const

export interface RollupRow {
  measure: string; assessmentId: string; partnerId: string; linkId: string; channel: string; questionId: string; band: string
  value: number; currency: string; events: number; amount: string
}

const NUMBER = '^-?[0-9]+(\\.[0-9]+)?$'

/**
 * The per-day rows of the events `where` selects (alias e), as (day, measure, dimensions…, events, amount). A
 * property used as a number is read only when it is one: an odd event is left out, never fails the roll-up.
 */
function dailyRows(tx: Tx, tz: string, where: postgres.PendingQuery<postgres.Row[]> | postgres.Fragment) {
  const t = (key: string) => tx`left(coalesce(p ->> ${key}, ''), 200)`
  const num = (key: string) => tx`case when p ->> ${key} ~ ${NUMBER} then (p ->> ${key})::numeric end`
  return tx`
    with ev as (
      select e.name, e.properties as p, e.occurred_at, e.anonymous_id, e.dedupe_key, (e.occurred_at at time zone ${tz})::date as day
        from analytics.events e
       where e.tenant_id = core.current_tenant_id() and e.name = any(${ASSESSMENT_ROLLUP_EVENTS as unknown as string[]}::text[])
         and e.source in ('assessments', 'partner_link') and ${where}
    ), first_answers as (
      select * from ev where name = 'assessment.answered' and right(dedupe_key, 2) = ':1'
    ), rows (day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount) as (
      select day, substr(name, 12), ${t('assessmentId')}, '', '', ${t('channel')}, '', '', 0::numeric, '', count(*), 0::numeric
        from ev where name in ('assessment.started', 'assessment.completed') group by 1, 2, 3, 6
      union all
      select ev.day, 'duration', ${t('assessmentId')}, '', '', '', '', '', floor(extract(epoch from ev.occurred_at - k.occurred_at))::numeric, '', count(*), 0
        from ev join analytics.event_keys k on k.tenant_id = core.current_tenant_id() and k.dedupe_key = 'assessment:started:' || (ev.p ->> 'sessionId')
       where ev.name = 'assessment.completed' and ev.occurred_at >= k.occurred_at group by 1, 3, 9
      union all
      select day, 'score', assessment_id, '', '', '', '', band, value, '', sum(n), 0
        from (select day, ${t('assessmentId')} as assessment_id, ${t('band')} as band, ${num('totalScore')} as value, 1 as n
                from ev where name in ('assessment.completed', 'assessment.rescored')
              union all
              select day, ${t('assessmentId')}, ${t('previousBand')}, ${num('previousTotalScore')}, -1
                from ev where name = 'assessment.rescored') x
       where value is not null group by 1, 3, 8, 9 having sum(n) <> 0
      union all
      select day, 'reached', ${t('assessmentId')}, '', '', '', left(x.question_id, 200), '', 0, '', count(*), 0
        from (select day, p, p ->> 'firstQuestionId' as question_id from ev where name = 'assessment.started'
              union all select day, p, p ->> 'nextQuestionId' from first_answers) x
       where x.question_id is not null group by 1, 3, 7
      union all
      select day, 'answered', ${t('assessmentId')}, '', '', '', ${t('questionId')}, '', 0, '', count(*), 0 from first_answers group by 1, 3, 7
      union all
      select day, 'response', ${t('assessmentId')}, '', '', '', ${t('questionId')}, '', floor(${num('responseMs')} / 100) * 100, '', count(*), 0
        from first_answers where ${num('responseMs')} is not null group by 1, 3, 7, 9
      union all
      select day, 'clicked', '', ${t('partnerId')}, ${t('linkId')}, ${t('outcome')}, '', '', 0, '', count(*), 0
        from ev where name = 'link.clicked' group by 1, 4, 5, 6
      union all
      select day, 'visitors', '', ${t('partnerId')}, ${t('linkId')}, '', '', '', 0, '', count(distinct anonymous_id), 0
        from ev where name = 'link.clicked' and anonymous_id is not null group by 1, 4, 5
      union all
      select day, 'inactive', '', ${t('partnerId')}, ${t('linkId')}, '', '', '', 0, '', count(*), 0
        from ev where name = 'link.inactive_visit' group by 1, 4, 5
      union all
      select day, 'link_' || substr(name, 6), '', ${t('partnerId')}, ${t('linkId')}, ${t('channel')}, '', '', 0, '', count(*), 0
        from ev where name in ('link.started', 'link.completed') group by 1, 2, 4, 5, 6
      union all
      select day, substr(name, 6), '', ${t('partnerId')}, ${t('linkId')}, '', '', '', 0, ${t('currency')}, count(*), coalesce(sum(${num('amount')}), 0)
        from ev where name in ('link.converted', 'link.refunded') group by 1, 2, 4, 5, 10
      union all
      select day, 'commission_' || substr(name, 12), '', ${t('partnerId')}, ${t('linkId')}, '', '', '', 0, ${t('currency')}, count(*), coalesce(sum(${num('amount')}), 0)
        from ev where name like 'commission.%' group by 1, 2, 4, 5, 10
    )
    select * from rows where value is not null`
}

const dayStart = (tx: Tx, day: string, tz: string) => tx`(${day}::date::timestamp at time zone ${tz})`

/**
 * The days' rows rebuilt from raw: deleted, then one insert. Called by the roll-up (rollups.ts) with the days whose
 * KPIs it rebuilds, in its transaction, under the tenant. Returns the rows written.
 */
export async function rebuildAssessmentRollups(tx: Tx, days: string[], tz: string): Promise<number> {
  if (days.length === 0) return 0
  await tx`delete from analytics.assessment_rollups where tenant_id = core.current_tenant_id() and day = any(${days}::date[])`
  const first = days[0]!
  const last = days[days.length - 1]!
  const rows = dailyRows(tx, tz, tx`
    e.occurred_at >= ${dayStart(tx, first, tz)} and e.occurred_at < (${last}::date + 1)::timestamp at time zone ${tz}
    and (e.occurred_at at time zone ${tz})::date = any(${days}::date[])`)
  return tx`
    insert into analytics.assessment_rollups (tenant_id, day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount)
    select core.current_tenant_id(), day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount
      from (${rows}) r`.then((r) => r.count)
}

/** What a report reads: one assessment's rows, or one partner's. */
export type RollupScope = { assessmentId: string } | { partnerId: string }

const scopeOfRollup = (tx: Tx, s: RollupScope) => ('assessmentId' in s ? tx`assessment_id = ${s.assessmentId}` : tx`partner_id = ${s.partnerId}`)
const scopeOfEvents = (tx: Tx, s: RollupScope) =>
  'assessmentId' in s ? tx`e.properties ->> 'assessmentId' = ${s.assessmentId}` : tx`e.properties ->> 'partnerId' = ${s.partnerId}`

export interface ReportPlan {
  timezone: string
  /** Every bucket before it is rolled up and clean. */
  watermark: Date
  /** Whole tenant days [fromDay, toDay) read from the rollup (null: none). */
  rolledUp: { fromDay: string | null; toDay: string } | null
  /** The instants read from raw events. */
  raw: { from: Date | null; to: Date }[]
}

/**
 * Splits [from, to) (from null: the beginning) into the whole tenant days that end at or before the watermark (from
 * the rollup) and the rest (from raw): a partial first day, and everything from the first day not wholly behind the
 * watermark (or not wholly in the range) to `to`.
 */
export async function planReport(tx: Tx, range: { from: Date | null; to: Date }, watermark: Date): Promise<ReportPlan> {
  const [p] = await tx<{ timezone: string; fromDay: string | null; fromDayStart: Date | null; toDay: string; toDayStart: Date }[]>`
    with t as (select coalesce((select timezone from core.tenants where id = core.current_tenant_id()), 'UTC') as tz),
    d as (
      select t.tz,
             case when ${range.from}::timestamptz is null then null
                  when date_trunc('day', ${range.from}::timestamptz at time zone t.tz) = ${range.from}::timestamptz at time zone t.tz
                    then (${range.from}::timestamptz at time zone t.tz)::date
                  else (${range.from}::timestamptz at time zone t.tz)::date + 1 end as from_day,
             (least(${range.to}::timestamptz, ${watermark}::timestamptz) at time zone t.tz)::date as to_day
        from t
    )
    select tz as timezone, from_day::text as from_day, (from_day::timestamp at time zone tz) as from_day_start,
           to_day::text as to_day, (to_day::timestamp at time zone tz) as to_day_start
      from d`
  const { timezone, fromDay, fromDayStart, toDay, toDayStart } = p!
  if (fromDay !== null && fromDay >= toDay) return { timezone, watermark, rolledUp: null, raw: [{ from: range.from, to: range.to }] }
  const raw: ReportPlan['raw'] = []
  if (range.from && fromDayStart && range.from < fromDayStart) raw.push({ from: range.from, to: fromDayStart })
  if (toDayStart < range.to) raw.push({ from: toDayStart, to: range.to })
  return { timezone, watermark, rolledUp: { fromDay, toDay }, raw }
}

/**
 * The report's rows over the plan: the rollup's days and the raw windows, merged (counts and amounts summed, exact).
 * `width` buckets scores (floor(score / width) × width) in SQL, on exact numerics.
 */
export async function reportRows(tx: Tx, plan: ReportPlan, scope: RollupScope, scoreWidth = 10): Promise<(RollupRow & { bucket: number | null })[]> {
  const parts: ReturnType<Tx>[] = []
  if (plan.rolledUp) {
    const { fromDay, toDay } = plan.rolledUp
    parts.push(tx`
      select measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount
        from analytics.assessment_rollups
       where tenant_id = core.current_tenant_id() and ${scopeOfRollup(tx, scope)}
         and ${fromDay === null ? tx`true` : tx`day >= ${fromDay}::date`} and day < ${toDay}::date`)
  }
  for (const w of plan.raw) {
    const rows = dailyRows(tx, plan.timezone, tx`${scopeOfEvents(tx, scope)} and ${w.from ? tx`e.occurred_at >= ${w.from}` : tx`true`} and e.occurred_at < ${w.to}`)
    parts.push(tx`select measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount from (${rows}) r`)
  }
  if (parts.length === 0) return []
  const union = parts.reduce((acc, part) => tx`${acc} union all ${part}`)
  return tx<(RollupRow & { bucket: number | null })[]>`
    select measure, assessment_id, partner_id, link_id, channel, question_id, band, value::float8 as value, currency,
           case when measure = 'score' then (floor(value / ${scoreWidth}::numeric) * ${scoreWidth}::numeric)::float8 end as bucket,
           sum(events)::float8 as events, sum(amount)::text as amount
      from (${union}) u
     group by measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency
     order by measure, value`
}

export interface AssessmentRollupMismatch {
  day: string; measure: string; assessmentId: string; partnerId: string; linkId: string; channel: string; questionId: string
  band: string; value: number; currency: string; raw: number; rolledUp: number; rawAmount: string; rolledUpAmount: string
}

export interface AssessmentReconciliation {
  /** Whole tenant days of the range behind the watermark, compared row by row. */
  days: number
  /** Rows compared (rolled up, raw, or both). */
  rows: number
  /** Σ|raw − rolled up| over the rows' event counts: 0 when the rollup is exact. */
  difference: number
  /** Σ|raw − rolled up| over the rows' amounts (money measures), exact. */
  amountDifference: string
  /** The first 100 rows that differ, by day. */
  mismatches: AssessmentRollupMismatch[]
}

/**
 * The assessment rollup against raw events, row by row: every whole tenant day of [from, to) behind the watermark
 * (final: the roll-up has rebuilt it since its last event), its stored rows fully joined with the same select the
 * roll-up writes them from. Days not yet behind the watermark are the roll-up's pending work, not drift.
 */
export async function reconcileAssessmentRollups(tx: Tx, range: { from: Date; to: Date }, watermark: Date): Promise<AssessmentReconciliation> {
  const plan = await planReport(tx, range, watermark)
  const none: AssessmentReconciliation = { days: 0, rows: 0, difference: 0, amountDifference: '0', mismatches: [] }
  if (!plan.rolledUp || plan.rolledUp.fromDay === null) return none
  const { fromDay, toDay } = plan.rolledUp
  const tz = plan.timezone
  const raw = dailyRows(tx, tz, tx`e.occurred_at >= ${dayStart(tx, fromDay, tz)} and e.occurred_at < ${dayStart(tx, toDay, tz)}`)
  const compared = tx`
    select day::text as day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency,
           coalesce(x.events, 0) as raw, coalesce(r.events, 0) as rolled_up, coalesce(x.amount, 0) as raw_amount, coalesce(r.amount, 0) as rolled_up_amount
      from (select day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency, events, amount
              from analytics.assessment_rollups
             where tenant_id = core.current_tenant_id() and day >= ${fromDay}::date and day < ${toDay}::date) r
      full join (${raw}) x using (day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency)`
  const [summary] = await tx<{ days: number; rows: number; difference: number; amountDifference: string }[]>`
    select (${toDay}::date - ${fromDay}::date) as days, count(*)::int as rows,
           coalesce(sum(abs(raw - rolled_up)), 0)::float8 as difference, trim_scale(coalesce(sum(abs(raw_amount - rolled_up_amount)), 0))::text as amount_difference
      from (${compared}) c`
  const mismatches = summary!.rows === 0 || (summary!.difference === 0 && Number(summary!.amountDifference) === 0) ? [] : await tx<AssessmentRollupMismatch[]>`
    select day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value::float8 as value, currency,
           raw::float8 as raw, rolled_up::float8 as rolled_up, trim_scale(raw_amount)::text as raw_amount, trim_scale(rolled_up_amount)::text as rolled_up_amount
      from (${compared}) c
     where raw <> rolled_up or raw_amount <> rolled_up_amount
     order by day, measure, assessment_id, partner_id, link_id, channel, question_id, band, value, currency
     limit 100`
  return { ...summary!, mismatches }
}
