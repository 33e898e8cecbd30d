import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import { createFlow } from '../conversations/service.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import { bucketUnit } from './hashing.js'
import type { ExperimentView } from './schemas.js'

/** A bot flow whose greeting is an experiment: each lead hears its variation's greeting, and is exposed once. */
describe('the experiment node in a running bot', () => {
  const db = useTestDatabase()
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let number: TestNumber
  let experiment: ExperimentView
  const greeting = { warm: 'Hi! So glad you wrote 😊 What do you need?', brief: 'Hi. What do you need?' } as const

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    experiment = await makeExperiment(db.current.sql, tenant, { key: 'greeting-tone', variations: [{ key: 'warm', weight: 0.5 }, { key: 'brief', weight: 0.5 }] })
    await createFlow(db.current.sql, { tenantId: tenant.id, actor: 'test' }, {
      publish: true,
      document: {
        name: 'greeting test', trigger: { type: 'first_message' }, startNodeId: 'which',
        nodes: [
          { type: 'experiment', id: 'which', experimentKey: 'greeting-tone', variations: [{ variationKey: 'warm', next: 'warm' }, { variationKey: 'brief', next: 'brief' }], otherwise: 'brief' },
          { type: 'ask', id: 'warm', text: greeting.warm, invalidText: 'Sorry?', answerKey: 'need', input: { kind: 'text' }, next: 'again' },
          { type: 'ask', id: 'brief', text: greeting.brief, invalidText: 'Sorry?', answerKey: 'need', input: { kind: 'text' }, next: 'again' },
          { type: 'experiment', id: 'again', experimentKey: 'greeting-tone', variations: [{ variationKey: 'warm', next: 'bye' }, { variationKey: 'brief', next: 'bye' }], otherwise: 'bye' },
          { type: 'end', id: 'bye', text: 'Thanks!' },
        ],
      },
    })
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
  })

  const say = async (from: string, body: string) => {
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from, body })] }))
    expect(res.statusCode).toBe(200)
    await runJobs(db.current, wa.url)
  }
  const botSaid = async (waId: string) => (await db.current.owner<{ body: string }[]>`
    select m.content ->> 'body' as body from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id where s.wa_id = ${waId} order by s.seq`).map((r) => r.body)

  it("greets each lead with its variation's text, and records one exposure per lead with its analytics event", async () => {
    const people = Array.from({ length: 6 }, (_, i) => `55119876500${10 + i}`)
    for (const p of people) {
      await say(p, 'Oi')
      await say(p, 'A cleaning')
    }
    const leads = await db.current.owner<{ id: string; waId: string }[]>`select id, wa_id from marketing.leads where tenant_id = ${tenant.id}`
    const seen = new Set<string>()
    for (const { id, waId } of leads) {
      const arm = (['warm', 'brief'] as const)[bucketUnit({ seed: 'greeting-tone', hashVersion: 2, coverage: 1, weights: [0.5, 0.5], namespace: null }, id)]!
      seen.add(arm)
      expect(await botSaid(waId)).toEqual([greeting[arm], 'Thanks!'])
    }
    expect(seen.size).toBe(2)
    // Two experiment nodes ran for each lead; each was exposed once, to its own variation, with one analytics event.
    const exposures = await db.current.owner<{ leadId: string; variationKey: string; source: string }[]>`
      select lead_id, variation_key, source from experiments.exposures where experiment_id = ${experiment.id}`
    expect(exposures).toHaveLength(people.length)
    const assigned = await db.current.owner<{ leadId: string; variationKey: string }[]>`select lead_id, variation_key from experiments.assignments where experiment_id = ${experiment.id}`
    expect(new Map(exposures.map((e) => [e.leadId, e.variationKey]))).toEqual(new Map(assigned.map((a) => [a.leadId, a.variationKey])))
    const events = await db.current.owner<{ leadId: string; properties: { experimentKey: string; variationKey: string } }[]>`
      select lead_id, properties from analytics.events where tenant_id = ${tenant.id} and name = 'experiment.exposure'`
    expect(events).toHaveLength(people.length)
    expect(events.every((e) => e.properties.experimentKey === 'greeting-tone' && e.properties.variationKey === new Map(assigned.map((a) => [a.leadId, a.variationKey])).get(e.leadId))).toBe(true)
  })
})
