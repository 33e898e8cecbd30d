import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTemplate, makeWhatsAppLead, type TestLead } from '../../test/factories/conversations-rows.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, PLATFORM_APP_SECRET, testSecrets, type TestNumber } from '../../test/factories/whatsapp.js'
import { drainJobs, postDelivery } from '../../test/whatsapp.js'
import { applyStatuses, refreshMessageStatuses } from '../whatsapp/apply-items.js'
import type { StatusItem } from '../whatsapp/webhook/split.js'
import { createGraphClient, type GraphClient } from '../whatsapp/graph/client.js'
import { markAccepted } from '../whatsapp/outbound/queries.js'
import { drainRecipientOutbox } from '../whatsapp/outbound/sender.js'
import { delivery, newWamid, statusUpdate, type StatusName } from '../whatsapp/webhook/fixtures.js'
import type { ExperimentView } from './schemas.js'

/**
 * A template send naming an experiment, end to end: POST /v1/messages picks the lead's variation's template, the
 * sender sends it to the Cloud API emulator, Meta's status webhooks come back signed through POST /webhooks/whatsapp
 * and are applied by the worker's job; the exposure is recorded on delivered, once, in whatever order things happen.
 */
describe('template sends that name an experiment', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let graph: GraphClient
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let experiment: ExperimentView

  const BODY = [{ type: 'BODY', text: 'Hello! How can we help?' }]
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    const webhooksUrl = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    wa = await startWhatsAppEmulator({ webhookUrl: `${webhooksUrl}/webhooks/whatsapp`, appSecret: PLATFORM_APP_SECRET, statusDelayMs: 5, wabaId: number.wabaId })
    graph = createGraphClient({ baseUrl: wa.url, apiVersion: 'v21.0', timeoutMs: 2_000 })
    await makeTemplate(db.current.sql, tenant, number, { name: 'greeting_full', components: BODY })
    await makeTemplate(db.current.sql, tenant, number, { name: 'greeting_short', components: BODY })
    await makeTemplate(db.current.sql, tenant, number, { name: 'greeting_name', components: [{ type: 'BODY', text: 'Hi {{1}}!' }] })
    experiment = await makeExperiment(db.current.sql, tenant, {
      key: 'template-greeting',
      variations: [
        { key: 'full', weight: 0.5 },
        { key: 'short', weight: 0.5, value: { template: { name: 'greeting_short' } } },
      ],
    })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })
  beforeEach(() => wa.reset())

  const sendWith = (lead: TestLead, experimentKey: string | undefined, key = tenant.adminKey, template: Record<string, unknown> = { name: 'greeting_full', language: 'en_US' }) =>
    api.inject({ method: 'POST', url: '/v1/messages', headers: bearer(key), payload: { type: 'template', leadId: lead.id, template, ...(experimentKey ? { experiment: experimentKey } : {}) } })
  const newLead = () => makeWhatsAppLead(db.current.sql, tenant)
  /** The send job, as the worker runs it, against the emulator. */
  const sendOut = (messageId: string) => drainRecipientOutbox({ sql: db.current.sql, graph, secrets: testSecrets, ratePerSecond: 1000, retryBaseMs: 10 }, tenant.id, messageId)
  /** Meta's status webhook for one of our messages, signed, through the webhook route; the worker applies it. */
  const reportStatus = async (lead: TestLead, wamid: string, status: StatusName, messageId: string | null) => {
    const res = await postDelivery(webhooks, delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId,
      statuses: [statusUpdate({ id: wamid, status, recipientId: lead.waId, ...(messageId ? { bizOpaqueCallbackData: `wa-out:${messageId}` } : {}) })],
    }))
    expect(res.statusCode).toBe(200)
  }
  /** The status jobs only: the message's send job is taken out of the queue so the order of events is the test's. */
  const applyStatusesOnly = async () => {
    await db.current.owner`delete from graphile_worker._private_jobs where task_id in (select id from graphile_worker._private_tasks where identifier = 'whatsapp__send_message')`
    await drainJobs(db.current)
  }
  /** What the sender does once Meta answers: store the wamid, then apply the statuses that came before it. */
  const storeWamid = (messageId: string, wamid: string) => withTenant(db.current.sql, tenant.id, async (tx) => {
    await markAccepted(tx, messageId, wamid)
    await refreshMessageStatuses(tx, [wamid])
  })
  const exposures = (leadId: string) =>
    db.current.owner<{ variationKey: string; source: string; unitId: string }[]>`
      select variation_key, source, unit_id from experiments.exposures where lead_id = ${leadId} and experiment_id = ${experiment.id}`
  const exposureEvents = (leadId: string) =>
    db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where lead_id = ${leadId} and name = 'experiment.exposure'`.then((r) => r[0]!.n)
  const pending = (messageId: string) =>
    db.current.owner<{ state: string; wamid: string | null; variationKey: string; templateName: string; leadId: string }[]>`
      select state, wamid, variation_key, template_name, lead_id from experiments.pending_exposures where message_id = ${messageId}`.then((r) => r[0] ?? null)

  it("sends each lead its variation's template, and records the exposure when Meta's delivered comes back through the webhook", async () => {
    const seen = new Set<string>()
    for (let i = 0; i < 12 && seen.size < 2; i++) {
      const lead = await newLead()
      const res = await sendWith(lead, 'template-greeting')
      expect(res.statusCode, res.body).toBe(202)
      const message = res.json()
      const variationKey = message.experiment.variationKey as string
      seen.add(variationKey)
      const templateName = variationKey === 'short' ? 'greeting_short' : 'greeting_full'
      expect(message).toMatchObject({ type: 'template', content: { name: templateName }, experiment: { key: 'template-greeting', phase: 1, variationKey } })
      expect(await pending(message.id)).toEqual({ state: 'pending', wamid: null, variationKey, templateName, leadId: lead.id })
      // Queued is not exposed.
      expect(await exposures(lead.id)).toEqual([])

      expect(await sendOut(message.id)).toEqual({ kind: 'idle' })
      const sent = wa.sent.find((m) => m.to === lead.waId)!
      expect(sent.body).toMatchObject({ type: 'template', template: { name: templateName } })
      expect((await pending(message.id))!.wamid).toBe(sent.wamid)
      // The emulator posts sent, delivered and read to the webhook route; the worker applies them.
      for (let k = 0; k < 100 && wa.webhooks.filter((h) => h.wamid === sent.wamid && h.delivered).length < 3; k++) await sleep(20)
      await drainJobs(db.current)
      expect(await exposures(lead.id)).toEqual([{ variationKey, source: 'template', unitId: lead.id }])
      expect(await pending(message.id)).toMatchObject({ state: 'exposed', wamid: sent.wamid })
      expect(await exposureEvents(lead.id)).toBe(1)
    }
    expect([...seen].sort()).toEqual(['full', 'short'])
  })

  it('records the exposure once when delivered comes before the wamid is stored (by the message id Meta echoes), and again adds nothing', async () => {
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-greeting')).json()
    const wamid = newWamid()
    // Meta's delivered overtakes the sender's commit of the wamid: it carries our idempotency key.
    await reportStatus(lead, wamid, 'delivered', message.id)
    await applyStatusesOnly()
    expect(await exposures(lead.id)).toHaveLength(1)
    // Then the sender stores the wamid and applies what had come (what drainRecipientOutbox does after Meta's answer).
    await storeWamid(message.id, wamid)
    // Repeats and later statuses: nothing more.
    await reportStatus(lead, wamid, 'delivered', message.id)
    await reportStatus(lead, wamid, 'read', message.id)
    await drainJobs(db.current)
    expect(await exposures(lead.id)).toEqual([{ variationKey: message.experiment.variationKey, source: 'template', unitId: lead.id }])
    expect(await exposureEvents(lead.id)).toBe(1)
    expect(await pending(message.id)).toMatchObject({ state: 'exposed', wamid })
  })

  it('records the exposure when the wamid is stored after a delivered that carried no idempotency key', async () => {
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-greeting')).json()
    const wamid = newWamid()
    await reportStatus(lead, wamid, 'read', null)
    await applyStatusesOnly()
    // The status names a wamid nobody has yet: nothing can be exposed.
    expect(await exposures(lead.id)).toEqual([])
    await storeWamid(message.id, wamid)
    // A read message was delivered.
    expect(await exposures(lead.id)).toHaveLength(1)
    expect(await pending(message.id)).toMatchObject({ state: 'exposed', wamid })
  })

  it.each(['status first', 'wamid first'] as const)('records one exposure when the status webhook and the sender commit at the same time (%s)', async (first) => {
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-greeting')).json()
    const wamid = newWamid()
    const item = { kind: 'status', itemKey: `race:${wamid}`, raw: {}, status: {
      wamid, status: 'delivered', timestamp: new Date(), recipientId: lead.waId, recipientUserId: null, errors: [], bizOpaqueCallbackData: `wa-out:${message.id}`,
    } } as unknown as StatusItem
    // Each path runs in its own transaction and holds it open until the other has run as far as it can.
    let release!: () => void
    const held = new Promise<void>((r) => { release = r })
    let ran!: () => void
    const firstRan = new Promise<void>((r) => { ran = r })
    const firstPath = withTenant(db.current.sql, tenant.id, async (tx) => {
      if (first === 'status first') await applyStatuses(tx, tenant.id, [item])
      else await markAccepted(tx, message.id, wamid).then(() => refreshMessageStatuses(tx, [wamid]))
      ran()
      await held
    })
    await firstRan
    const secondPath = withTenant(db.current.sql, tenant.id, async (tx) => {
      if (first === 'status first') await markAccepted(tx, message.id, wamid).then(() => refreshMessageStatuses(tx, [wamid]))
      else await applyStatuses(tx, tenant.id, [item])
    })
    // The second blocks on the pending row the first holds; let the first commit.
    await sleep(200)
    release()
    await Promise.all([firstPath, secondPath])
    expect(await exposures(lead.id)).toHaveLength(1)
    expect(await exposureEvents(lead.id)).toBe(1)
    expect(await pending(message.id)).toMatchObject({ state: 'exposed', wamid })
  })

  it('does not count a failed send as an exposure, but a delivered after it does', async () => {
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-greeting')).json()
    // Meta took it (the emulator's own statuses would say delivered, so the answer is stored as the sender would).
    const wamid = newWamid()
    await withTenant(db.current.sql, tenant.id, (tx) => markAccepted(tx, message.id, wamid))
    await reportStatus(lead, wamid, 'failed', message.id)
    await applyStatusesOnly()
    expect(await pending(message.id)).toMatchObject({ state: 'failed', wamid })
    expect(await exposures(lead.id)).toEqual([])
    expect(await exposureEvents(lead.id)).toBe(0)
    await reportStatus(lead, wamid, 'delivered', message.id)
    await drainJobs(db.current)
    expect(await exposures(lead.id)).toHaveLength(1)
    expect(await pending(message.id)).toMatchObject({ state: 'exposed' })
  })

  it('ends the pending exposure as failed when Meta refuses the send itself, before any status', async () => {
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-greeting')).json()
    // 132001: the template does not exist in that language; a refusal the sender does not retry.
    wa.failNext(132001, 1, { httpStatus: 400 })
    await sendOut(message.id)
    expect(wa.sent.find((m) => m.to === lead.waId)).toBeUndefined()
    expect(await pending(message.id)).toMatchObject({ state: 'failed', wamid: null })
    expect(await exposures(lead.id)).toEqual([])
    expect(await exposureEvents(lead.id)).toBe(0)
  })

  it('exposes a unit once per phase however many of its template sends are delivered, and keeps its variation', async () => {
    const lead = await newLead()
    const first = (await sendWith(lead, 'template-greeting')).json()
    const second = (await sendWith(lead, 'template-greeting')).json()
    expect(second.experiment.variationKey).toBe(first.experiment.variationKey)
    for (const m of [first, second]) {
      const wamid = newWamid()
      await reportStatus(lead, wamid, 'delivered', m.id)
    }
    await applyStatusesOnly()
    expect(await exposures(lead.id)).toHaveLength(1)
    expect(await exposureEvents(lead.id)).toBe(1)
    expect((await pending(first.id))!.state).toBe('exposed')
    expect((await pending(second.id))!.state).toBe('exposed')
  })

  it("lets a variation set the template's parameters, and results count the exposures", async () => {
    const e = await makeExperiment(db.current.sql, tenant, {
      key: 'template-params',
      variations: [
        { key: 'formal', weight: 0.5, value: { template: { name: 'greeting_name', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Sra. Lima' }] }] } } },
        { key: 'casual', weight: 0.5, value: { template: { name: 'greeting_name', components: [{ type: 'body', parameters: [{ type: 'text', text: 'Ana' }] }] } } },
      ],
    })
    const lead = await newLead()
    const message = (await sendWith(lead, 'template-params')).json()
    const text = message.experiment.variationKey === 'formal' ? 'Sra. Lima' : 'Ana'
    expect(message.content).toMatchObject({ name: 'greeting_name', components: [{ type: 'body', parameters: [{ type: 'text', text }] }] })
    await reportStatus(lead, newWamid(), 'delivered', message.id)
    await applyStatusesOnly()
    const results = (await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })).json()
    const arm = results.variations.find((v: { key: string }) => v.key === message.experiment.variationKey)
    expect(arm).toMatchObject({ units: 1, exposed: 1 })
  })

  it("sends the template as given, with no exposure pending, to a lead the experiment's targeting leaves out", async () => {
    await makeExperiment(db.current.sql, tenant, {
      key: 'template-targeted', targeting: { attribute: 'tags', op: 'eq', value: 'vip' },
      variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.5, value: { template: { name: 'greeting_short' } } }],
    })
    const lead = await newLead()
    const res = await sendWith(lead, 'template-targeted')
    expect(res.statusCode, res.body).toBe(202)
    expect(res.json()).toMatchObject({ content: { name: 'greeting_full' }, experiment: null })
    expect(await pending(res.json().id)).toBeNull()
  })

  it.each([
    ['an unknown experiment', 'no-such-experiment', 404],
    ['a draft experiment', 'template-draft', 422],
    ['a variation whose value is not a template', 'template-bad-value', 422],
    ['a variation naming a template that does not exist', 'template-missing', 404],
  ])('refuses %s, and queues nothing', async (_what, key, status) => {
    if (key === 'template-draft') await makeExperiment(db.current.sql, tenant, { key, draft: true })
    if (key === 'template-bad-value' || key === 'template-missing') {
      const value = key === 'template-bad-value' ? { template: { name: 'Not A Name!' } } : { template: { name: 'no_such_template' } }
      await makeExperiment(db.current.sql, tenant, { key, variations: [{ key: 'a', weight: 0.5, value }, { key: 'b', weight: 0.5, value }] })
    }
    const lead = await newLead()
    const res = await sendWith(lead, key)
    expect(res.statusCode, res.body).toBe(status)
    const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from whatsapp.messages where lead_id = ${lead.id}`
    expect(row!.n).toBe(0)
    const [assigned] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where lead_id = ${lead.id}`
    expect(assigned!.n).toBe(0)
  })

  it("refuses an experiment key of the wrong shape (400), and another tenant's experiment is unknown (404)", async () => {
    const lead = await newLead()
    expect((await sendWith(lead, 'Bad Key!')).statusCode).toBe(400)
    const otherNumber = await makePhoneNumber(db.current.sql, other)
    await makeTemplate(db.current.sql, other, otherNumber, { name: 'greeting_full', components: BODY })
    const theirs = await makeWhatsAppLead(db.current.sql, other)
    const res = await sendWith(theirs, 'template-greeting', other.adminKey)
    expect(res.statusCode, res.body).toBe(404)
    expect(res.json().error.message).toContain('experiment template-greeting not found')
  })
})
