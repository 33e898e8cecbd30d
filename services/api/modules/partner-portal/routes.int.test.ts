import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeAssessment } from '../../../../test/factories/assessments-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

/**
 * A partner with its own key: it reads its own profile, links, clicks, commissions, ledger, withdrawals and report,
 * requests withdrawals, and nothing else: not another partner's data, not any tenant route, no approval.
 */
describe('partner portal (/v1/partner) with a partner key', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let tenant: TestTenant
  let other: TestTenant
  let assessmentId: string
  const ua = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' }

  interface Seeded { partnerId: string; linkId: string; commissionId: string; key: string; keyId: string }
  let ana: Seeded
  let bruno: Seeded

  const admin = (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown, key = tenant.adminKey) =>
    api.inject({ method, url: `/v1/assessments${url}`, headers: bearer(key), ...(payload !== undefined ? { payload: payload as object } : {}) })
  const portal = (method: 'GET' | 'POST', url: string, key: string, payload?: unknown) =>
    api.inject({ method, url: `/v1/partner${url}`, headers: bearer(key), ...(payload !== undefined ? { payload: payload as object } : {}) })

  /** A partner with a link, a click, a session, an approved commission and a key of its own: all through the product's doors. */
  async function seedPartner(code: string, transactionId: string): Promise<Seeded> {
    const partnerId = (await admin('POST', '/partners', { code, name: `Partner ${code}`, commissionRate: '0.20' })).json().id
    const link = (await admin('POST', '/links', { partnerId, assessmentId })).json()
    expect((await webhooks.inject({ method: 'GET', url: `/l/${link.linkCode}`, headers: ua })).statusCode).toBe(302)
    const started = await webhooks.inject({ method: 'POST', url: `/assessments/links/${link.linkCode}/sessions`, payload: {} })
    const purchase = await admin('POST', '/purchases', { transactionId, sku: 'vit-d', customer: { sessionId: started.json().state.sessionId } })
    expect(purchase.statusCode, purchase.body).toBe(201)
    const commissionId = purchase.json().commission.id
    const created = await admin('POST', `/partners/${partnerId}/keys`, { label: 'portal' })
    expect(created.statusCode, created.body).toBe(201)
    return { partnerId, linkId: link.id, commissionId, key: created.json().key, keyId: created.json().id }
  }

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    assessmentId = (await makeAssessment(db.current.sql, tenant)).id
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    expect((await admin('POST', '/products', { sku: 'vit-d', title: 'Vitamin D', price: '50.00', currency: 'USD' })).statusCode).toBe(201)
    ana = await seedPartner('ana', 'T-ana')
    bruno = await seedPartner('bruno', 'T-bruno')
    // Ana's commission is approved (her balance 10.00); Bruno's stays pending.
    expect((await admin('POST', `/commissions/${ana.commissionId}/approve`, {})).statusCode).toBe(200)
  })
  afterAll(async () => {
    await api?.close()
    await webhooks?.close()
  })

  it('shows the key once, stores only its hash, and lists keys without them', async () => {
    expect(ana.key).toMatch(/^wpk_[A-Za-z0-9]{8}_[A-Za-z0-9_-]{43}$/)
    const listed = await admin('GET', `/partners/${ana.partnerId}/keys`)
    expect(listed.json().data).toEqual([expect.objectContaining({ id: ana.keyId, label: 'portal', prefix: ana.key.slice(0, 12), revokedAt: null })])
    expect(listed.json().data[0].key).toBeUndefined()
    const stored = await db.current.owner<{ text: string }[]>`select row_to_json(k)::text as text from assessments.partner_keys k where id = ${ana.keyId}`
    expect(stored[0]!.text).not.toContain(ana.key)
  })

  it("reads the partner's own profile, links, clicks, commissions, ledger and report", async () => {
    const me = await portal('GET', '', ana.key)
    expect(me.statusCode, me.body).toBe(200)
    expect(me.json()).toMatchObject({ id: ana.partnerId, code: 'ana', balance: '10.00' })
    expect((await portal('GET', '/links', ana.key)).json().data.map((l: { id: string }) => l.id)).toEqual([ana.linkId])
    const clicks = (await portal('GET', '/clicks', ana.key)).json()
    expect(clicks.data).toEqual([expect.objectContaining({ linkId: ana.linkId, outcome: 'web', isBot: false })])
    // No visitor, address or browser: those stay with the tenant.
    expect(Object.keys(clicks.data[0]).sort()).toEqual(['clickedAt', 'id', 'isBot', 'linkCode', 'linkId', 'outcome'])
    expect((await portal('GET', '/commissions', ana.key)).json().data.map((c: { id: string; status: string }) => [c.id, c.status])).toEqual([[ana.commissionId, 'approved']])
    expect((await portal('GET', '/ledger', ana.key)).json().data.map((e: { kind: string; amount: string }) => [e.kind, e.amount])).toEqual([['commission_approved', '10.00']])
    const report = (await portal('GET', '/report', ana.key)).json()
    expect(report).toMatchObject({ partnerId: ana.partnerId, totals: { clicks: 1, starts: 1, conversions: 1, revenue: '50.00' } })
    expect(report.links.map((l: { linkId: string }) => l.linkId)).toEqual([ana.linkId])
  })

  it('requests a withdrawal (debited at once), and is refused one above its balance (422)', async () => {
    const tooMuch = await portal('POST', '/withdrawals', ana.key, { amount: '10.01' })
    expect(tooMuch.statusCode).toBe(422)
    const w = await portal('POST', '/withdrawals', ana.key, { amount: '4.00' })
    expect(w.statusCode, w.body).toBe(201)
    expect(w.json()).toMatchObject({ partnerId: ana.partnerId, amount: '4.00', status: 'requested', requestedBy: `partner_key:${ana.keyId}` })
    expect((await portal('GET', '', ana.key)).json().balance).toBe('6.00')
    expect((await portal('GET', '/withdrawals', ana.key)).json().data.map((x: { id: string }) => x.id)).toEqual([w.json().id])
    expect((await portal('POST', '/withdrawals', ana.key, { amount: '0' })).statusCode).toBe(400)
    expect((await portal('POST', '/withdrawals', ana.key, { amount: '1.00', partnerId: bruno.partnerId })).statusCode).toBe(400)
  })

  describe('security', () => {
    it("never shows another partner's links, clicks, commissions, ledger, withdrawals or report", async () => {
      const seen = JSON.stringify(await Promise.all(['', '/links', '/clicks', '/commissions', '/ledger', '/withdrawals', '/report'].map(async (u) => (await portal('GET', u, ana.key)).json())))
      for (const id of [bruno.partnerId, bruno.linkId, bruno.commissionId]) expect(seen).not.toContain(id)
      // And Bruno sees only his.
      expect((await portal('GET', '', bruno.key)).json().id).toBe(bruno.partnerId)
      expect((await portal('GET', '/commissions', bruno.key)).json().data.map((c: { id: string }) => c.id)).toEqual([bruno.commissionId])
      expect((await portal('GET', '/ledger', bruno.key)).json().data).toEqual([])
      // A query parameter cannot widen the scope: the list routes take no partner id, unknown parameters change nothing.
      const widened = await portal('GET', `/commissions?partnerId=${bruno.partnerId}`, ana.key)
      expect(widened.json().data.map((c: { id: string }) => c.id)).toEqual([ana.commissionId])
    })

    it('opens no tenant route: no approval, no other partner, no listing (403), and changes nothing', async () => {
      const withdrawalId = (await portal('GET', '/withdrawals', ana.key)).json().data[0].id
      for (const [method, url, body] of [
        ['POST', `/commissions/${bruno.commissionId}/approve`, {}], ['POST', `/commissions/${ana.commissionId}/reject`, {}],
        ['POST', `/withdrawals/${withdrawalId}/approve`, {}], ['POST', `/withdrawals/${withdrawalId}/complete`, { reference: 'x' }],
        ['GET', '/partners', undefined], ['GET', `/partners/${bruno.partnerId}`, undefined], ['GET', `/partners/${bruno.partnerId}/ledger`, undefined],
        ['POST', `/partners/${bruno.partnerId}/withdrawals`, { amount: '1.00' }], ['POST', `/partners/${ana.partnerId}/keys`, { label: 'more' }],
        ['PATCH', `/partners/${ana.partnerId}`, { commissionRate: '0.9' }], ['GET', '/commissions', undefined], ['POST', '/purchases', { transactionId: 'T-x', sku: 'vit-d' }],
      ] as const) {
        const res = await admin(method, url, body, ana.key)
        expect(res.statusCode, `${method} ${url}`).toBe(403)
      }
      for (const url of ['/v1/leads', '/v1/assessments', '/v1/api-keys', '/v1/audit-log']) {
        expect((await api.inject({ method: 'GET', url, headers: bearer(ana.key) })).statusCode, url).toBe(403)
      }
      const [state] = await db.current.owner<{ commission: string; withdrawal: string; rate: string }[]>`
        select (select status from assessments.commissions where id = ${bruno.commissionId}) as commission,
               (select status from assessments.withdrawals where id = ${withdrawalId}) as withdrawal,
               (select commission_rate::text from assessments.partners where id = ${ana.partnerId}) as rate`
      expect(state).toEqual({ commission: 'pending', withdrawal: 'requested', rate: '0.2000' })
    })

    it('is refused to tenant keys, to no key, to a revoked key and to a terminated partner (401)', async () => {
      expect((await portal('GET', '', tenant.adminKey)).statusCode).toBe(403)
      expect((await api.inject({ method: 'GET', url: '/v1/partner' })).statusCode).toBe(401)
      expect((await portal('GET', '', `${ana.key.slice(0, -1)}${ana.key.endsWith('A') ? 'B' : 'A'}`)).statusCode).toBe(401)
      const spare = (await admin('POST', `/partners/${bruno.partnerId}/keys`, { label: 'spare' })).json()
      expect((await portal('GET', '', spare.key)).statusCode).toBe(200)
      expect((await admin('POST', `/partners/${bruno.partnerId}/keys/${spare.id}/revoke`, {})).json().revokedAt).toEqual(expect.any(String))
      expect((await portal('GET', '', spare.key)).statusCode).toBe(401)
      // Another partner's key id through this partner's path: not found, and not revoked.
      expect((await admin('POST', `/partners/${ana.partnerId}/keys/${bruno.keyId}/revoke`, {})).statusCode).toBe(404)
      expect((await portal('GET', '', bruno.key)).statusCode).toBe(200)
      expect((await admin('PATCH', `/partners/${bruno.partnerId}`, { status: 'terminated' })).statusCode).toBe(200)
      expect((await portal('GET', '', bruno.key)).statusCode).toBe(401)
    })

    it("keeps another tenant's admins from a partner's keys (404), and a partner key from another tenant", async () => {
      expect((await admin('GET', `/partners/${ana.partnerId}/keys`, undefined, other.adminKey)).statusCode).toBe(404)
      expect((await admin('POST', `/partners/${ana.partnerId}/keys`, { label: 'theirs' }, other.adminKey)).statusCode).toBe(404)
      expect((await admin('POST', `/partners/${ana.partnerId}/keys/${ana.keyId}/revoke`, {}, other.adminKey)).statusCode).toBe(404)
      const count = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.partner_keys where tenant_id = ${other.id}`
      expect(count[0]!.n).toBe(0)
      expect((await portal('GET', '', ana.key)).statusCode).toBe(200)
    })

    it('answers 400 for a bad key label and bad paging, changing nothing', async () => {
      for (const body of [{}, { label: '' }, { label: 'x'.repeat(101) }, { label: 'ok', extra: 1 }]) {
        expect((await admin('POST', `/partners/${ana.partnerId}/keys`, body)).statusCode, JSON.stringify(body)).toBe(400)
      }
      expect((await portal('GET', '/clicks?before=abc', ana.key)).statusCode).toBe(400)
      expect((await portal('GET', '/ledger?limit=0', ana.key)).statusCode).toBe(400)
      expect((await admin('GET', `/partners/${ana.partnerId}/keys`)).json().data).toHaveLength(1)
    })
  })
})
