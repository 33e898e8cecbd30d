import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import type { AssessmentDetail } from '../domains/assessments/service.js'
import { createFlow } from '../domains/conversations/service.js'
import { signStandardWebhook } from '../domains/onboarding/webhooks.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { bearer, buildTestApi, buildTestWebhooks } from './apps.js'
import { useTestDatabase } from './db.js'
import { HEALTHY_ANSWERS, makeAssessment } from './factories/assessments-rows.js'
import { runJobs } from './factories/conversations-rows.js'
import { makeTenant, type TestTenant } from './factories/tenants.js'
import { makePhoneNumber, type TestNumber } from './factories/whatsapp.js'
import { postDelivery } from './whatsapp.js'
import { startAiEmulator, type AiEmulator } from '../ops/emulators/ai-provider.js'

/**
 * Issue 14's "done when": Ana, a partner, shares one link. Bruno opens it on the web and takes the health check;
 * Carla opens the same link, chooses WhatsApp, sends the pre-filled message and takes it in the conversation. Both end
 * in a scored result attributed to Ana's link; after the shop's signed purchase webhooks, Ana has a pending commission
 * for each, and her report counts the clicks, starts, completions and conversions.
 *
 * Each result is analysed by the AI provider (the emulator, over HTTP) through the job the completion enqueued; the
 * second, with the identical pattern, is a cache hit: one provider call for both.
 */
