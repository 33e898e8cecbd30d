import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeAssessment } from '../../../../test/factories/assessments-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

describe('assessment partners API', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let tenant: TestTenant
  let other: TestTenant
  let assessmentId: string
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
    api = await buildTestApi(db.current, { ASSESSMENTS_PUBLIC_URL: 'https://go.clinic.example' })
    webhooks = await buildTestWebhooks(db.current)
  })
  afterAll(async () => {
    await api?.close()
    await webhooks?.close()
  })
  const call = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, key = tenant.adminKey) =>
    api.inject({ method, url: `/v1/assessments${url}`, headers: bearer(key), ...(payload !== undefined ? { payload: payload as object } : {}) })

  it('runs a partner from creation to a paid commission: link, product, purchase, approval, withdrawal, report, ledger', async () => {
    const partner = await call('POST', '/partners', { code: 'Ana-Lima', name: 'Ana Lima Wellness', commissionRate: '0.15', tier: 'silver', currency: 'BRL' })
    expect(partner.statusCode, partner.body).toBe(201)
    expect(partner.json()).toMatchObject({ code: 'ana-lima', commissionRate: '0.1500', tier: 'silver', status: 'active', balance: '0.00', currency: 'BRL' })
    const partnerId = partner.json().id

    const link = await call('POST', '/links', { partnerId, assessmentId, campaignName: 'Spring', type: 'campaign', targetAudience: 'runners 30+', focusArea: 'sleep' })
    expect(link.statusCode, link.body).toBe(201)
    expect(link.json()).toMatchObject({ linkCode: expect.stringMatching(/^[A-Za-z0-9_-]{12}$/), active: true, destination: 'web' })
    expect(link.json().url).toBe(`https://go.clinic.example/l/${link.json().linkCode}`)
    const code = link.json().linkCode
    expect((await webhooks.inject({ method: 'GET', url: `/l/${code}`, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' } })).statusCode).toBe(302)
    const started = await webhooks.inject({ method: 'POST', url: `/assessments/links/${code}/sessions`, payload: {} })
    expect(started.statusCode, started.body).toBe(201)

    const product = await call('POST', '/products', { sku: 'omega-3', title: 'Omega 3', price: '59.90', currency: 'BRL' })
    expect(product.statusCode, product.body).toBe(201)
    const purchase = await call('POST', '/purchases', { transactionId: 'T-1', sku: 'omega-3', quantity: 2, customer: { sessionId: started.json().state.sessionId } })
    expect(purchase.statusCode, purchase.body).toBe(201)
    // 119.80 × (0.15 × 1.10 = 0.1650) = 19.767 → 19.77
    expect(purchase.json()).toMatchObject({ amount: '119.80', partnerId, linkId: link.json().id, commission: { rate: '0.1650', amount: '19.77', status: 'pending' } })
    const repeat = await call('POST', '/purchases', { transactionId: 'T-1', sku: 'omega-3', quantity: 9 })
    expect(repeat.statusCode).toBe(200)
    expect(repeat.json().commission.id).toBe(purchase.json().commission.id)

    const commissionId = purchase.json().commission.id
    expect((await call('POST', `/commissions/${commissionId}/approve`, {})).json()).toMatchObject({ status: 'approved', decidedBy: expect.stringMatching(/^api_key:/) })
    expect((await call('GET', `/partners/${partnerId}`)).json().balance).toBe('19.77')

    const tooMuch = await call('POST', `/partners/${partnerId}/withdrawals`, { amount: '19.78' })
    expect(tooMuch.statusCode).toBe(422)
    expect(tooMuch.json().error).toMatchObject({ code: 'UNPROCESSABLE', details: { balance: '19.77', requested: '19.78' } })
    const w = await call('POST', `/partners/${partnerId}/withdrawals`, { amount: '19.77' })
    expect(w.statusCode, w.body).toBe(201)
    expect((await call('POST', `/withdrawals/${w.json().id}/approve`, {})).json().status).toBe('approved')
    expect((await call('POST', `/withdrawals/${w.json().id}/complete`, { reference: 'PIX-778' })).json()).toMatchObject({ status: 'completed', reference: 'PIX-778' })
    expect((await call('GET', `/commissions?partnerId=${partnerId}`)).json().data[0]).toMatchObject({ id: commissionId, status: 'paid' })

    const report = await call('GET', `/partners/${partnerId}/report`)
    expect(report.statusCode, report.body).toBe(200)
    expect(report.json().totals).toEqual({
      clicks: 1, uniqueVisitors: 1, inactiveClicks: 0, starts: 1, completions: 0, conversions: 1, revenue: '119.80',
      // Amounts that entered each status in the period: this one was created, approved and paid within it.
      commissions: { created: '19.77', approved: '19.77', paid: '19.77', rejected: '0.00', reversed: '0.00' },
    })
    // Nothing rolled up yet: the watermark stands at today's first event, so today is read raw (and the partial
    // first day of the 30; the whole days between, clean and empty, from the rollup), and the meta says so.
    const meta = report.json().meta
    expect(meta.source).toBe('rollup+raw')
    expect(meta.rawRanges.at(-1)).toEqual({ from: expect.stringMatching(/T00:00:00.000Z$/), to: report.json().to })
    const ledger = await call('GET', `/partners/${partnerId}/ledger`)
    expect(ledger.json().data.map((e: { kind: string; amount: string; balanceAfter: string }) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['commission_approved', '19.77', '19.77'],
      ['withdrawal_requested', '-19.77', '0.00'],
    ])
    const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where tenant_id = ${tenant.id} and action like 'partner%' order by id`
    expect(audit.map((a) => a.action)).toEqual([
      'partner.created', 'partner_link.created', 'partner_product.created', 'partner_purchase.recorded', 'partner_commission.approved',
      'partner_withdrawal.requested', 'partner_withdrawal.approved', 'partner_withdrawal.completed',
    ])
  })

  it('deactivates a link: its visits answer 404 and are counted in the report', async () => {
    const partnerId = (await call('POST', '/partners', { code: 'bruno', name: 'Bruno', commissionRate: '0.1' })).json().id
    const link = (await call('POST', '/links', { partnerId, assessmentId, linkCode: 'bruno-1' })).json()
    expect((await call('PATCH', `/links/${link.id}`, { active: false })).json().active).toBe(false)
    expect((await webhooks.inject({ method: 'GET', url: '/l/bruno-1' })).statusCode).toBe(404)
    expect((await call('GET', `/partners/${partnerId}/report`)).json().totals).toMatchObject({ clicks: 0, inactiveClicks: 1 })
  })

  it.each<[string, 'POST' | 'PATCH' | 'GET', string, unknown, number]>([
    ['a partner code with spaces', 'POST', '/partners', { code: 'a b', name: 'X', commissionRate: '0.1' }, 400],
    ['a rate above 1', 'POST', '/partners', { code: 'rate', name: 'X', commissionRate: '1.5' }, 400],
    ['a rate as a number', 'POST', '/partners', { code: 'rate2', name: 'X', commissionRate: 0.1 }, 400],
    ['an unknown tier', 'POST', '/partners', { code: 'tier', name: 'X', commissionRate: '0.1', tier: 'diamond' }, 400],
    ['an empty patch', 'PATCH', '/partners/00000000-0000-4000-8000-000000000000', {}, 400],
    ['a link of an unknown partner', 'POST', '/links', { partnerId: '00000000-0000-4000-8000-000000000000', assessmentId: '00000000-0000-4000-8000-000000000000' }, 404],
    ['a price with three decimals', 'POST', '/products', { sku: 'p1', title: 'P', price: '1.001', currency: 'USD' }, 400],
    ['a purchase of an unknown product', 'POST', '/purchases', { transactionId: 'X-1', sku: 'missing' }, 422],
    ['a purchase in another currency', 'POST', '/purchases', { transactionId: 'X-2', sku: 'omega-3', currency: 'USD' }, 400],
    ['a withdrawal of zero', 'POST', '/partners/00000000-0000-4000-8000-000000000000/withdrawals', { amount: '0.00' }, 400],
    ['a withdrawal for an unknown partner', 'POST', '/partners/00000000-0000-4000-8000-000000000000/withdrawals', { amount: '1.00' }, 404],
    ['a report with from after to', 'GET', '/partners/00000000-0000-4000-8000-000000000000/report?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', undefined, 400],
  ])('refuses %s', async (_, method, url, body, status) => {
    const res = await call(method, url, body)
    expect(res.statusCode, res.body).toBe(status)
    expect(res.json().error.code).toBeTruthy()
  })

  it('answers 409 for a duplicate partner code and link code', async () => {
    const p = (await call('POST', '/partners', { code: 'dup', name: 'D', commissionRate: '0.1' })).json()
    expect((await call('POST', '/partners', { code: 'dup', name: 'D', commissionRate: '0.1' })).statusCode).toBe(409)
    expect((await call('POST', '/links', { partnerId: p.id, assessmentId, linkCode: 'dup-link' })).statusCode).toBe(201)
    expect((await call('POST', '/links', { partnerId: p.id, assessmentId, linkCode: 'dup-link' })).statusCode).toBe(409)
  })

  describe('security', () => {
    it('needs a key, and an admin key for every change', async () => {
      expect((await api.inject({ method: 'GET', url: '/v1/assessments/partners' })).statusCode).toBe(401)
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await call('GET', '/partners', undefined, readOnly.key)).statusCode).toBe(200)
      expect((await call('POST', '/partners', { code: 'ro', name: 'R', commissionRate: '0.1' }, readOnly.key)).statusCode).toBe(403)
      const partnerId = (await call('GET', '/partners')).json().data[0].id
      expect((await call('POST', `/partners/${partnerId}/withdrawals`, { amount: '1.00' }, readOnly.key)).statusCode).toBe(403)
    })

    it("neither shows nor changes another tenant's partners, links, commissions or withdrawals", async () => {
      const partnerId = (await call('GET', '/partners')).json().data[0].id
      const linkId = (await call('GET', '/links')).json().data[0].id
      const commissionId = (await call('GET', '/commissions')).json().data[0].id
      const withdrawalId = (await call('GET', '/withdrawals')).json().data[0].id
      expect((await call('GET', '/partners', undefined, other.adminKey)).json().data).toEqual([])
      expect((await call('GET', '/commissions', undefined, other.adminKey)).json().data).toEqual([])
      for (const [method, url, body] of [
        ['GET', `/partners/${partnerId}`, undefined], ['PATCH', `/partners/${partnerId}`, { tier: 'platinum' }], ['GET', `/partners/${partnerId}/ledger`, undefined],
        ['GET', `/partners/${partnerId}/report`, undefined], ['POST', `/partners/${partnerId}/withdrawals`, { amount: '1.00' }],
        ['GET', `/links/${linkId}`, undefined], ['PATCH', `/links/${linkId}`, { active: false }],
        ['POST', `/commissions/${commissionId}/reject`, {}], ['POST', `/withdrawals/${withdrawalId}/reject`, {}],
      ] as const) {
        const res = await call(method, url, body, other.adminKey)
        expect(res.statusCode, `${method} ${url}`).toBe(404)
      }
      // A link of mine cannot point at another tenant's assessment.
      const theirs = await makeAssessment(db.current.sql, other)
      expect((await call('POST', '/links', { partnerId, assessmentId: theirs.id })).statusCode).toBe(404)
      expect((await call('GET', `/partners/${partnerId}`)).json().tier).toBe('silver')
    })
  })
})
