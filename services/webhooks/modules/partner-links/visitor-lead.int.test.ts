import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeLinkableAssessment, makePartner, makePartnerLink, makeProduct } from '../../../../test/factories/assessment-partners-rows.js'
import { makeForm } from '../../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { drainJobs } from '../../../../test/whatsapp.js'
import type { FormView } from '../../../../domains/marketing/forms/views.js'

const BROWSER = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15'
const ORIGIN = 'https://clinic.example'

/** The case: a visitor of a partner link who becomes a lead on the web is the partner's lead, automatically. */
describe('a partner-link visitor who becomes a web lead', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let tenant: TestTenant
  let form: FormView
  let ana: { id: string }
  let bea: { id: string }
  let anaLink: { id: string; linkCode: string }
  let beaLink: { id: string; linkCode: string }
  let sku: string
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    ;({ ana, bea, anaLink, beaLink, sku } = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const assessment = await makeLinkableAssessment(tx, tenant.id)
      const ana = await makePartner(tx, tenant.id, { code: 'ana' })
      const bea = await makePartner(tx, tenant.id, { code: 'bea' })
      return {
        ana, bea,
        anaLink: await makePartnerLink(tx, tenant.id, ana.id, assessment.id, { code: 'ana-spring' }),
        beaLink: await makePartnerLink(tx, tenant.id, bea.id, assessment.id, { code: 'bea-summer' }),
        sku: (await makeProduct(tx, tenant.id, { price: '100.00' })).sku,
      }
    }))
    form = await makeForm(db.current.sql, tenant)
    webhooks = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    api = await buildTestApi(db.current)
  })
  afterAll(async () => {
    await webhooks?.close()
    await api?.close()
  })

  /** A browser visit of /l/<code>; returns the visitor cookie (`wa_lv=<id>`) it was given or kept. */
  const click = async (code: string, cookie?: string) => {
    const res = await webhooks.inject({ method: 'GET', url: `/l/${code}`, headers: { 'user-agent': BROWSER, ...(cookie ? { cookie } : {}) }, remoteAddress: '203.0.113.77' })
    expect(res.statusCode).toBe(302)
    return String(res.headers['set-cookie']).split(';')[0]!
  }
  const submit = async (payload: Record<string, unknown>, cookie?: string) => {
    const res = await webhooks.inject({ method: 'POST', url: form.submitPath, headers: { origin: ORIGIN, ...(cookie ? { cookie } : {}) }, payload })
    expect(res.statusCode, res.body).toBe(201)
    await drainJobs(db.current)
  }
  const leadByEmail = async (email: string) =>
    (await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and email = ${email} and merged_into is null`)[0]!.id
  const attributionOf = async (leadId: string) =>
    (await db.current.owner<{ firstPartnerId: string; firstLinkId: string; firstAt: Date; lastPartnerId: string; lastLinkId: string; lastAt: Date; touches: number }[]>`
      select first_partner_id, first_link_id, first_at, last_partner_id, last_link_id, last_at, touches from assessments.attributions where lead_id = ${leadId}`)[0]
  const visitorRows = async (visitorId: string) =>
    (await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.attributions where visitor_id = ${visitorId}`)[0]!.n
  const clicksOf = (visitorId: string) =>
    db.current.owner<{ leadId: string | null; partnerId: string }[]>`select lead_id, partner_id from assessments.link_clicks where visitor_id = ${visitorId} order by id`
  const idOf = (cookie: string) => cookie.slice('wa_lv='.length)

  let carla: string
  let carlaCookie: string
  it('joins the clicks and the attribution to the lead in the submission, first and last touch kept', async () => {
    carlaCookie = await click('ana-spring')
    await click('bea-summer', carlaCookie)
    const visitor = idOf(carlaCookie)
    const before = await db.current.owner<{ firstAt: Date; lastAt: Date }[]>`select first_at, last_at from assessments.attributions where visitor_id = ${visitor}`
    expect(before).toHaveLength(1)

    await submit({ name: 'Carla', email: 'carla@example.com' }, `x=1; ${carlaCookie}`)
    carla = await leadByEmail('carla@example.com')

    expect(await attributionOf(carla)).toEqual({
      firstPartnerId: ana.id, firstLinkId: anaLink.id, firstAt: before[0]!.firstAt,
      lastPartnerId: bea.id, lastLinkId: beaLink.id, lastAt: before[0]!.lastAt, touches: 2,
    })
    expect(await visitorRows(visitor)).toBe(0)
    expect(await clicksOf(visitor)).toEqual([{ leadId: carla, partnerId: ana.id }, { leadId: carla, partnerId: bea.id }])
    // The analytics side too: the cookie is the visitor's anonymous id, so link.clicked events get the lead.
    const [identity] = await db.current.owner<{ leadId: string }[]>`select lead_id from analytics.identities where tenant_id = ${tenant.id} and anonymous_id = ${visitor}`
    expect(identity!.leadId).toBe(carla)
    const clicked = await db.current.owner<{ leadId: string | null }[]>`
      select lead_id from analytics.events where tenant_id = ${tenant.id} and name = 'link.clicked' and anonymous_id = ${visitor}`
    expect(clicked).toEqual([{ leadId: carla }, { leadId: carla }])
  })

  it('counts a later click of the known visitor as the lead\'s touch, and a submission again changes nothing', async () => {
    await click('ana-spring', carlaCookie)
    const after = await attributionOf(carla)
    expect(after).toMatchObject({ firstPartnerId: ana.id, lastPartnerId: ana.id, lastLinkId: anaLink.id, touches: 3 })
    expect(await visitorRows(idOf(carlaCookie))).toBe(0)
    expect((await clicksOf(idOf(carlaCookie))).map((c) => c.leadId)).toEqual([carla, carla, carla])
    const clicked = await db.current.owner<{ leadId: string | null }[]>`
      select lead_id from analytics.events where tenant_id = ${tenant.id} and name = 'link.clicked' and anonymous_id = ${idOf(carlaCookie)}`
    expect(clicked).toEqual([{ leadId: carla }, { leadId: carla }, { leadId: carla }])

    await submit({ name: 'Carla', email: 'carla@example.com' }, carlaCookie)
    expect(await attributionOf(carla)).toEqual(after)
  })

  it('attributes a purchase naming only the visitor to the lead and its last-touch partner', async () => {
    const res = await api.inject({
      method: 'POST', url: '/v1/assessments/purchases', headers: bearer(tenant.adminKey),
      payload: { transactionId: 'visitor-order-1', sku, customer: { visitorId: idOf(carlaCookie) } },
    })
    expect(res.statusCode, res.body).toBe(201)
    const [purchase] = await db.current.owner<{ leadId: string; partnerId: string; firstPartnerId: string }[]>`
      select lead_id, partner_id, first_partner_id from assessments.purchases where external_id = 'visitor-order-1'`
    expect(purchase).toEqual({ leadId: carla, partnerId: ana.id, firstPartnerId: ana.id })
    const [commission] = await db.current.owner<{ partnerId: string }[]>`
      select c.partner_id from assessments.commissions c join assessments.purchases p on p.id = c.purchase_id where p.external_id = 'visitor-order-1'`
    expect(commission!.partnerId).toBe(ana.id)
  })

  it('merges a second visitor id of the same person into the lead, and gives a second person a lead of their own', async () => {
    const before = (await attributionOf(carla))!
    // Carla on her phone: a new cookie, Bea's link, then the form with the same email.
    const phone = await click('bea-summer')
    await submit({ name: 'Carla', email: 'carla@example.com' }, phone)
    expect(await attributionOf(carla)).toMatchObject({
      firstPartnerId: ana.id, firstAt: before.firstAt, lastPartnerId: bea.id, lastLinkId: beaLink.id, touches: before.touches + 1,
    })
    expect((await attributionOf(carla))!.lastAt.getTime()).toBeGreaterThan(before.lastAt.getTime())
    expect(await visitorRows(idOf(phone))).toBe(0)

    // Dani, another person, through Bea's link only; the site passes the visitor id as anonymous_id instead of the cookie.
    const dani = await click('bea-summer')
    await submit({ name: 'Dani', email: 'dani@example.com', anonymous_id: idOf(dani) })
    const daniLead = await leadByEmail('dani@example.com')
    expect(daniLead).not.toBe(carla)
    expect(await attributionOf(daniLead)).toMatchObject({ firstPartnerId: bea.id, lastPartnerId: bea.id, touches: 1 })
    expect((await clicksOf(idOf(dani))).map((c) => c.leadId)).toEqual([daniLead])
    expect((await attributionOf(carla))!.touches).toBe(before.touches + 1)
  })

  it('leaves a visitor who submits nothing as a visitor, and a form without a visitor joins nothing', async () => {
    const eve = await click('ana-spring')
    await submit({ name: 'Fabi', email: 'fabi@example.com' })
    expect(await attributionOf(await leadByEmail('fabi@example.com'))).toBeUndefined()
    expect(await visitorRows(idOf(eve))).toBe(1)
    expect((await clicksOf(idOf(eve))).map((c) => c.leadId)).toEqual([null])
  })
})
