import { beforeAll, describe, expect, it } from 'vitest'
import { testConfig } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { withTenant } from '../../lib/db.js'
import { type Filter, matchesFilters } from './filters.js'
import { LIVE_READERS, LiveFilters } from './live.js'
import type { LiveEventRow } from './queries.js'
import { rollUp } from './rollups.js'
import { runQuery } from './query/service.js'
import { FilterInput, type QueryBody } from './query/schemas.js'
import { recordEvents } from './service.js'

/**
 * One filter grammar: the live feed evaluates a filter in JavaScript (filters.ts matchesFilters), the query API
 * compiles it to SQL (query/queries.ts filterSql). For the same filters over the same events, both must pick the
 * same events, from raw rows and from rollups, including case folding of non-ASCII values.
 */
const FORMS = ['Spring-Promo', 'spring-promo', 'SÃO-PAULO', 'são-paulo', 'Straße', 'ÉCOLE', '']
const TEMPLATES = ['Welcome', 'welcome_back', 'PROMO']
const SOURCES = ['site', 'whatsapp', 'web_form']

const FILTERS: Filter[][] = [
  [['is', 'event:form', ['Spring-Promo']]],
  [['is', 'event:form', ['spring-promo'], { case_sensitive: false }]],
  [['is', 'event:form', ['são-paulo'], { case_sensitive: false }]],
  [['is_not', 'event:form', ['SÃO-PAULO'], { case_sensitive: false }]],
  [['contains', 'event:form', ['promo']]],
  [['contains', 'event:form', ['PROMO'], { case_sensitive: false }]],
  [['contains', 'event:form', ['ão'], { case_sensitive: false }]],
  [['contains', 'event:form', ['école'], { case_sensitive: false }]],
  [['contains_not', 'event:template', ['welcome'], { case_sensitive: true }]],
  [['contains_not', 'event:template', ['WELCOME'], { case_sensitive: false }]],
  [['is', 'event:form', ['']]],
  [['is_not', 'event:producer', ['site']], ['contains', 'event:name', ['form.']]],
  [['or', [['is', 'event:props:plan', ['PRO'], { case_sensitive: false }], ['not', ['contains', 'event:template', ['o']]]]]],
]

describe('one filter grammar for the live feed and the query API', () => {
  const db = useTestDatabase()
  const config = testConfig()
  let tenant: TestTenant
  let rows: LiveEventRow[]
  const now = new Date()

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { timezone: 'UTC' })
    const events = Array.from({ length: 210 }, (_, i) => ({
      name: i % 3 === 0 ? 'form.viewed' : i % 3 === 1 ? 'form.submitted' : 'whatsapp.message_sent',
      // Two hours ago: a closed, rolled-up bucket of today (UTC).
      occurredAt: new Date(Math.max(now.getTime() - 2 * 3600_000, Date.parse(now.toISOString().slice(0, 10)))),
      properties: {
        ...(FORMS[i % FORMS.length] ? { formId: FORMS[i % FORMS.length] } : {}),
        ...(i % 2 ? { templateName: TEMPLATES[i % TEMPLATES.length] } : {}),
        ...(i % 5 === 0 ? { plan: i % 10 ? 'Pro' : 'free' } : {}),
      },
      dedupeKey: `grammar:${i}`,
      source: SOURCES[i % SOURCES.length],
    }))
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, events as never))
    rows = (await db.current.owner<LiveEventRow[]>`
      select id::text, xact_id::text, name, occurred_at, lead_id, source, acq_source, acq_channel, country, device, browser, os, properties
        from analytics.events where tenant_id = ${tenant.id}`)
    await rollUp(db.current.sql, { now: new Date(now.getTime() + 3600_000), batchBuckets: 1000, budgetMs: 60_000 })
  }, 60_000)

  it.each(FILTERS.map((f) => [JSON.stringify(f), f] as const))('%s', async (_, filters) => {
    // Both endpoints accept it as written.
    expect(LiveFilters.parse(filters)).toEqual(filters)
    expect(filters.map((f) => FilterInput.parse(f))).toEqual(filters)
    const live = rows.filter((r) => matchesFilters(r, filters, LIVE_READERS)).length
    expect(live).toBeGreaterThan(0)
    expect(live).toBeLessThan(rows.length)
    const body = { metrics: ['events'], dateRange: 'day', dimensions: [], filters, limit: 10, offset: 0 } as unknown as QueryBody
    const run = (extra: Partial<QueryBody>) => runQuery(db.current.sql, config, tenant.id, { ...body, ...extra })
    const count = (res: Awaited<ReturnType<typeof run>>) => Number(res.results[0]?.metrics[0] ?? 0)
    const raw = await run({ source: 'raw' })
    expect(raw.meta.source).toBe('raw')
    expect(count(raw)).toBe(live)
    const rolled = await run({})
    // Filters on dimensions the rollups keep are answered from them (the rest of today after the watermark is raw).
    if (!JSON.stringify(filters).includes('event:props:')) expect(rolled.meta.source).not.toBe('raw')
    expect(count(rolled)).toBe(live)
  })
})
