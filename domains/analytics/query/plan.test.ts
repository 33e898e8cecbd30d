import { describe, expect, it } from 'vitest'
import { parseQuery, resolveRange } from './grammar.js'
import { planPeriod, type PeriodContext } from './plan.js'
import type { QueryBody } from './schemas.js'

const q = (over: Partial<QueryBody>) => parseQuery({ metrics: ['events'], dateRange: '7d', dimensions: [], filters: [], limit: 100, offset: 0, ...over })
const at = (s: string) => new Date(s)
const ctx = (over: Partial<PeriodContext> = {}): PeriodContext => ({
  from: at('2026-11-01T00:00:00Z'), to: at('2026-11-08T00:00:00Z'), fromDay: '2026-11-01', toDay: '2026-11-08',
  timezone: 'UTC', tenantZone: true, offsets: [0, 0],
  watermark: at('2026-11-07T10:35:00Z'), watermarkDay: '2026-11-07', watermarkDayStart: at('2026-11-07T00:00:00Z'), dirty: [], staleDays: [],
  ...over,
})

describe('planPeriod', () => {
  it('reads whole days before the watermark day from the day level, hours and buckets up to the watermark, raw events after it', () => {
    const plan = planPeriod(q({}), ctx())
    expect(plan.counts!.days).toEqual({ fromDay: '2026-11-01', toDay: '2026-11-07', excludeDays: [] })
    expect(plan.counts!.hours).toEqual({ intervals: [[at('2026-11-07T00:00:00Z'), at('2026-11-07T10:00:00Z')]], exclude: [] })
    expect(plan.counts!.rollup).toEqual({ intervals: [[at('2026-11-07T10:00:00Z'), at('2026-11-07T10:35:00Z')]], exclude: [] })
    expect(plan.levels).toEqual(['day', 'hour', '5min', 'raw'])
    expect(plan.counts!.raw.intervals).toEqual([[at('2026-11-07T10:35:00Z'), at('2026-11-08T00:00:00Z')]])
    expect(plan.source).toBe('rollup+raw')
    expect(plan.rawAfter).toEqual(at('2026-11-07T10:35:00Z'))
  })

  it('answers from rollups alone when the period ends before the watermark', () => {
    const plan = planPeriod(q({}), ctx({ to: at('2026-11-05T00:00:00Z'), toDay: '2026-11-05' }))
    expect(plan.source).toBe('rollup')
    expect(plan.counts!.raw.intervals).toEqual([])
  })

  it('reads a day whose day rows wait for a rebuild from the hour level', () => {
    const plan = planPeriod(q({}), ctx({ staleDays: [{ day: '2026-11-02', dayStart: at('2026-11-02T00:00:00Z'), dayEnd: at('2026-11-03T00:00:00Z') }] }))
    expect(plan.counts!.days!.excludeDays).toEqual(['2026-11-02'])
    expect(plan.counts!.hours!.intervals).toEqual([
      [at('2026-11-02T00:00:00Z'), at('2026-11-03T00:00:00Z')], [at('2026-11-07T00:00:00Z'), at('2026-11-07T10:00:00Z')]])
    expect(plan.counts!.rollup!.intervals).toEqual([[at('2026-11-07T10:00:00Z'), at('2026-11-07T10:35:00Z')]])
  })

  it('reads hours, and periods in another zone than the tenant, from the hour level', () => {
    expect(planPeriod(q({ dimensions: ['time:hour'] }), ctx()).counts).toMatchObject({
      days: null, hours: { intervals: [[at('2026-11-01T00:00:00Z'), at('2026-11-07T10:00:00Z')]] } })
    expect(planPeriod(q({}), ctx({ tenantZone: false })).counts).toMatchObject({
      days: null, hours: { intervals: [[at('2026-11-01T00:00:00Z'), at('2026-11-07T10:00:00Z')]], exclude: [] },
      rollup: { intervals: [[at('2026-11-07T10:00:00Z'), at('2026-11-07T10:35:00Z')]] } })
  })

  // Asia/Kolkata is +05:30: its midnights are at 18:30 UTC, inside the hour 18:00–19:00.
  const kolkata = (over: Partial<PeriodContext> = {}) => ctx({
    timezone: 'Asia/Kolkata', tenantZone: false, offsets: [330, 330],
    from: at('2026-10-31T18:30:00Z'), to: at('2026-11-03T18:30:00Z'), fromDay: '2026-11-01', toDay: '2026-11-04', ...over,
  })

  it('reads a half-hour zone by day from hours that hold no local midnight, and those hours from buckets', () => {
    const plan = planPeriod(q({ dimensions: ['time:day'] }), kolkata())
    expect(plan.counts!.hours).toEqual({
      intervals: [[at('2026-10-31T19:00:00Z'), at('2026-11-03T18:00:00Z')]],
      exclude: [at('2026-11-01T18:00:00Z'), at('2026-11-02T18:00:00Z')],
    })
    expect(plan.counts!.rollup!.intervals).toEqual([
      [at('2026-10-31T18:30:00Z'), at('2026-10-31T19:00:00Z')], [at('2026-11-01T18:00:00Z'), at('2026-11-01T19:00:00Z')],
      [at('2026-11-02T18:00:00Z'), at('2026-11-02T19:00:00Z')], [at('2026-11-03T18:00:00Z'), at('2026-11-03T18:30:00Z')]])
  })

  it('reads a half-hour zone without a time dimension from every whole hour, and by hour from buckets only', () => {
    expect(planPeriod(q({}), kolkata()).counts!.hours).toEqual({ intervals: [[at('2026-10-31T19:00:00Z'), at('2026-11-03T18:00:00Z')]], exclude: [] })
    const byHour = planPeriod(q({ dimensions: ['time:hour'] }), kolkata())
    expect(byHour.counts!.hours).toBeNull()
    expect(byHour.counts!.rollup!.intervals).toEqual([[at('2026-10-31T18:30:00Z'), at('2026-11-03T18:30:00Z')]])
    expect(byHour.levels).toEqual(['5min'])
  })

  it('reads dirty buckets (late events) from raw events and leaves them out of the rollup', () => {
    const bucket = at('2026-11-03T12:05:00Z')
    const plan = planPeriod(q({ metrics: ['events', 'leads'] }), ctx({
      to: at('2026-11-05T00:00:00Z'), toDay: '2026-11-05',
      dirty: [{ bucket, day: '2026-11-03', dayStart: at('2026-11-03T00:00:00Z'), dayEnd: at('2026-11-04T00:00:00Z') }],
    }))
    expect(plan.counts!.days!.excludeDays).toEqual(['2026-11-03'])
    expect(plan.counts!.hours).toEqual({ intervals: [[at('2026-11-03T00:00:00Z'), at('2026-11-04T00:00:00Z')]], exclude: [at('2026-11-03T12:00:00Z')] })
    expect(plan.counts!.rollup!.intervals).toEqual([[at('2026-11-03T12:00:00Z'), at('2026-11-03T13:00:00Z')]])
    expect(plan.counts!.rollup!.exclude).toEqual([bucket])
    expect(plan.counts!.raw.buckets).toEqual([bucket])
    expect(plan.uniques!.rollup!.excludeDays).toEqual(['2026-11-03'])
    expect(plan.uniques!.raw.intervals).toEqual([[at('2026-11-03T00:00:00Z'), at('2026-11-04T00:00:00Z')]])
    expect(plan.source).toBe('rollup+raw')
  })

  it('uses only whole buckets of a period given in instants, and raw events for its edges', () => {
    const plan = planPeriod(q({}), ctx({ from: at('2026-11-01T00:02:00Z'), to: at('2026-11-02T00:00:30Z'), fromDay: null, toDay: null }))
    expect(plan.counts!.hours).toMatchObject({ intervals: [[at('2026-11-01T01:00:00Z'), at('2026-11-02T00:00:00Z')]] })
    expect(plan.counts!.rollup).toMatchObject({ intervals: [[at('2026-11-01T00:05:00Z'), at('2026-11-01T01:00:00Z')]] })
    expect(plan.counts!.raw.intervals).toEqual([
      [at('2026-11-01T00:02:00Z'), at('2026-11-01T00:05:00Z')], [at('2026-11-02T00:00:00Z'), at('2026-11-02T00:00:30Z')]])
  })

  it.each<[string, Partial<QueryBody>, Partial<PeriodContext>, RegExp]>([
    ['a dimension the rollup lacks', { dimensions: ['visit:browser'] }, {}, /visit:browser is not a rollup dimension/],
    ['a filter on a property', { filters: [['is', 'event:props:plan', ['pro']]] }, {}, /event:props:plan/],
    ['nothing rolled up yet', {}, { watermark: null, watermarkDay: null, watermarkDayStart: null }, /nothing is rolled up/],
    ['a zone whose offset is not a multiple of 5 minutes', { dimensions: ['time:hour'] }, { offsets: [-44.5, -44.5] }, /multiple of 5 minutes/],
  ])('reads raw events for %s', (_, body, c, reason) => {
    const plan = planPeriod(q(body), ctx(c))
    expect(plan.source).toBe('raw')
    expect(plan.counts!.rollup).toBeNull()
    expect(plan.rawReason).toMatch(reason)
  })

  it('serves hours of +05:45 from 5-minute buckets', () => {
    expect(planPeriod(q({ dimensions: ['time:hour'] }), ctx({ timezone: 'Asia/Kathmandu', offsets: [345, 345] })).counts!.rollup).not.toBeNull()
  })

  it.each<[string, Partial<QueryBody>, Partial<PeriodContext>]>([
    ['another zone than the tenant', {}, { tenantZone: false }],
    ['hours', { dimensions: ['time:hour'] }, {}],
    ['a channel', { dimensions: ['visit:channel'] }, {}],
    ['instants', {}, { fromDay: null, toDay: null }],
  ])('counts unique leads from raw events for %s', (_, body, c) => {
    const plan = planPeriod(q({ metrics: ['leads'], ...body }), ctx(c))
    expect(plan.uniques!.rollup).toBeNull()
    expect(plan.source).toBe('raw')
  })

  it('counts unique leads of whole days before the watermark day from daily uniques', () => {
    const plan = planPeriod(q({ metrics: ['leads'], dimensions: ['time:day'], filters: [['is', 'event:name', ['lead.created']]] }), ctx())
    expect(plan.uniques!.rollup).toEqual({ fromDay: '2026-11-01', toDay: '2026-11-07', excludeDays: [] })
    expect(plan.uniques!.raw.intervals).toEqual([[at('2026-11-07T00:00:00Z'), at('2026-11-08T00:00:00Z')]])
  })
})

