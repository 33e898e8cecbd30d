import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { rollUp } from '../../../../domains/analytics/rollups.js'
import { rollUpDays } from '../../../../domains/analytics/query/days.js'
import { actualLeads } from '../../../../domains/campaigns/performance/service.js'
import { mergeLeadsManually, resolveLead, upsertWhatsAppSenders } from '../../../../domains/marketing/leads/service.js'
import { bearer, buildTestApi, testConfig } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

describe('campaign performance: attribution, spend, plan vs reality', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let campaignId: string
  let planId: string
  const hourAgo = new Date(Date.now() - 60 * 60_000)
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    campaignId = (await db.current.owner<{ id: string }[]>`
      insert into campaigns.campaigns (tenant_id, name, utm_campaign, budget, currency) values (${tenant.id}, 'Spring launch', 'spring-launch', 3000, 'BRL') returning id`)[0]!.id
  })
  afterAll(() => app.close())

  const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, key = tenant.adminKey, headers: Record<string, string> = {}) =>
    app.inject({ method, url, headers: { ...bearer(key), ...headers }, ...(payload === undefined ? {} : { payload: payload as object }) })

  const formLead = (email: string, utm: Record<string, string>, t = tenant) => withTenant(db.current.sql, t.id, (tx) => resolveLead(tx, {
    email, phoneE164: null, phoneKey: null, name: null, company: null, fields: {}, source: 'web_form',
    sourceDetails: { formId: '00000000-0000-4000-8000-000000000001', utm, pageUrl: 'https://clinic.example/spring', referrer: null }, at: hourAgo,
  }, { tenantId: t.id, actor: 'form:test', reason: 'form_submission', requestId: null }))
  const ctwaLead = (n: number, adId: string) => withTenant(db.current.sql, tenant.id, (tx) => upsertWhatsAppSenders(tx, tenant.id, [{
    phoneKey: `55119${String(n).padStart(8, '0')}`, phoneE164: `+55119${String(n).padStart(8, '0')}`, waId: `55119${String(n).padStart(8, '0')}`, profileName: null,
    source: 'whatsapp_ad', sourceDetails: { referral: { sourceId: adId, sourceType: 'ad', ctwaClid: `clid-${n}`, headline: 'Spring offer' } }, at: hourAgo,
  }])).then((m) => [...m.values()][0]!)

  it('attributes leads first-touch by UTM code (any case) and click-to-WhatsApp ad id, and compares plan with reality per platform from the rollups', async () => {
    const plan = await call('POST', '/v1/media-plans', {
      name: 'Spring plan', campaignId, budget: '3000.00', currency: 'BRL', niche: 'health', leadToSalePct: '10', revenuePerSale: '500',
      allocations: [{ platform: 'meta', percent: '50', cpl: '30' }, { platform: 'whatsapp', percent: '30', cpl: '15' }, { platform: 'google', percent: '20', cpl: '60' }],
    })
    expect(plan.statusCode, plan.body).toBe(201)
    planId = plan.json().id
    const ads = await call('PUT', `/v1/campaigns/${campaignId}/ad-sources`, { adSourceIds: ['120210000000001', '120210000000002'] })
    expect(ads.statusCode, ads.body).toBe(200)

    // 3 Meta form leads (one with the code in another case), 1 Google lead, 1 lead of another campaign code, 2 CTWA leads, 1 CTWA lead of an unknown ad.
    const meta = [
      await formLead('a@example.com', { utm_source: 'facebook', utm_medium: 'cpc', utm_campaign: 'spring-launch' }),
      await formLead('b@example.com', { utm_source: 'instagram', utm_medium: 'paid', utm_campaign: 'Spring-Launch' }),
      await formLead('c@example.com', { utm_source: 'fb', utm_medium: 'cpc', utm_campaign: 'spring-launch' }),
    ]
    await formLead('d@example.com', { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'spring-launch' })
    await formLead('e@example.com', { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'winter-sale' })
    const wa = [await ctwaLead(1, '120210000000001'), await ctwaLead(2, '120210000000002')]
    await ctwaLead(3, '999')
    // A later touch with another code does not move the first one.
    await formLead('a@example.com', { utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'spring-launch' })

    const rows = await db.current.owner<{ leadId: string; platform: string; matchedOn: string; ctwaClid: string | null }[]>`
      select lead_id, platform, matched_on, ctwa_clid from marketing.lead_attributions where campaign_id = ${campaignId} order by platform, lead_id`
    expect(rows.map((r) => [r.platform, r.matchedOn]).sort()).toEqual([
      ['google', 'utm_campaign'], ['meta', 'utm_campaign'], ['meta', 'utm_campaign'], ['meta', 'utm_campaign'], ['whatsapp', 'ctwa_ad'], ['whatsapp', 'ctwa_ad'],
    ])
    expect(rows.filter((r) => r.platform === 'whatsapp').map((r) => r.ctwaClid).sort()).toEqual(['clid-1', 'clid-2'])

    // Statuses through the leads API: two Meta leads qualify, one of them converts; a WhatsApp lead converts directly.
    for (const [id, status] of [[meta[0]!.leadId, 'qualified'], [meta[1]!.leadId, 'qualified'], [meta[1]!.leadId, 'converted'], [wa[0]!, 'converted']] as const) {
      const res = await call('PATCH', `/v1/leads/${id}`, { status })
      expect(res.statusCode, res.body).toBe(200)
    }
    const spend = await call('PUT', `/v1/campaigns/${campaignId}/spend`, { entries: [
      { platform: 'meta', day: '2026-11-01', amount: '45.00' }, { platform: 'meta', day: '2026-11-02', amount: '30.10' },
      { platform: 'whatsapp', day: '2026-11-01', amount: '20' }, { platform: 'google', day: '2026-11-01', amount: '70.00', currency: 'BRL' },
    ] })
    expect(spend.statusCode, spend.body).toBe(200)
    // Entering a day again replaces it.
    expect((await call('PUT', `/v1/campaigns/${campaignId}/spend`, { entries: [{ platform: 'meta', day: '2026-11-02', amount: '30.00' }] })).statusCode).toBe(200)

    // Through the rollups: close the buckets, build the day level.
    await rollUp(db.current.sql, { tenantId: tenant.id, batchBuckets: 1000, budgetMs: 60_000 })
    await rollUpDays(db.current.sql, { tenantId: tenant.id })

    const res = await call('GET', `/v1/campaigns/${campaignId}/performance`)
    expect(res.statusCode, res.body).toBe(200)
    const report = res.json()
    expect(report).toMatchObject({ campaignId, planId, currency: 'BRL', warnings: [] })
    expect(report.source).toMatch(/^rollup/)
    const by = Object.fromEntries(report.platforms.map((p: { platform: string }) => [p.platform, p]))
    expect(by.meta).toEqual({
      platform: 'meta',
      planned: { budget: '1500.00', leads: '50.00', cpl: '30.00' },
      actual: { spend: '75.00', leads: 3, qualified: 2, converted: 1, cpl: '25.00' },
      leadsDelta: '-47.00', leadsAttainment: '0.0600', cplDelta: '-5.00',
    })
    expect(by.whatsapp).toMatchObject({ planned: { leads: '60.00', cpl: '15.00' }, actual: { spend: '20.00', leads: 2, qualified: 0, converted: 1, cpl: '10.00' } })
    expect(by.google).toMatchObject({ planned: { leads: '10.00' }, actual: { spend: '70.00', leads: 1, cpl: '70.00' } })
    expect(report.totals).toMatchObject({ planned: { budget: '3000.00', leads: '120.00', cpl: '25.00' }, actual: { spend: '165.00', leads: 6, qualified: 2, converted: 2, cpl: '27.50' } })

    // The rollups answer what raw events answer.
    const raw = await actualLeads(db.current.sql, testConfig(), tenant.id, campaignId, {}, { raw: true })
    expect(Object.fromEntries(raw.byPlatform)).toEqual({
      meta: { leads: 3, qualified: 2, converted: 1 }, whatsapp: { leads: 2, qualified: 0, converted: 1 }, google: { leads: 1, qualified: 0, converted: 0 },
    })
    expect(raw.source).toBe('raw')

    // The plan's own report is the same comparison.
    const fromPlan = (await call('GET', `/v1/media-plans/${planId}/performance`)).json()
    expect(fromPlan.platforms).toEqual(report.platforms)
  })

  it('keeps the earlier first touch when two attributed leads merge', async () => {
    const early = await formLead('m1@example.com', { utm_source: 'facebook', utm_campaign: 'spring-launch' })
    await db.current.owner`insert into campaigns.campaigns (tenant_id, name, utm_campaign) values (${tenant.id}, 'Later', 'later-code')`
    const late = await withTenant(db.current.sql, tenant.id, (tx) => resolveLead(tx, {
      email: 'm2@example.com', phoneE164: null, phoneKey: null, name: null, company: null, fields: {}, source: 'web_form',
      sourceDetails: { utm: { utm_source: 'google', utm_campaign: 'later-code' } }, at: new Date(),
    }, { tenantId: tenant.id, actor: 'form:test', reason: 'form_submission', requestId: null }))
    await mergeLeadsManually(db.current.sql, { tenantId: tenant.id, actor: 'api_key:test', requestId: null }, late.leadId, early.leadId)
    const rows = await db.current.owner<{ leadId: string; campaignId: string }[]>`
      select lead_id, campaign_id from marketing.lead_attributions where lead_id in (${early.leadId}, ${late.leadId})`
    expect(rows).toEqual([{ leadId: late.leadId, campaignId }])
  })

  describe('bad input', () => {
    it.each([
      ['a negative amount', { entries: [{ platform: 'meta', day: '2026-11-01', amount: '-1' }] }],
      ['a non-numeric amount', { entries: [{ platform: 'meta', day: '2026-11-01', amount: 'ten' }] }],
      ['another currency than the campaign', { entries: [{ platform: 'meta', day: '2026-11-01', amount: '1', currency: 'USD' }] }],
      ['an unknown currency', { entries: [{ platform: 'meta', day: '2026-11-01', amount: '1', currency: 'XYZ' }] }],
      ['a date that does not exist', { entries: [{ platform: 'meta', day: '2026-02-30', amount: '1' }] }],
      ['the same day twice', { entries: [{ platform: 'meta', day: '2026-11-05', amount: '1' }, { platform: 'meta', day: '2026-11-05', amount: '2' }] }],
      ['no entries', { entries: [] }],
    ])('refuses spend with %s and writes nothing', async (_name, body) => {
      const before = (await call('GET', `/v1/campaigns/${campaignId}/spend`)).json().data
      const res = await call('PUT', `/v1/campaigns/${campaignId}/spend`, body)
      expect(res.statusCode).toBe(400)
      expect((await call('GET', `/v1/campaigns/${campaignId}/spend`)).json().data).toEqual(before)
    })

    it('refuses a stale ad-sources save with 409 and the current version', async () => {
      const res = await call('PUT', `/v1/campaigns/${campaignId}/ad-sources`, { adSourceIds: [], version: 1 })
      expect(res.statusCode).toBe(409)
      expect(res.json().error.details.currentVersion).toBeGreaterThan(1)
    })

    it('answers 409 for the performance of a plan without a campaign', async () => {
      const plan = (await call('POST', '/v1/media-plans', { name: 'Loose', budget: '10', currency: 'BRL' })).json()
      expect((await call('GET', `/v1/media-plans/${plan.id}/performance`)).statusCode).toBe(409)
    })
  })

  describe('security', () => {
    it("answers 404 for another tenant's campaign and plan everywhere, and never attributes a lead to another tenant's campaign", async () => {
      for (const [method, url, body] of [
        ['GET', `/v1/campaigns/${campaignId}/performance`, undefined], ['GET', `/v1/campaigns/${campaignId}/spend`, undefined],
        ['PUT', `/v1/campaigns/${campaignId}/spend`, { entries: [{ platform: 'meta', day: '2026-11-09', amount: '1' }] }],
        ['DELETE', `/v1/campaigns/${campaignId}/spend/meta/2026-11-01`, undefined],
        ['PUT', `/v1/campaigns/${campaignId}/ad-sources`, { adSourceIds: ['x'] }], ['GET', `/v1/media-plans/${planId}/performance`, undefined],
        ['GET', `/v1/campaigns/${campaignId}/performance?planId=${planId}`, undefined],
      ] as const) {
        expect((await call(method, url, body, other.adminKey)).statusCode, `${method} ${url}`).toBe(404)
      }
      const theirLead = await formLead('x@example.com', { utm_source: 'facebook', utm_campaign: 'spring-launch' }, other)
      expect(await db.current.owner`select 1 from marketing.lead_attributions where lead_id = ${theirLead.leadId}`).toHaveLength(0)
      const spend = await db.current.owner`select 1 from campaigns.spend_entries where tenant_id = ${other.id}`
      expect(spend).toHaveLength(0)
    })
  })
})
