import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeSiteKey } from '../../test/factories/analytics-rows.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeForm, makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import { createFlow } from '../conversations/service.js'
import type { FormView } from '../marketing/forms/views.js'
import { changeLeads, mergeLeadsManually } from '../marketing/leads/service.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import { anonymousIdInText, anonymousIdsOfLead, backfillAnonymousEvents, leadForAnonymous, linkAnonymousIds } from './platform-events.js'
import type { SiteKeyView } from './schemas.js'

/**
 * Platform events end to end, through the real routes, webhook path, bot and worker tasks: each fact of the product
 * becomes its event once, however often the fact is replayed (a redelivered webhook, a retried job, statuses out of
 * order), never when the fact is rolled back; and a visitor's anonymous id is linked to the lead a form or a
 * click-to-WhatsApp proves it to be, with earlier and later events counted for that lead.
 */
describe('platform events', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let form: FormView
  let siteKey: SiteKeyView
  let phones = 0
  const newPhone = () => `55119${String(70_000_000 + ++phones * 7919).padStart(8, '0')}`

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    other = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    number = await makePhoneNumber(db.current.sql, tenant)
    form = await makeForm(db.current.sql, tenant)
    siteKey = await makeSiteKey(db.current.sql, tenant)
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    const who = { tenantId: tenant.id, actor: 'test' }
    await createFlow(db.current.sql, who, {
      publish: true,
      document: {
        name: 'booking', trigger: { type: 'keyword', keywords: ['book'] }, startNodeId: 'hi',
        nodes: [
          { type: 'send_message', id: 'hi', text: 'Booked!', next: 'q' },
          { type: 'qualify', id: 'q', status: 'qualified', next: 'bye' },
          { type: 'end', id: 'bye' },
        ],
      },
    })
    await createFlow(db.current.sql, who, {
      publish: true,
      document: { name: 'human', trigger: { type: 'keyword', keywords: ['human'] }, startNodeId: 'h', nodes: [{ type: 'handover', id: 'h', text: 'A person will answer' }] },
    })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  const jobs = () => runJobs(db.current, wa.url)
  const deliver = async (messages: unknown[] = [], statuses: unknown[] = []) => {
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: messages as never, statuses: statuses as never }))
    expect(res.statusCode).toBe(200)
  }
  const eventsOf = (name: string, where: { leadId?: string; key?: string } = {}) =>
    db.current.owner<{ leadId: string | null; dedupeKey: string; properties: Record<string, unknown>; acqSource: string | null; acqChannel: string | null; country: string | null; anonymousId: string | null; source: string }[]>`
      select lead_id, dedupe_key, properties, acq_source, acq_channel, country, anonymous_id, source from analytics.events
       where tenant_id = ${tenant.id} and name = ${name}
         ${where.leadId ? db.current.owner`and lead_id = ${where.leadId}` : db.current.owner``}
         ${where.key ? db.current.owner`and dedupe_key like ${where.key + '%'}` : db.current.owner``}
       order by id`
  const submit = async (answers: Record<string, unknown>) => {
    const res = await webhooks.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload: { name: 'Ana', ...answers } })
    expect(res.statusCode, res.body).toBe(201)
    await jobs()
    const [row] = await db.current.owner<{ leadId: string }[]>`select lead_id from marketing.form_submissions where id = ${res.json().submissionId}`
    return row!.leadId
  }
  const leadOfWaId = async (waId: string) =>
    (await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${waId} and merged_into is null`)[0]!.id
  const sendEvents = (events: unknown[], headers: Record<string, string> = { 'x-site-key': siteKey.publicKey, origin: 'https://clinic.example' }) =>
    webhooks.inject({ method: 'POST', url: '/v1/events', headers, payload: { events } })
  const pageView = (anonymousId: string, at = new Date()) =>
    ({ id: randomUUID(), name: 'pricing.viewed', type: 'page', occurredAt: at.toISOString(), anonymousId, context: { userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' } })

  describe('leads', () => {
    let leadId: string
    const patch = (status: string) =>
      api.inject({ method: 'PATCH', url: `/v1/leads/${leadId}`, headers: bearer(tenant.adminKey), payload: { status } })

    it('records lead.created once, with the acquisition of the form submission that created the lead', async () => {
      leadId = await submit({ email: `created-${randomUUID()}@example.com`, utm_source: 'google', utm_medium: 'cpc', utm_campaign: 'implants' })
      await jobs()
      const created = await eventsOf('lead.created', { leadId })
      expect(created).toEqual([expect.objectContaining({
        dedupeKey: `lead:created:${leadId}`, acqSource: 'google', acqChannel: 'paid', source: 'marketing',
        properties: { leadSource: 'web_form', formId: form.id },
      })])
      // The same person again is no new lead.
      expect(await submit({ email: (await db.current.owner<{ email: string }[]>`select email from marketing.leads where id = ${leadId}`)[0]!.email })).toBe(leadId)
      expect(await eventsOf('lead.created', { leadId })).toHaveLength(1)
    })

    it('records each real status change, and lead.qualified / lead.converted only the first time', async () => {
      expect((await patch('qualified')).statusCode).toBe(200)
      expect((await patch('qualified')).statusCode).toBe(200)
      expect((await patch('contacted')).statusCode).toBe(200)
      expect((await patch('qualified')).statusCode).toBe(200)
      const changes = await eventsOf('lead.status_changed', { leadId })
      expect(changes.map((e) => [e.properties.from, e.properties.to])).toEqual([['new', 'qualified'], ['qualified', 'contacted'], ['contacted', 'qualified']])
      expect(await eventsOf('lead.qualified', { leadId })).toEqual([expect.objectContaining({ dedupeKey: `lead:qualified:${leadId}`, properties: { from: 'new' } })])

      const bulk = () => api.inject({ method: 'POST', url: '/v1/leads/bulk', headers: bearer(tenant.adminKey), payload: { leadIds: [leadId], status: 'converted' } })
      expect((await bulk()).statusCode).toBe(200)
      expect((await bulk()).statusCode).toBe(200)
      expect(await eventsOf('lead.converted', { leadId })).toHaveLength(1)
      expect((await eventsOf('lead.status_changed', { leadId })).at(-1)!.properties).toMatchObject({ from: 'qualified', to: 'converted' })
    })

    it('records nothing when the status change is rolled back', async () => {
      const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: 'Rolled back' }))
      await expect(withTenant(db.current.sql, tenant.id, async (tx) => {
        await changeLeads(tx, [lead.id], { type: 'set_status', status: 'qualified' })
        throw new Error('the turn failed')
      })).rejects.toThrow('the turn failed')
      expect(await eventsOf('lead.status_changed', { leadId: lead.id })).toEqual([])
      expect(await eventsOf('lead.qualified', { leadId: lead.id })).toEqual([])
    })

    it('records lead.merged once, under the survivor, with the merged lead named', async () => {
      const older = await submit({ email: `older-${randomUUID()}@example.com` })
      const newer = await submit({ email: `newer-${randomUUID()}@example.com` })
      const who = { tenantId: tenant.id, actor: 'api_key:test', requestId: null }
      await mergeLeadsManually(db.current.sql, who, older, newer)
      await expect(mergeLeadsManually(db.current.sql, who, older, newer)).rejects.toThrow()
      expect(await eventsOf('lead.merged', { key: `lead:merged:${newer}` })).toEqual([
        expect.objectContaining({ leadId: older, properties: { mergedLeadId: newer, reason: 'manual' } }),
      ])
      // The merged lead's own lead.created moved with its other events.
      expect(await eventsOf('lead.created', { key: `lead:created:${newer}` })).toEqual([expect.objectContaining({ leadId: older })])
    })
  })

  describe('WhatsApp', () => {
    it('records a click-to-WhatsApp lead once, channel whatsapp, however often the webhook is redelivered', async () => {
      const from = newPhone()
      const message = f.withReferral(f.textMessage({ from, body: 'Oi, vi o anúncio' }), { source_url: 'https://www.instagram.com/p/xyz' })
      await deliver([message])
      await deliver([message])
      await jobs()
      await deliver([message])
      await jobs()
      const leadId = await leadOfWaId(from)
      expect(await eventsOf('lead.created', { leadId })).toEqual([expect.objectContaining({
        acqChannel: 'whatsapp', acqSource: 'instagram', country: 'BR', properties: { leadSource: 'whatsapp_ad' },
      })])
      expect(await eventsOf('whatsapp.message_received', { leadId })).toHaveLength(1)
    })

    it('records sent when Meta takes the message, and delivered, read and failed once each, in any order', async () => {
      const from = newPhone()
      await deliver([f.textMessage({ from, body: 'book' })])
      await jobs()
      await jobs()
      const leadId = await leadOfWaId(from)
      const [message] = await db.current.owner<{ id: string; wamid: string }[]>`select id, wamid from whatsapp.messages where lead_id = ${leadId} and direction = 'outbound'`
      expect(message!.wamid).toBeTruthy()
      expect(await eventsOf('whatsapp.message_sent', { leadId })).toEqual([expect.objectContaining({ dedupeKey: `wa:sent:${message!.wamid}`, properties: { messageId: message!.id, sentBy: 'bot' } })])

      const status = (s: f.StatusName, secondsAgo: number) => f.statusUpdate({ id: message!.wamid, status: s, recipientId: from, timestamp: new Date(Date.now() - secondsAgo * 1000) })
      // Read first, then the late delivered, then both again (redelivered), in separate deliveries and one batch.
      await deliver([], [status('read', 10)])
      await jobs()
      await deliver([], [status('delivered', 20)])
      await deliver([], [status('delivered', 20), status('read', 10)])
      await jobs()
      expect(await eventsOf('whatsapp.message_read', { leadId })).toEqual([expect.objectContaining({ dedupeKey: `wa:status:${message!.wamid}:read`, properties: { messageId: message!.id } })])
      expect(await eventsOf('whatsapp.message_delivered', { leadId })).toHaveLength(1)
      // The message keeps its highest status.
      expect((await db.current.owner<{ status: string }[]>`select status from whatsapp.messages where id = ${message!.id}`)[0]!.status).toBe('read')
    })

    it('records failed once with its error code, and sent with who sent it', async () => {
      const from = newPhone()
      await deliver([f.textMessage({ from, body: 'a question' })])
      await jobs()
      const lead = { id: await leadOfWaId(from) }
      // An API send (inside the service window the message opened), whose failure status arrives twice.
      const sent = await api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(tenant.adminKey), payload: { type: 'text', leadId: lead.id, text: 'Hello' } })
      expect(sent.statusCode, sent.body).toBe(202)
      await jobs()
      const [message] = await db.current.owner<{ id: string; wamid: string }[]>`select id, wamid from whatsapp.messages where lead_id = ${lead.id} and direction = 'outbound'`
      const failed = f.statusUpdate({ id: message!.wamid, status: 'failed', recipientId: from })
      await deliver([], [failed])
      await deliver([], [failed])
      await jobs()
      expect(await eventsOf('whatsapp.message_failed', { leadId: lead.id })).toEqual([expect.objectContaining({ properties: { messageId: message!.id, errorCode: 131026 } })])
      expect(await eventsOf('whatsapp.message_sent', { leadId: lead.id })).toEqual([expect.objectContaining({ properties: { messageId: message!.id, sentBy: 'api' } })])
    })
  })

  describe('the bot', () => {
    it('records started and completed once per run, and the qualify node as a status change', async () => {
      const from = newPhone()
      await deliver([f.textMessage({ from, body: 'book' })])
      await jobs()
      const leadId = await leadOfWaId(from)
      const [conversation] = await db.current.owner<{ id: string; flowId: string }[]>`select id, flow_id from conversations.conversations where lead_id = ${leadId}`
      const started = await eventsOf('bot.conversation_started', { leadId })
      expect(started).toEqual([expect.objectContaining({ source: 'bot', properties: { flowId: conversation!.flowId, conversationId: conversation!.id } })])
      expect(await eventsOf('bot.conversation_completed', { leadId })).toEqual([expect.objectContaining({ properties: { flowId: conversation!.flowId, conversationId: conversation!.id } })])
      expect(await eventsOf('lead.qualified', { leadId })).toHaveLength(1)
      // A second run of the flow is a second conversation start.
      await deliver([f.textMessage({ from, body: 'book' })])
      await jobs()
      expect(await eventsOf('bot.conversation_started', { leadId })).toHaveLength(2)
      expect(await eventsOf('bot.conversation_completed', { leadId })).toHaveLength(2)
      expect(await eventsOf('lead.qualified', { leadId })).toHaveLength(1)
    })

    it('records a handover by the bot once, and one by a person through the API once', async () => {
      const from = newPhone()
      await deliver([f.textMessage({ from, body: 'human' })])
      await jobs()
      await deliver([f.textMessage({ from, body: 'hello?' })])
      await jobs()
      const leadId = await leadOfWaId(from)
      expect(await eventsOf('bot.conversation_handed_over', { leadId })).toEqual([expect.objectContaining({ properties: expect.objectContaining({ by: 'bot' }) })])

      const other = newPhone()
      await deliver([f.textMessage({ from: other, body: 'just a question' })])
      await jobs()
      const otherLead = await leadOfWaId(other)
      const [conversation] = await db.current.owner<{ id: string }[]>`select id from conversations.conversations where lead_id = ${otherLead}`
      for (let i = 0; i < 2; i++) {
        const res = await api.inject({ method: 'POST', url: `/v1/conversations/${conversation!.id}/handover`, headers: bearer(tenant.adminKey), payload: {} })
        expect(res.statusCode, res.body).toBe(200)
      }
      expect(await eventsOf('bot.conversation_handed_over', { leadId: otherLead })).toEqual([expect.objectContaining({ properties: { conversationId: conversation!.id, by: 'person' } })])
    })
  })

  describe('form.viewed', () => {
    const pixel = (query: string, headers: Record<string, string> = {}) =>
      webhooks.inject({ method: 'GET', url: `/forms/${form.publicKey}/view.gif?${query}`, headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1', referer: 'https://clinic.example/contact?utm_source=newsletter&utm_medium=email', ...headers } })
    const views = async (anonymousId: string) => (await eventsOf('form.viewed')).filter((e) => e.anonymousId === anonymousId)

    it('answers the pixel with a GIF and no cookie, and counts one view per visitor, form and day', async () => {
      const res = await pixel('aid=pixel-visitor-1')
      expect(res.statusCode).toBe(200)
      expect(res.headers['content-type']).toBe('image/gif')
      expect(res.headers['set-cookie']).toBeUndefined()
      expect(res.rawPayload.subarray(0, 6).toString()).toBe('GIF89a')
      await pixel('aid=pixel-visitor-1')
      await jobs()
      await pixel('aid=pixel-visitor-1')
      await jobs()
      const counted = await views('pixel-visitor-1')
      expect(counted).toEqual([expect.objectContaining({ source: 'site', properties: { formId: form.id, via: 'pixel' }, acqSource: 'newsletter', acqChannel: 'email' })])
      const [device] = await db.current.owner<{ device: string }[]>`select device from analytics.events where tenant_id = ${tenant.id} and name = 'form.viewed' and anonymous_id = 'pixel-visitor-1'`
      expect(device!.device).toBe('mobile')
    })

    it('counts each view the page names with its own id once', async () => {
      const [a, b] = [randomUUID(), randomUUID()]
      for (const vid of [a, b, a]) expect((await pixel(`aid=pixel-visitor-2&vid=${vid}`)).statusCode).toBe(200)
      await jobs()
      expect(await views('pixel-visitor-2')).toHaveLength(2)
    })

    it('answers crawlers and link-preview fetchers without counting them', async () => {
      for (const ua of ['Googlebot/2.1 (+http://www.google.com/bot.html)', 'WhatsApp/2.23.20.0', 'curl/8.5.0']) {
        expect((await pixel('aid=pixel-bot', { 'user-agent': ua })).statusCode).toBe(200)
      }
      await jobs()
      expect(await views('pixel-bot')).toEqual([])
    })

    it.each([
      ['no visitor id', '', 400],
      ['a visitor id with spaces', 'aid=a%20b', 400],
      ['a view id that is not a UUID', 'aid=v&vid=12', 400],
    ])('refuses %s and counts nothing', async (_what, query, status) => {
      const res = await pixel(query)
      expect(res.statusCode).toBe(status)
      expect(res.json().error.code).toBe('BAD_REQUEST')
    })

    it('answers 404 for an unknown form and counts nothing anywhere', async () => {
      const res = await webhooks.inject({ method: 'GET', url: '/forms/pf_unknown0000000000000000/view.gif?aid=x-visitor' })
      expect(res.statusCode).toBe(404)
      await jobs()
      expect(await db.current.owner`select 1 from analytics.events where name = 'form.viewed' and anonymous_id = 'x-visitor'`).toHaveLength(0)
    })

    it('files a view of one tenant\'s form under that tenant only', async () => {
      const theirs = await makeForm(db.current.sql, other)
      await webhooks.inject({ method: 'GET', url: `/forms/${theirs.publicKey}/view.gif?aid=cross-visitor`, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' } })
      await jobs()
      const rows = await db.current.owner<{ tenantId: string; formId: string }[]>`select tenant_id, properties ->> 'formId' as form_id from analytics.events where name = 'form.viewed' and anonymous_id = 'cross-visitor'`
      expect(rows).toEqual([{ tenantId: other.id, formId: theirs.id }])
      expect(await withTenant(db.current.sql, tenant.id, (tx) => tx`select 1 from analytics.events where anonymous_id = 'cross-visitor'`)).toHaveLength(0)
    })

    it('limits the pixel per IP with the form\'s other pages', async () => {
      const limited = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '1' })
      try {
        const codes: number[] = []
        for (let i = 0; i < 5; i++) codes.push((await limited.inject({ method: 'GET', url: `/forms/${form.publicKey}/view.gif?aid=limited-visitor`, remoteAddress: '203.0.113.9' })).statusCode)
        expect(codes).toEqual([200, 200, 200, 200, 429])
      } finally {
        await limited.close()
      }
    })

    it('takes form.viewed from the site key too, with its formId', async () => {
      const view = { ...pageView('site-visitor-1'), name: 'form.viewed', properties: { formId: form.id } }
      expect((await sendEvents([view])).statusCode).toBe(202)
      expect((await sendEvents([view])).statusCode).toBe(202)
      await jobs()
      expect(await views('site-visitor-1')).toEqual([expect.objectContaining({ source: 'site', properties: { formId: form.id } })])
    })
  })

  describe('linking visitors to leads', () => {
    it('links the visitor of a form submission, backfills their earlier page views and gives later ones the lead', async () => {
      const visitor = `visitor-${randomUUID()}`
      const earlier = Array.from({ length: 5 }, (_, i) => pageView(visitor, new Date(Date.now() - (10 - i) * 60_000)))
      expect((await sendEvents(earlier)).statusCode).toBe(202)
      await jobs()
      expect((await db.current.owner`select 1 from analytics.events where anonymous_id = ${visitor} and lead_id is null`)).toHaveLength(5)

      const leadId = await submit({ email: `linked-${randomUUID()}@example.com`, anonymous_id: visitor })
      await jobs()
      const linked = await db.current.owner<{ leadId: string | null; name: string }[]>`select lead_id, name from analytics.events where anonymous_id = ${visitor} order by id`
      expect(linked.map((e) => e.leadId)).toEqual(linked.map(() => leadId))
      expect(linked.map((e) => e.name)).toContain('form.submitted')
      expect(await withTenant(db.current.sql, tenant.id, (tx) => leadForAnonymous(tx, [visitor, 'never-seen']))).toEqual(new Map([[visitor, leadId]]))
      expect(await withTenant(db.current.sql, tenant.id, (tx) => anonymousIdsOfLead(tx, leadId))).toEqual([visitor])

      // After the link: the event gets the lead when processed.
      expect((await sendEvents([pageView(visitor)])).statusCode).toBe(202)
      await jobs()
      expect((await db.current.owner`select 1 from analytics.events where anonymous_id = ${visitor} and lead_id is null`)).toHaveLength(0)
      // The first link wins: the same visitor submitting as someone else does not move their history.
      await submit({ email: `someone-else-${randomUUID()}@example.com`, anonymous_id: visitor })
      expect(await withTenant(db.current.sql, tenant.id, (tx) => leadForAnonymous(tx, [visitor]))).toEqual(new Map([[visitor, leadId]]))
    })

    it('links the visitor a click-to-WhatsApp link names in its prefilled text', async () => {
      const visitor = `wa-visitor-${randomUUID().slice(0, 8)}`
      expect((await sendEvents([pageView(visitor)])).statusCode).toBe(202)
      await jobs()
      const from = newPhone()
      await deliver([f.textMessage({ from, body: `Olá! Quero agendar [ref:${visitor}]` })])
      await jobs()
      const leadId = await leadOfWaId(from)
      expect(await withTenant(db.current.sql, tenant.id, (tx) => leadForAnonymous(tx, [visitor]))).toEqual(new Map([[visitor, leadId]]))
      expect(await db.current.owner<{ leadId: string }[]>`select lead_id from analytics.events where anonymous_id = ${visitor}`).toEqual([{ leadId }])
    })

    it('backfills a visitor with many events in bounded batches, and a second run finds nothing left', async () => {
      const visitor = `busy-${randomUUID()}`
      const many = Array.from({ length: 1000 }, (_, i) => pageView(visitor, new Date(Date.now() - (2000 - i) * 1000)))
      expect((await sendEvents(many)).statusCode).toBe(202)
      await jobs()
      const lead = await withTenant(db.current.sql, tenant.id, async (tx) => {
        const l = await makeLead(tx, tenant.id, { name: 'Busy visitor' })
        await linkAnonymousIds(tx, [{ anonymousId: visitor, leadId: l.id, via: 'api' }])
        return l
      })
      expect(await backfillAnonymousEvents(db.current.sql, tenant.id, [visitor], 300)).toBe(1000)
      expect(await backfillAnonymousEvents(db.current.sql, tenant.id, [visitor], 300)).toBe(0)
      expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where anonymous_id = ${visitor} and lead_id = ${lead.id}`)[0]!.n).toBe(1000)
      await jobs()
    })

    it('links through an API key event naming both the lead and the visitor', async () => {
      const visitor = `api-visitor-${randomUUID()}`
      const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: 'Identified' }))
      expect((await sendEvents([pageView(visitor)])).statusCode).toBe(202)
      await jobs()
      const identify = { id: randomUUID(), name: 'identify', type: 'identify', occurredAt: new Date().toISOString(), anonymousId: visitor, leadId: lead.id }
      expect((await sendEvents([identify], bearer(tenant.adminKey))).statusCode).toBe(202)
      await jobs()
      expect(await db.current.owner<{ leadId: string }[]>`select lead_id from analytics.events where anonymous_id = ${visitor} order by id`).toEqual([{ leadId: lead.id }, { leadId: lead.id }])
    })

    it('keeps the link with the survivor of a merge', async () => {
      const visitor = `merge-visitor-${randomUUID()}`
      const older = await submit({ email: `m-older-${randomUUID()}@example.com` })
      const newer = await submit({ email: `m-newer-${randomUUID()}@example.com`, anonymous_id: visitor })
      await mergeLeadsManually(db.current.sql, { tenantId: tenant.id, actor: 'api_key:test', requestId: null }, older, newer)
      expect(await withTenant(db.current.sql, tenant.id, (tx) => leadForAnonymous(tx, [visitor]))).toEqual(new Map([[visitor, older]]))
      expect(await withTenant(db.current.sql, tenant.id, (tx) => anonymousIdsOfLead(tx, older))).toEqual([visitor])
    })

    it('forgets the link, and the visitor id on the lead\'s events, when the lead is erased', async () => {
      const visitor = `erased-visitor-${randomUUID()}`
      expect((await sendEvents([pageView(visitor)])).statusCode).toBe(202)
      await jobs()
      const leadId = await submit({ email: `erased-${randomUUID()}@example.com`, anonymous_id: visitor })
      await jobs()
      const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { leadId } })
      expect(posted.statusCode, posted.body).toBe(202)
      await jobs()
      expect(await db.current.owner`select 1 from analytics.identities where anonymous_id = ${visitor}`).toHaveLength(0)
      expect(await db.current.owner`select 1 from analytics.events where anonymous_id = ${visitor}`).toHaveLength(0)
      expect(await withTenant(db.current.sql, tenant.id, (tx) => leadForAnonymous(tx, [visitor]))).toEqual(new Map())
    })

    it('never links across tenants: another tenant sees no link and cannot name this tenant\'s lead', async () => {
      const visitor = `tenant-visitor-${randomUUID()}`
      const leadId = await submit({ email: `t-${randomUUID()}@example.com`, anonymous_id: visitor })
      expect(await withTenant(db.current.sql, other.id, (tx) => leadForAnonymous(tx, [visitor]))).toEqual(new Map())
      expect(await withTenant(db.current.sql, other.id, (tx) => anonymousIdsOfLead(tx, leadId))).toEqual([])
      // The lead is not one of the other tenant's: the join finds nothing, nothing is linked.
      expect(await withTenant(db.current.sql, other.id, (tx) => linkAnonymousIds(tx, [{ anonymousId: 'x-tenant', leadId, via: 'api' }]))).toEqual([])
    })
  })

  it('reads the anonymous id of a click-to-WhatsApp text only from its token', () => {
    expect(anonymousIdInText('Oi [ref:abc12345-x_y.z]')).toBe('abc12345-x_y.z')
    expect(anonymousIdInText('ref:abc12345 without brackets')).toBeNull()
    expect(anonymousIdInText('[ref:short]')).toBeNull()
    expect(anonymousIdInText(undefined)).toBeNull()
  })
})
