import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { registry } from '../../../../lib/metrics.js'
import * as f from '../../../../domains/whatsapp/webhook/fixtures.js'
import { drainJobs, postDelivery } from '../../../../test/whatsapp.js'
import { linkOfConversation } from '../../../../domains/assessments/partners/links.js'
import { signStandardWebhook } from '../../../../domains/onboarding/webhooks.js'
import { HEALTHY_ANSWERS, makeAssessment } from '../../../../test/factories/assessments-rows.js'
import { makePartner, makePartnerLink, makeProduct } from '../../../../test/factories/assessment-partners-rows.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../../test/factories/whatsapp.js'

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'
const visits = async (outcome: string) => {
  const metric = (await registry.getSingleMetric('partner_link_visits_total')!.get()).values.find((v) => v.labels.outcome === outcome)
  return metric?.value ?? 0
}

describe('partner links on the webhooks service', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let assessment: { id: string; publicKey: string }
  let partner: { id: string }
  let link: { id: string; linkCode: string }
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    assessment = await makeAssessment(db.current.sql, tenant)
    ;({ partner, link } = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const partner = await makePartner(tx, tenant.id, { code: 'ana' })
      return { partner, link: await makePartnerLink(tx, tenant.id, partner.id, assessment.id, { code: 'ana-spring' }) }
    }))
    webhooks = await buildTestWebhooks(db.current, { ASSESSMENTS_PUBLIC_URL: 'https://go.clinic.example' })
    api = await buildTestApi(db.current)
  })
  afterAll(async () => {
    await webhooks?.close()
    await api?.close()
  })

  const visit = (code: string, headers: Record<string, string> = {}, query = '') =>
    webhooks.inject({ method: 'GET', url: `/l/${code}${query}`, headers: { 'user-agent': BROWSER, referer: 'https://instagram.com/ana', ...headers }, remoteAddress: '203.0.113.77' })

  describe('GET /l/:code', () => {
    it('records the click with a truncated address, sets the visitor cookie and redirects to the web start', async () => {
      const res = await visit('ana-spring')
      expect(res.statusCode).toBe(302)
      expect(res.headers.location).toBe(`https://go.clinic.example/assessments/${assessment.publicKey}/start?link=ana-spring`)
      expect(res.headers['cache-control']).toBe('no-store')
      const cookie = String(res.headers['set-cookie'])
      expect(cookie).toMatch(/^wa_lv=[A-Za-z0-9_-]{22}; Max-Age=15552000; Path=\/; HttpOnly; SameSite=Lax$/)
      const visitorId = cookie.slice(6, 28)
      const [click] = await db.current.owner<{ outcome: string; visitorId: string; ipPrefix: string; ipHash: string; userAgent: string; referrer: string }[]>`
        select outcome, visitor_id, ip_prefix::text, ip_hash, user_agent, referrer from assessments.link_clicks where link_id = ${link.id}`
      expect(click).toEqual({ outcome: 'web', visitorId, ipPrefix: '203.0.113.0/24', ipHash: expect.any(String), userAgent: BROWSER, referrer: 'https://instagram.com/ana' })
      expect(JSON.stringify(click)).not.toContain('203.0.113.77')
      const [attribution] = await db.current.owner<{ firstPartnerId: string; lastLinkId: string }[]>`select first_partner_id, last_link_id from assessments.attributions where visitor_id = ${visitorId}`
      expect(attribution).toEqual({ firstPartnerId: partner.id, lastLinkId: link.id })
      const [event] = await db.current.owner<{ name: string; anonymousId: string; properties: Record<string, string> }[]>`
        select name, anonymous_id, properties from analytics.events where tenant_id = ${tenant.id} and name = 'link.clicked'`
      expect(event).toMatchObject({ anonymousId: visitorId, properties: { linkId: link.id, partnerId: partner.id, outcome: 'web' } })

      // The same visitor again keeps the cookie's id.
      const again = await visit('ana-spring', { cookie: `x=1; wa_lv=${visitorId}` })
      expect(String(again.headers['set-cookie'])).toContain(`wa_lv=${visitorId};`)
    })

    it('sends ?to=whatsapp to a wa.me chat with the business number and ref:<code> pre-filled', async () => {
      const res = await visit('ana-spring', {}, '?to=whatsapp')
      expect(res.statusCode).toBe(302)
      const url = new URL(res.headers.location as string)
      expect(url.origin + url.pathname).toBe(`https://wa.me/${number.displayPhoneNumber.replace(/\D/g, '')}`)
      expect(url.searchParams.get('text')).toBe('Hi! I would like to take the assessment (ref:ana-spring)')
    })

    it('answers crawlers but neither attributes nor counts them as events', async () => {
      const before = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where tenant_id = ${tenant.id} and name = 'link.clicked'`
      const res = await visit('ana-spring', { 'user-agent': 'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)' })
      expect(res.statusCode).toBe(302)
      const after = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where tenant_id = ${tenant.id} and name = 'link.clicked'`
      expect(after[0]!.n).toBe(before[0]!.n)
      const [bot] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.link_clicks where link_id = ${link.id} and is_bot and visitor_id is null`
      expect(bot!.n).toBe(1)
    })

    it.each([
      ['an unknown code', 'nobody-knows-this', 'unknown'],
      ['a malformed code', '%3Cscript%3E', 'unknown'],
    ])('answers %s with 404 and counts it', async (_, code, outcome) => {
      const before = await visits(outcome)
      const res = await visit(code)
      expect(res.statusCode).toBe(404)
      expect(res.json().error.code).toBe('NOT_FOUND')
      expect(await visits(outcome)).toBe(before + 1)
    })

    it('answers an inactive link with 404, stores the visit as inactive and sets no cookie', async () => {
      const off = await withTenant(db.current.sql, tenant.id, (tx) => makePartnerLink(tx, tenant.id, partner.id, assessment.id, { code: 'ana-off', active: false }))
      const before = await visits('inactive')
      const res = await visit('ana-off')
      expect(res.statusCode).toBe(404)
      expect(res.headers['set-cookie']).toBeUndefined()
      expect(await visits('inactive')).toBe(before + 1)
      const [row] = await db.current.owner<{ outcome: string }[]>`select outcome from assessments.link_clicks where link_id = ${off.id}`
      expect(row!.outcome).toBe('inactive')
    })
  })

  describe('POST /assessments/links/:code/sessions', () => {
    it('starts a session naming the link and partner, attributes the visitor and completes with link.completed', async () => {
      const cookie = String((await visit('ana-spring')).headers['set-cookie']).split(';')[0]!
      const res = await webhooks.inject({ method: 'POST', url: '/assessments/links/ana-spring/sessions', headers: { cookie }, payload: { demographics: { age: 41 } } })
      expect(res.statusCode, res.body).toBe(201)
      const { token, state } = res.json()
      const [session] = await db.current.owner<{ linkId: string; partnerId: string }[]>`select link_id, partner_id from assessments.sessions where id = ${state.sessionId}`
      expect(session).toEqual({ linkId: link.id, partnerId: partner.id })

      let current = state
      while (current.question) {
        const answer = await webhooks.inject({ method: 'POST', url: `/assessments/sessions/${token}/answers`, payload: { questionId: current.question.id, value: HEALTHY_ANSWERS[current.question.id], responseMs: 900 } })
        expect(answer.statusCode, answer.body).toBe(200)
        current = answer.json()
      }
      expect(current.status).toBe('completed')
      const names = await db.current.owner<{ name: string }[]>`
        select name from analytics.events where tenant_id = ${tenant.id} and properties->>'sessionId' = ${state.sessionId} and name like 'link.%' order by name`
      expect(names.map((n) => n.name)).toEqual(['link.completed', 'link.started'])
    })

    it.each([['an unknown code', 'no-such-link'], ['an inactive link', 'ana-off']])('refuses %s with 404 and starts nothing', async (_, code) => {
      const before = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions`
      const res = await webhooks.inject({ method: 'POST', url: `/assessments/links/${code}/sessions`, payload: {} })
      expect(res.statusCode).toBe(404)
      expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions`)[0]!.n).toBe(before[0]!.n)
    })

    it('refuses invalid demographics with 400', async () => {
      const res = await webhooks.inject({ method: 'POST', url: '/assessments/links/ana-spring/sessions', payload: { demographics: { age: 'old' }, extra: 1 } })
      expect(res.statusCode).toBe(400)
    })
  })

  describe('the WhatsApp path: ref:<code> in the first message', () => {
    const say = async (from: string, body: string) => {
      const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from, body })] }))
      expect(res.statusCode, res.body).toBe(200)
      await drainJobs(db.current)
      const [lead] = await db.current.owner<{ id: string; conversationId: string }[]>`
        select l.id, c.id as conversation_id from marketing.leads l join conversations.conversations c on c.lead_id = l.id
         where l.tenant_id = ${tenant.id} and l.wa_id = ${from}`
      return lead!
    }

    it('attributes the lead and its conversation to the link, so the assessment node can pass them on', async () => {
      const lead = await say('5511988880001', 'Hi! I would like to take the assessment (ref:ana-spring)')
      const [a] = await db.current.owner<{ lastLinkId: string; lastChannel: string; conversationId: string }[]>`
        select last_link_id, last_channel, conversation_id from assessments.attributions where lead_id = ${lead.id}`
      expect(a).toEqual({ lastLinkId: link.id, lastChannel: 'whatsapp', conversationId: lead.conversationId })
      expect(await withTenant(db.current.sql, tenant.id, (tx) => linkOfConversation(tx, lead.conversationId))).toEqual({ linkId: link.id, partnerId: partner.id })
    })

    it("ignores an inactive link's code, a code no link has, and the analytics visitor token", async () => {
      for (const [from, body] of [['5511988880002', 'ref:ana-off'], ['5511988880003', 'ref:never-issued'], ['5511988880004', 'hello [ref:ana-spring]']] as const) {
        const lead = await say(from, body)
        expect(await db.current.owner`select 1 from assessments.attributions where lead_id = ${lead.id}`).toHaveLength(0)
      }
    })
  })

  describe('the shop webhook', () => {
    let endpoint: { url: string; publicKey: string; secret: string }
    let sku: string
    beforeAll(async () => {
      const res = await api.inject({ method: 'POST', url: '/v1/assessments/shop-endpoint', headers: bearer(tenant.adminKey) })
      expect(res.statusCode, res.body).toBe(201)
      endpoint = res.json()
      sku = (await withTenant(db.current.sql, tenant.id, (tx) => makeProduct(tx, tenant.id, { price: '80.00' }))).sku
    })
    const send = (body: unknown, o: { secret?: string; ts?: number; id?: string; raw?: string } = {}) => {
      const raw = o.raw ?? JSON.stringify(body)
      const ts = o.ts ?? Math.floor(Date.now() / 1000)
      const id = o.id ?? `msg_${crypto.randomUUID()}`
      return webhooks.inject({
        method: 'POST', url: `/assessments/shop/${endpoint.publicKey}/events`, payload: raw,
        headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': signStandardWebhook(o.secret ?? endpoint.secret, id, ts, raw) },
      })
    }
    const purchase = (transactionId: string) => ({ type: 'purchase.completed', data: { transactionId, sku, customer: { linkCode: 'ana-spring' } } })

    it('records a signed purchase with a pending commission once, whatever the retries', async () => {
      const first = await send(purchase('shop-9001'))
      expect(first.statusCode, first.body).toBe(200)
      expect(first.json()).toMatchObject({ received: true, duplicate: false, commissionId: expect.any(String) })
      const again = await send(purchase('shop-9001'))
      expect(again.json()).toEqual({ ...first.json(), duplicate: true })
      const [c] = await db.current.owner<{ n: number; amount: string; status: string }[]>`
        select count(*)::int as n, min(amount)::text as amount, min(status) as status from assessments.commissions where purchase_id = ${first.json().purchaseId}`
      expect(c).toEqual({ n: 1, amount: '8.00', status: 'pending' })
    })

    it('reverses the commission on a refund event', async () => {
      const { purchaseId } = (await send(purchase('shop-9002'))).json()
      const res = await send({ type: 'purchase.refunded', data: { transactionId: 'shop-9002' } })
      expect(res.statusCode, res.body).toBe(200)
      const [c] = await db.current.owner<{ status: string }[]>`select status from assessments.commissions where purchase_id = ${purchaseId}`
      expect(c!.status).toBe('reversed')
    })

    it.each<[string, () => ReturnType<typeof send>, number]>([
      ['a wrong secret', () => send(purchase('shop-bad-1'), { secret: `whsec_${Buffer.alloc(32, 7).toString('base64')}` }), 401],
      ['a stale timestamp (a replay)', () => send(purchase('shop-bad-2'), { ts: Math.floor(Date.now() / 1000) - 3600 }), 401],
      ['a body that is not JSON', () => send(null, { raw: '{"type":' }), 400],
      ['an unknown event type', () => send({ type: 'purchase.exploded', data: {} }), 400],
      ['an unknown product', () => send({ type: 'purchase.completed', data: { transactionId: 'shop-bad-3', sku: 'nope' } }), 422],
      ['a refund of an unknown purchase', () => send({ type: 'purchase.refunded', data: { transactionId: 'shop-never' } }), 404],
    ])('refuses %s and records nothing', async (_, call, status) => {
      const before = await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.purchases`
      const res = await call()
      expect(res.statusCode, res.body).toBe(status)
      expect(res.json().error).toMatchObject({ code: expect.any(String) })
      expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.purchases`)[0]!.n).toBe(before[0]!.n)
    })

    it("refuses a signature of another tenant's endpoint, and an unknown endpoint", async () => {
      const theirs = (await api.inject({ method: 'POST', url: '/v1/assessments/shop-endpoint', headers: bearer(other.adminKey) })).json()
      const res = await send(purchase('shop-cross'), { secret: theirs.secret })
      expect(res.statusCode).toBe(401)
      const unknown = await webhooks.inject({ method: 'POST', url: `/assessments/shop/shop_${'0'.repeat(32)}/events`, payload: '{}', headers: { 'content-type': 'application/json' } })
      expect(unknown.statusCode).toBe(404)
    })
  })
})