describe('a partner link on the web and on WhatsApp, to a scored result and a pending commission', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let ai: AiEmulator
  let tenant: TestTenant
  let number: TestNumber
  let linkCode: string
  let partnerId: string
  let linkId: string
  let shop: { publicKey: string; secret: string }
  let assessment: AssessmentDetail
  const labelOf = (optionId: string) => (assessment.versions[0]!.questions as { options?: { id: string; label: string }[] }[]).flatMap((x) => x.options ?? []).find((o) => o.id === optionId)!.label

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    assessment = await makeAssessment(db.current.sql, tenant, { key: 'health_check' })
    await createFlow(db.current.sql, { tenantId: tenant.id, actor: 'test' }, {
      publish: true,
      document: {
        name: 'partner link check', trigger: { type: 'first_message' }, startNodeId: 'check',
        nodes: [
          { type: 'assessment', id: 'check', assessmentKey: 'health_check', answerKey: 'band', next: 'bye' },
          { type: 'end', id: 'bye', text: 'Thanks! ({{answers.band}})' },
        ],
      },
    })
    api = await buildTestApi(db.current, { ASSESSMENTS_PUBLIC_URL: 'https://go.clinic.example' })
    webhooks = await buildTestWebhooks(db.current, { ASSESSMENTS_PUBLIC_URL: 'https://go.clinic.example' })
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    ai = await startAiEmulator({ apiKeys: ['sk-journey'] })

    const call = async (url: string, payload?: object) => {
      const res = await api.inject({ method: 'POST', url: `/v1/assessments${url}`, headers: bearer(tenant.adminKey), ...(payload ? { payload } : {}) })
      expect(res.statusCode, res.body).toBe(201)
      return res.json()
    }
    partnerId = (await call('/partners', { code: 'ana', name: 'Ana Wellness', commissionRate: '0.10', tier: 'gold' })).id
    const link = await call('/links', { partnerId, assessmentId: assessment.id, linkCode: 'ana-health', campaignName: 'Spring check-ups' })
    linkCode = link.linkCode
    linkId = link.id
    await call('/products', { sku: 'coaching-3m', title: 'Three months of coaching', price: '240.00', currency: 'USD' })
    shop = await call('/shop-endpoint')
  })
  afterAll(async () => {
    await wa?.stop()
    await ai?.stop()
    await webhooks?.close()
    await api?.close()
  })

  const jobs = () => runJobs(db.current, wa.url, { AI_BASE_URL: ai.baseUrl, AI_API_KEY: 'sk-journey' })
  const send = async (message: f.RawMessage) => {
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [message] }))
    expect(res.statusCode).toBe(200)
    await jobs()
  }
  const lastBotMessage = async (waId: string) => (await db.current.owner<{ content: Record<string, any> }[]>`
    select m.content from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id where s.wa_id = ${waId} order by s.seq desc limit 1`)[0]!.content
  const sessionOf = async (waId: string) => (await db.current.owner<{ id: string; currentQuestionId: string | null; status: string; linkId: string | null; partnerId: string | null }[]>`
    select s.id, s.current_question_id, s.status, s.link_id, s.partner_id from assessments.sessions s join marketing.leads l on l.id = s.lead_id
     where l.wa_id = ${waId} order by s.started_at desc limit 1`)[0]
  const resultOf = async (sessionId: string) => (await db.current.owner<{ id: string; totalScore: number; categoryScores: unknown; band: string }[]>`
    select id, total_score::float8 as total_score, category_scores, band from assessments.results where session_id = ${sessionId}`)[0]

  /** Answers the bot's last question the way a person taps it: the button or list row of the value, else typed. */
  async function answerOnWhatsApp(waId: string, value: unknown) {
    const id = typeof value === 'boolean' ? `opt:${value ? 'yes' : 'no'}` : typeof value === 'number' ? `scale:${value}` : `opt:${String(value)}`
    for (let turns = 0; turns < 5; turns++) {
      const m = await lastBotMessage(waId)
      if (m.type === 'button') {
        const b = m.action.buttons.find((x: { reply: { id: string } }) => x.reply.id === id)
        if (b) return send(f.interactiveButtonReply({ from: waId, replyId: b.reply.id, title: b.reply.title }))
      }
      if (m.type === 'list') {
        const rows = m.action.sections[0].rows as { id: string; title: string }[]
        const row = rows.find((x) => x.id === id) ?? rows.find((x) => x.id === 'more')
        if (row) {
          await send(f.interactiveListReply({ from: waId, replyId: row.id, title: row.title }))
          if (row.id !== 'more') return
          continue
        }
      }
      // A typed prompt (numbers, text, multiple choice by the numbers it listed).
      const text = String(m.body ?? '')
      if (Array.isArray(value)) {
        if (value.length === 0) return send(f.textMessage({ from: waId, body: 'none' }))
        const numbers = value.map((v) => text.split('\n').find((l) => l.endsWith(`. ${labelOf(String(v))}`))!.split('.')[0])
        return send(f.textMessage({ from: waId, body: numbers.join(', ') }))
      }
      return send(f.textMessage({ from: waId, body: String(value) }))
    }
    throw new Error('no way to answer')
  }

  // Two whole journeys through the worker: minutes under a loaded suite, seconds alone.
  it('attributes both channels to the partner, scores both, and leaves a pending commission for each purchase', { timeout: 180_000 }, async () => {
    // Bruno, on the web.
    const visit = await webhooks.inject({ method: 'GET', url: `/l/${linkCode}`, headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1' } })
    expect(visit.statusCode).toBe(302)
    const cookie = String(visit.headers['set-cookie']).split(';')[0]!
    const start = await webhooks.inject({ method: 'POST', url: `/assessments/links/${linkCode}/sessions`, headers: { cookie }, payload: { demographics: { age: 41 } } })
    expect(start.statusCode, start.body).toBe(201)
    const { token } = start.json()
    let state = start.json().state
    while (state.question) {
      state = (await webhooks.inject({ method: 'POST', url: `/assessments/sessions/${token}/answers`, payload: { questionId: state.question.id, value: HEALTHY_ANSWERS[state.question.id] ?? null } })).json()
    }
    expect(state.status).toBe('completed')
    const webSessionId = state.sessionId as string
    const webResult = (await resultOf(webSessionId))!
    expect(webResult.band).toBeTruthy()

    // Carla, the same link, on WhatsApp: the wa.me link's text is her first message.
    const toChat = await webhooks.inject({ method: 'GET', url: `/l/${linkCode}?to=whatsapp`, headers: { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) Chrome/126.0 Mobile' } })
    expect(toChat.statusCode).toBe(302)
    const prefilled = new URL(toChat.headers.location as string).searchParams.get('text')!
    const waId = '5511987650042'
    await send(f.textMessage({ from: waId, body: prefilled }))
    for (let guard = 0; guard < 40; guard++) {
      const s = (await sessionOf(waId))!
      if (s.status === 'completed') break
      if (s.currentQuestionId === null) await send(f.textMessage({ from: waId, body: '41' }))
      else await answerOnWhatsApp(waId, HEALTHY_ANSWERS[s.currentQuestionId] ?? 'skip')
    }
    const waSession = (await sessionOf(waId))!
    expect(waSession).toMatchObject({ status: 'completed', linkId, partnerId })
    const waResult = (await resultOf(waSession.id))!
    // Identical answers, identical result, whichever channel.
    expect({ ...waResult, id: undefined }).toEqual({ ...webResult, id: undefined })

    // Both results analysed by the job; the second, with the identical pattern, from the cache: one provider call.
    await jobs()
    const analyses = await db.current.owner<{ resultId: string; source: string; narrative: string }[]>`
      select result_id, source, narrative from assessments.analyses where result_id in ${db.current.owner([webResult.id, waResult.id])}`
    const sourceOf = (id: string) => analyses.find((a) => a.resultId === id)
    expect(sourceOf(webResult.id)).toMatchObject({ source: 'provider' })
    expect(sourceOf(waResult.id)).toMatchObject({ source: 'cache', narrative: sourceOf(webResult.id)!.narrative })
    expect(ai.completions.filter((c) => c.status === 200)).toHaveLength(1)
    const seen = (await webhooks.inject({ method: 'GET', url: `/assessments/sessions/${token}/analysis` })).json()
    expect(seen).toMatchObject({ status: 'ready', analysis: { source: 'provider' } })

    // The shop reports a purchase by each: one through the web session, one through the WhatsApp lead.
    const [waLead] = await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${waId}`
    const purchase = async (transactionId: string, customer: object) => {
      const raw = JSON.stringify({ type: 'purchase.completed', data: { transactionId, sku: 'coaching-3m', customer } })
      const ts = Math.floor(Date.now() / 1000)
      const res = await webhooks.inject({
        method: 'POST', url: `/assessments/shop/${shop.publicKey}/events`, payload: raw,
        headers: { 'content-type': 'application/json', 'webhook-id': `evt_${transactionId}`, 'webhook-timestamp': String(ts), 'webhook-signature': signStandardWebhook(shop.secret, `evt_${transactionId}`, ts, raw) },
      })
      expect(res.statusCode, res.body).toBe(200)
      return res.json()
    }
    const web = await purchase('shop-web-1', { sessionId: webSessionId })
    const chat = await purchase('shop-wa-1', { leadId: waLead!.id })
    expect((await purchase('shop-wa-1', { leadId: waLead!.id })).duplicate).toBe(true)
    const commissions = await db.current.owner<{ purchaseId: string; partnerId: string; status: string; amount: string }[]>`
      select purchase_id, partner_id, status, amount::text from assessments.commissions where purchase_id in (${web.purchaseId}, ${chat.purchaseId}) order by created_at`
    // 240.00 × (0.10 × 1.25 gold) = 30.00, pending, once each.
    expect(commissions).toEqual([
      { purchaseId: web.purchaseId, partnerId, status: 'pending', amount: '30.00' },
      { purchaseId: chat.purchaseId, partnerId, status: 'pending', amount: '30.00' },
    ])

    const report = (await api.inject({ method: 'GET', url: `/v1/assessments/partners/${partnerId}/report`, headers: bearer(tenant.adminKey) })).json()
    expect(report.totals).toMatchObject({ clicks: 2, starts: 2, completions: 2, conversions: 2, revenue: '480.00', commissions: { created: '60.00', approved: '0.00' } })
    const events = await db.current.owner<{ name: string; n: number }[]>`
      select name, count(*)::int as n from analytics.events where tenant_id = ${tenant.id} and properties->>'partnerId' = ${partnerId} and name like 'link.%' group by name order by name`
    expect(events).toEqual([
      { name: 'link.clicked', n: 2 }, { name: 'link.completed', n: 2 }, { name: 'link.converted', n: 2 }, { name: 'link.started', n: 2 },
    ])
  })
})