describe('resolveRange', () => {
  const now = at('2026-11-15T02:00:00Z')
  it("takes today's date in the query's zone", () => {
    expect(resolveRange('day', now, 'UTC', 90).range).toEqual({ kind: 'dates', from: '2026-11-15', to: '2026-11-16' })
    expect(resolveRange('day', now, 'America/Sao_Paulo', 90).range).toEqual({ kind: 'dates', from: '2026-11-14', to: '2026-11-15' })
  })
  it('gives the previous period of the same length, and the previous month for month', () => {
    expect(resolveRange('7d', now, 'UTC', 90).previous).toEqual({ kind: 'dates', from: '2026-11-02', to: '2026-11-09' })
    expect(resolveRange('month', now, 'UTC', 90)).toMatchObject({ range: { from: '2026-11-01', to: '2026-12-01' }, previous: { from: '2026-10-01', to: '2026-11-01' } })
    expect(resolveRange(['2026-11-10', '2026-11-12'], now, 'UTC', 90).previous).toEqual({ kind: 'dates', from: '2026-11-07', to: '2026-11-10' })
  })
  it.each<[string, QueryBody['dateRange'], RegExp]>([
    ['beyond the retention', ['2026-08-01', '2026-11-01'], /before the retention period: events are kept 90 days \(from 2026-08-17\)/],
    ['an impossible date', ['2026-02-30', '2026-03-01'], /2026-02-30 is not a date/],
    ['an end before the start', ['2026-11-10', '2026-11-01'], /end is before the start/],
    ['a date and a datetime', ['2026-11-10', '2026-11-11T00:00:00Z'], /not one of each/],
  ])('refuses %s', (_, input, message) => {
    expect(() => resolveRange(input, now, 'UTC', 90)).toThrow(message)
  })
})

describe('parseQuery', () => {
  it.each<[string, Partial<QueryBody>, RegExp]>([
    ['an unknown metric', { metrics: ['pageviews'] }, /unknown metric "pageviews"; valid metrics: events, leads, visitors, conversion_rate/],
    ['an unknown dimension', { dimensions: ['visit:city'] }, /unknown dimension "visit:city"; valid dimensions: time:hour, .*visit:channel/],
    ['an unknown filter dimension', { filters: [['is', 'event:colour', ['red']]] }, /unknown dimension "event:colour"/],
    ['two time dimensions', { dimensions: ['time:day', 'time:hour'] }, /at most one time dimension/],
    ['a filter on time', { filters: [['is', 'time:day', ['2026-11-01']]] }, /narrow the dateRange/],
    ['an order by a key not in the query', { orderBy: [['visitors', 'desc']] }, /cannot order by "visitors"/],
    ['a median by channel', { metrics: ['median_first_response_seconds'], dimensions: ['visit:channel'] }, /time dimension only/],
  ])('refuses %s', (_, body, message) => {
    expect(() => q(body)).toThrow(message)
  })
})
