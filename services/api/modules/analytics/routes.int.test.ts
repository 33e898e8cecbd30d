import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { rollUp } from '../../../../domains/analytics/rollups.js'
import { rollUpDays } from '../../../../domains/analytics/query/days.js'
import { recordEvents, type EventRow } from '../../../../domains/analytics/service.js'

const DAY = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)
const at = (hhmm: string) => new Date(`${DAY}T${hhmm}:00Z`)

describe('analytics query API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let leads: string[]

  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    leads = (await db.current.owner<{ id: string }[]>`insert into marketing.leads (tenant_id) select ${tenant.id} from generate_series(1, 3) returning id`).map((r) => r.id)
    const [l1, l2, l3] = leads as [string, string, string]
    let n = 0
    const ev = (name: string, time: string, more: Partial<EventRow> = {}): EventRow => ({ name, occurredAt: at(time), dedupeKey: `t:${n++}`, ...more })
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [
      ev('lead.created', '10:00', { leadId: l1, properties: { leadSource: 'whatsapp' } }),
      ev('lead.created', '10:00', { leadId: l2, properties: { leadSource: 'whatsapp' } }),
      ev('lead.created', '10:00', { leadId: l3, properties: { leadSource: 'web_form' } }),
      // Two visitors already linked to their leads, two not.
      ev('form.viewed', '10:00', { anonymousId: 'a1', leadId: l1, properties: { formId: 'f1' } }),
      ev('form.viewed', '10:01', { anonymousId: 'a2', leadId: l2, properties: { formId: 'f1' } }),
      ev('form.viewed', '10:02', { anonymousId: 'a3', properties: { formId: 'f1' } }),
      ev('form.viewed', '10:03', { anonymousId: 'a4', properties: { formId: 'f1' } }),
      ev('form.submitted', '10:10', { leadId: l1, properties: { formId: 'f1' } }),
      ev('form.submitted', '10:10', { leadId: l2, properties: { formId: 'f1' } }),
      // First responses: 120 s, 600 s, 300 s (the second reply to l3 is not a first response).
      ev('whatsapp.message_received', '11:00', { leadId: l1 }),
      ev('whatsapp.message_sent', '11:02', { leadId: l1, properties: { messageId: 'm1' } }),
      ev('whatsapp.message_received', '11:00', { leadId: l2 }),
      ev('whatsapp.message_sent', '11:10', { leadId: l2, properties: { messageId: 'm2' } }),
      ev('whatsapp.message_received', '12:00', { leadId: l3 }),
      ev('whatsapp.message_sent', '12:05', { leadId: l3, properties: { messageId: 'm3' } }),
      ev('whatsapp.message_sent', '12:30', { leadId: l3, properties: { messageId: 'm4' } }),
      ev('whatsapp.message_delivered', '12:31', { leadId: l1, properties: { messageId: 'm1' } }),
      ev('whatsapp.message_delivered', '12:31', { leadId: l2, properties: { messageId: 'm2' } }),
      ev('whatsapp.message_delivered', '12:31', { leadId: l3, properties: { messageId: 'm3' } }),
      ev('whatsapp.message_read', '12:32', { leadId: l1, properties: { messageId: 'm1' } }),
      ev('whatsapp.message_read', '12:32', { leadId: l2, properties: { messageId: 'm2' } }),
      ev('lead.converted', '13:00', { leadId: l1 }),
    ]))
    await rollUp(db.current.sql, { tenantId: tenant.id })
    await rollUpDays(db.current.sql, { tenantId: tenant.id })
  })
  afterAll(() => app.close())

  const query = (payload: unknown, key = tenant.adminKey) =>
    app.inject({ method: 'POST', url: '/v1/analytics/query', headers: bearer(key), payload: payload as object })
  const funnel = (qs: string, key = tenant.adminKey) => app.inject({ method: 'GET', url: `/v1/analytics/funnels?${qs}`, headers: bearer(key) })

  it('answers the dashboard KPIs of a day, with the watermark and where the answer came from', async () => {
    const res = await query({
      metrics: ['events', 'leads', 'visitors', 'delivery_rate', 'read_rate', 'conversion_rate', 'form_conversion_rate', 'median_first_response_seconds'],
      dateRange: [DAY, DAY],
    })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.results).toEqual([{ dimensions: [], metrics: [22, 3, 4, 0.75, 0.6667, 0.3333, 0.5, 300] }])
    expect(body.meta).toMatchObject({
      source: 'rollup+raw', timezone: 'UTC', watermark: expect.any(String),
      dateRange: { from: `${DAY}T00:00:00.000Z`, to: new Date(Date.parse(`${DAY}T00:00:00Z`) + 86_400_000).toISOString() },
      rawReason: expect.stringMatching(/median/),
    })
    expect(body.query).toMatchObject({ metrics: expect.any(Array), dateRange: [DAY, DAY], timezone: 'UTC' })
  })

  it('groups by dimensions under filters, from rollups alone when the period is rolled up', async () => {
    const bySource = (await query({ metrics: ['events'], dateRange: [DAY, DAY], dimensions: ['event:form'], filters: [['is', 'event:name', ['form.viewed', 'form.submitted']]] })).json()
    expect(bySource.results).toEqual([{ dimensions: ['f1'], metrics: [6] }])
    expect(bySource.meta).toMatchObject({ source: 'rollup', rawAfter: null, rawBuckets: 0 })

    const hours = (await query({ metrics: ['events', 'delivery_rate'], dateRange: [DAY, DAY], dimensions: ['time:hour'], filters: [['contains', 'event:name', ['whatsapp']]] })).json()
    // A ratio is of the bucket's own events: at 12:00 three deliveries of the hour's two sends (one was sent at 11:02).
    // A time series has every hour of the day; those without events are zeros (and ratios without a denominator null).
    expect(hours.results).toHaveLength(24)
    expect(hours.results).toEqual(Array.from({ length: 24 }, (_, h) => {
      const hour = `${DAY}T${String(h).padStart(2, '0')}:00:00`
      return { dimensions: [hour], metrics: h === 11 ? [4, 0] : h === 12 ? [8, 1.5] : [0, null] }
    }))
  })

  it('reads a dimension the rollups lack from raw events, and says why', async () => {
    const res = (await query({ metrics: ['events'], dateRange: [DAY, DAY], dimensions: ['lead:source'], filters: [['is', 'event:name', ['lead.created']]] })).json()
    expect(res.results).toEqual([{ dimensions: ['whatsapp'], metrics: [2] }, { dimensions: ['web_form'], metrics: [1] }])
    expect(res.meta).toMatchObject({ source: 'raw', rawReason: 'lead:source is not a rollup dimension' })
  })

  it('orders, limits and compares with the previous period', async () => {
    const res = (await query({
      metrics: ['events'], dateRange: [DAY, DAY], dimensions: ['event:name'], orderBy: [['events', 'desc'], ['event:name', 'asc']], limit: 2, compare: 'previous_period',
    })).json()
    expect(res.results).toEqual([
      { dimensions: ['form.viewed'], metrics: [4], comparison: { dimensions: ['form.viewed'], metrics: [0], change: [null] } },
      { dimensions: ['whatsapp.message_sent'], metrics: [4], comparison: { dimensions: ['whatsapp.message_sent'], metrics: [0], change: [null] } },
    ])
    expect(res.meta.totalRows).toBe(8)
    expect(res.meta.comparisonDateRange.to).toBe(`${DAY}T00:00:00.000Z`)
  })

  it('answers in the query timezone when one is given', async () => {
    const res = (await query({ metrics: ['events'], dateRange: [DAY, DAY], dimensions: ['time:day'], timezone: 'Asia/Tokyo', filters: [['is', 'event:name', ['lead.converted']]] })).json()
    // 13:00 UTC is 22:00 in Tokyo: the same day there.
    expect(res.results).toEqual([{ dimensions: [DAY], metrics: [1] }])
    expect(res.meta.timezone).toBe('Asia/Tokyo')
    expect(res.meta.dateRange.from).toBe(new Date(Date.parse(`${DAY}T00:00:00+09:00`)).toISOString())
  })

  it('counts a funnel of unique leads and visitors doing the steps in order', async () => {
    const res = await funnel('steps=form.viewed,form.submitted,lead.converted&dateRange=7d&window=1d')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({
      steps: [
        { name: 'form.viewed', subjects: 4, conversionFromPrevious: 1, conversionFromFirst: 1 },
        { name: 'form.submitted', subjects: 2, conversionFromPrevious: 0.5, conversionFromFirst: 0.5 },
        { name: 'lead.converted', subjects: 1, conversionFromPrevious: 0.5, conversionFromFirst: 0.25 },
      ],
      meta: { source: 'raw', windowSeconds: 86_400 },
    })
    // Out of order (converted before viewing) does not count, nor does a step outside the window.
    const reversed = (await funnel('steps=lead.converted,form.viewed&dateRange=7d')).json()
    expect(reversed.steps.map((s: { subjects: number }) => s.subjects)).toEqual([1, 0])
    const tight = (await funnel('steps=form.viewed,form.submitted&dateRange=7d&window=5m')).json()
    expect(tight.steps.map((s: { subjects: number }) => s.subjects)).toEqual([4, 0])
    const filtered = (await funnel(`steps=${encodeURIComponent(JSON.stringify([{ name: 'form.viewed', filters: [['is', 'event:form', ['f2']]] }, { name: 'form.submitted' }]))}`)).json()
    expect(filtered.steps).toEqual([
      { name: 'form.viewed', subjects: 0, conversionFromPrevious: 1, conversionFromFirst: null },
      { name: 'form.submitted', subjects: 0, conversionFromPrevious: null, conversionFromFirst: null },
    ])
  })

  it.each<[string, unknown, RegExp]>([
    ['an unknown metric', { metrics: ['pageviews'], dateRange: '7d' }, /unknown metric "pageviews"; valid metrics: events, leads, visitors, conversion_rate, .*median_first_response_seconds/],
    ['an unknown dimension', { metrics: ['events'], dateRange: '7d', dimensions: ['visit:city'] }, /unknown dimension "visit:city"; valid dimensions: time:hour, time:day, .*event:name/],
    ['an unknown filter dimension', { metrics: ['events'], dateRange: '7d', filters: [['is', 'event:colour', ['red']]] }, /unknown dimension "event:colour"/],
    ['a range beyond the retention', { metrics: ['events'], dateRange: ['2020-01-01', '2020-01-31'] }, /before the retention period: events are kept 90 days/],
    ['an unknown timezone', { metrics: ['events'], dateRange: '7d', timezone: 'Mars/Olympus' }, /unknown timezone "Mars\/Olympus"/],
    ['an unknown range', { metrics: ['events'], dateRange: 'yesterday' }, /invalid body.dateRange/],
    ['no metrics', { metrics: [], dateRange: '7d' }, /invalid body.metrics/],
    ['an order by a key not in the query', { metrics: ['events'], dateRange: '7d', orderBy: [['leads', 'desc']] }, /cannot order by "leads"/],
    ['an impossible date', { metrics: ['events'], dateRange: ['2026-02-30', '2026-03-01'] }, /2026-02-30 is not a date/],
  ])('refuses %s with 400 naming it', async (_, payload, message) => {
    const res = await query(payload)
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(message) })
  })

  it.each<[string, string, RegExp]>([
    ['one step', 'steps=form.viewed', /2 to 8 steps/],
    ['a bad window', 'steps=a.b,c.d&window=7w', /invalid querystring.window/],
    ['steps that are not JSON', 'steps=[{', /not valid JSON/],
    ['an unknown dimension in a step filter', `steps=${encodeURIComponent('[{"name":"a.b","filters":[["is","visit:city",["x"]]]},{"name":"c.d"}]')}`, /steps.0: unknown dimension "visit:city"/],
    ['a range beyond the retention', 'steps=a.b,c.d&dateRange=2020-01-01,2020-01-02', /retention/],
  ])('refuses a funnel with %s', async (_, qs, message) => {
    const res = await funnel(qs)
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(message)
  })

  it("refuses a range beyond the tenant's own shorter retention", async () => {
    const t = await makeTenant(db.current.sql)
    await db.current.owner`
      insert into privacy.retention_settings (tenant_id, analytics_events_days, messages_days, interactions_days, exports_days, updated_by)
      values (${t.id}, 30, null, null, 7, 'test')`
    const from = new Date(Date.now() - 40 * 86_400_000).toISOString().slice(0, 10)
    const res = await query({ metrics: ['events'], dateRange: [from, DAY] }, t.adminKey)
    expect(res.statusCode).toBe(400)
    expect(res.json().error.message).toMatch(/events are kept 30 days/)
    expect((await query({ metrics: ['events'], dateRange: '30d' }, t.adminKey)).statusCode).toBe(200)
  })

  describe('security', () => {
    it('lets a read-only key query and read funnels', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      const res = await query({ metrics: ['events'], dateRange: [DAY, DAY] }, readOnly.key)
      expect(res.statusCode).toBe(200)
      expect(res.json().results[0].metrics).toEqual([22])
      expect((await funnel('steps=form.viewed,form.submitted', readOnly.key)).statusCode).toBe(200)
    })

    it('refuses a request without a valid key', async () => {
      const res = await app.inject({ method: 'POST', url: '/v1/analytics/query', payload: { metrics: ['events'], dateRange: '7d' } })
      expect(res.statusCode).toBe(401)
      expect((await funnel('steps=a.b,c.d', 'wrong-key')).statusCode).toBe(401)
    })

    it("never counts another tenant's events, whatever the body says", async () => {
      const res = await query({ metrics: ['events', 'leads'], dateRange: [DAY, DAY], tenantId: tenant.id, site_id: tenant.id }, other.adminKey)
      expect(res.statusCode).toBe(200)
      expect(res.json().results).toEqual([{ dimensions: [], metrics: [0, 0] }])
      const f = (await funnel('steps=form.viewed,form.submitted', other.adminKey)).json()
      expect(f.steps.map((s: { subjects: number }) => s.subjects)).toEqual([0, 0])
    })
  })
})

describe('analytics query API in the OpenAPI document', () => {
  const db = useTestDatabase()
  it('describes the query body, its filters and the response', async () => {
    const app = await buildTestApi(db.current)
    try {
      const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json()
      const query = doc.paths['/v1/analytics/query'].post
      expect(query.tags).toEqual(['analytics'])
      expect(JSON.stringify(query.requestBody)).toContain('metrics')
      expect(JSON.stringify(query.requestBody)).toContain('median_first_response_seconds')
      expect(JSON.stringify(query.responses['200'])).toContain('watermark')
      expect(doc.paths['/v1/analytics/funnels'].get.parameters.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['steps', 'dateRange', 'window']))
    } finally {
      await app.close()
    }
  })
})
