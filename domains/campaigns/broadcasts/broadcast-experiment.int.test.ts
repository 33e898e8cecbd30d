import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import type { WhatsAppEmulator } from '../../../ops/emulators/whatsapp-cloud-api.js'
import { bearer } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { type SendingRig, startSendingRig } from '../../../test/sending-rig.js'
import { makeTemplate } from '../../../test/factories/conversations-rows.js'
import { makeExperiment } from '../../../test/factories/experiments-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../test/factories/whatsapp.js'
import { waitForOpenSends } from '../../../test/whatsapp.js'
import type { ExperimentView } from '../../experiments/schemas.js'

/**
 * A broadcast naming an experiment whose variations are templates, end to end: the API creates and starts it, a real
 * graphile-worker runner assigns each recipient and sends its variation's template through the outbox to the Cloud
 * API emulator over HTTP, whose signed status webhooks come back through the webhooks service; the pending exposures
 * become exposures on delivered, never on a failed send, and the experiment's results count them.
 */
describe('broadcasts that name an experiment', { timeout: 240_000 }, () => {
  const db = useTestDatabase()
  const RATE = 40
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let rig: SendingRig
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let experiment: ExperimentView

  const BODY = (text: string) => [{ type: 'BODY', text }]
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR', timezone: 'America/Sao_Paulo' })
    other = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    await db.current.owner`update whatsapp.phone_numbers set messaging_limit = 'TIER_1K' where id = ${number.id}`
    rig = await startSendingRig(db.current, number, RATE)
    api = rig.api
    webhooks = rig.webhooks
    wa = rig.wa
    await makeTemplate(db.current.sql, tenant, number, { name: 'offer_long', category: 'MARKETING', components: BODY('Hi {{1}}, our full offer for {{2}} is here.') })
    await makeTemplate(db.current.sql, tenant, number, { name: 'offer_short', category: 'MARKETING', components: BODY('{{1}}: offer in {{2}}!') })
    await makeTemplate(db.current.sql, tenant, number, { name: 'offer_pending', status: 'PENDING', components: BODY('{{1}} {{2}}') })
    await makeTemplate(db.current.sql, tenant, number, { name: 'offer_one_param', components: BODY('Hi {{1}}!') })
    // Leads whose status is lost are not in it: they get the broadcast's own template.
    experiment = await makeExperiment(db.current.sql, tenant, {
      key: 'offer-copy',
      targeting: { not: { attribute: 'status', op: 'eq', value: 'lost' } },
      variations: [{ key: 'long', weight: 0.5 }, { key: 'short', weight: 0.5, value: { template: { name: 'offer_short' } } }],
    })
  })
  afterAll(() => rig?.close())
  beforeEach(() => {
    wa.reset()
    wa.setRateLimit(RATE)
  })
  // A stopped or paused broadcast's claimed sends still go: let them finish before the next test.
  afterEach(() => waitForOpenSends(db.current))

  let seq = 0
  async function makeLeads(tag: string, n: number, status: (i: number) => string = () => 'new') {
    return withTenant(db.current.sql, tenant.id, async (tx) => {
      const out: { id: string; waId: string }[] = []
      for (let i = 0; i < n; i++) {
        const waId = `55218${String(10_000_000 + ++seq * 89 + i).slice(-8)}`
        const [lead] = await tx<{ id: string }[]>`
          insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, name, source, status, tags, fields)
          values (${tenant.id}, ${`+${waId}`}, ${`+${waId}`}, ${waId}, ${`Lead ${i} Person`}, 'web_form', ${status(i)}, ${[tag]}, ${tx.json({ city: 'Recife' })})
          returning id`
        out.push({ id: lead!.id, waId })
      }
      return out
    })
  }

  const payload = (tag: string, extra: object = {}) => ({
    name: `Broadcast ${tag}`, template: { name: 'offer_long', language: 'en_US' }, experiment: 'offer-copy',
    parameters: { body: [{ field: 'first_name', fallback: 'there' }, { field: 'fields.city' }] },
    audience: { type: 'filter', filter: { tags: [tag] } },
    ...extra,
  })
  const post = (body: object, key = tenant.adminKey) => api.inject({ method: 'POST', url: '/v1/broadcasts', headers: bearer(key), payload: body })
  const act = (id: string, action: string) => api.inject({ method: 'POST', url: `/v1/broadcasts/${id}/${action}`, headers: bearer(tenant.adminKey), payload: {} })
  const view = async (id: string) => (await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}`, headers: bearer(tenant.adminKey) })).json()
  const until = async <T>(what: string, read: () => Promise<T>, check: (v: T) => boolean, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = await read()
      if (check(v)) return v
      if (Date.now() > deadline) throw new Error(`${what} never got there: ${JSON.stringify(v)}`)
      await sleep(100)
    }
  }
  const broadcastUntil = (id: string, check: (v: Awaited<ReturnType<typeof view>>) => boolean) => until(`broadcast ${id}`, () => view(id), check)
  const assignments = (leadIds: string[]) =>
    db.current.owner<{ leadId: string; variationKey: string; source: string }[]>`
      select lead_id, variation_key, source from experiments.assignments where experiment_id = ${experiment.id} and lead_id = any(${leadIds}::uuid[])`
  const exposures = (leadIds: string[]) =>
    db.current.owner<{ leadId: string; variationKey: string; source: string }[]>`
      select lead_id, variation_key, source from experiments.exposures where experiment_id = ${experiment.id} and lead_id = any(${leadIds}::uuid[])`
  const pendingOf = (leadIds: string[]) =>
    db.current.owner<{ leadId: string; state: string; variationKey: string; templateName: string; messageId: string }[]>`
      select lead_id, state, variation_key, template_name, message_id from experiments.pending_exposures
       where experiment_id = ${experiment.id} and lead_id = any(${leadIds}::uuid[])`
  const templateOf: Record<string, string> = { long: 'offer_long', short: 'offer_short' }

  it("sends every recipient its variation's template, records exposures only for delivered sends, counts them per variation, and keeps the assignments for the next broadcast", async () => {
    const leads = await makeLeads('exp-one', 20)
    const ids = leads.map((l) => l.id)
    // Meta refuses the first send: that recipient's send fails, and a failed send is not an exposure.
    wa.failNext(131026, 1)
    const create = await post(payload('exp-one'))
    expect(create.statusCode, create.body).toBe(201)
    const id = create.json().id as string
    expect(create.json().experiment).toEqual({ id: experiment.id, key: 'offer-copy' })
    expect((await act(id, 'start')).statusCode).toBe(200)
    const done = await broadcastUntil(id, (v) => v.status === 'completed')
    expect(done.stats).toMatchObject({ recipients: 20, failed: 1, skipped: 0 })

    // Every recipient assigned once (source broadcast), and sent exactly their variation's template.
    const assigned = new Map((await assignments(ids)).map((a) => [a.leadId, a.variationKey]))
    expect(assigned.size).toBe(20)
    expect(new Set(assigned.values())).toEqual(new Set(['long', 'short']))
    expect((await assignments(ids)).every((a) => a.source === 'broadcast')).toBe(true)
    const sent = wa.sent.filter((m) => leads.some((l) => l.waId === m.waId))
    expect(sent).toHaveLength(19)
    for (const m of sent) {
      const lead = leads.find((l) => l.waId === m.waId)!
      expect(m.body).toMatchObject({ type: 'template', template: { name: templateOf[assigned.get(lead.id)!], components: [{ type: 'body', parameters: [{ text: 'Lead' }, { text: 'Recife' }] }] } })
    }

    // Delivered (the emulator's signed webhooks, applied by the worker) → one exposure each; the failed one: none.
    const recipients = (await api.inject({ method: 'GET', url: `/v1/broadcasts/${id}/recipients?limit=100`, headers: bearer(tenant.adminKey) })).json().data as { leadId: string; status: string; variationKey: string }[]
    const failedLead = recipients.find((r) => r.status === 'failed')!.leadId
    for (const r of recipients) expect(r.variationKey).toBe(assigned.get(r.leadId))
    const exposed = await until('exposures', () => exposures(ids), (rows) => rows.length >= 19)
    await sleep(300)
    expect(await exposures(ids)).toHaveLength(19)
    expect(exposed.some((e) => e.leadId === failedLead)).toBe(false)
    for (const e of exposed) expect(e).toMatchObject({ variationKey: assigned.get(e.leadId), source: 'template' })
    const pending = await pendingOf(ids)
    expect(pending).toHaveLength(20)
    expect(pending.find((p) => p.leadId === failedLead)).toMatchObject({ state: 'failed' })
    expect(pending.filter((p) => p.state === 'exposed')).toHaveLength(19)
    for (const p of pending) expect(p.templateName).toBe(templateOf[p.variationKey])

    // The broadcast's stats per variation, and the experiment's results, count the same.
    const tracked = await broadcastUntil(id, (v) => v.stats.read === 19)
    const count = (key: string) => [...assigned.entries()].filter(([lead, v]) => v === key && lead !== failedLead).length
    const byKey = Object.fromEntries(tracked.stats.variations.map((v: { variationKey: string }) => [v.variationKey, v]))
    expect(Object.keys(byKey).sort()).toEqual(['long', 'short'])
    for (const key of ['long', 'short']) {
      expect(byKey[key]).toMatchObject({ dispatched: [...assigned.values()].filter((v) => v === key).length, read: count(key), failed: assigned.get(failedLead) === key ? 1 : 0 })
    }
    const results = (await api.inject({ method: 'GET', url: `/v1/experiments/${experiment.id}/results`, headers: bearer(tenant.adminKey) })).json()
    for (const key of ['long', 'short']) {
      expect(results.variations.find((v: { key: string }) => v.key === key)).toMatchObject({ units: [...assigned.values()].filter((v) => v === key).length, exposed: count(key) })
    }

    // A second broadcast to the same people: the same variations, no new assignment, and the failed one now exposed.
    wa.reset()
    const again = (await post(payload('exp-one', { name: 'Second' }))).json().id as string
    expect((await act(again, 'start')).statusCode).toBe(200)
    await broadcastUntil(again, (v) => v.status === 'completed')
    expect(await assignments(ids)).toHaveLength(20)
    const second = wa.sent.filter((m) => leads.some((l) => l.waId === m.waId))
    expect(second).toHaveLength(20)
    for (const m of second) expect(m.body).toMatchObject({ template: { name: templateOf[assigned.get(leads.find((l) => l.waId === m.waId)!.id)!] } })
    await until('the failed lead exposed', () => exposures([failedLead]), (rows) => rows.length === 1)
    // Once per unit and phase: the other nineteen were exposed already.
    expect(await exposures(ids)).toHaveLength(20)
  })

  it("sends the broadcast's own template, with no assignment or exposure, to leads the experiment does not take", async () => {
    const leads = await makeLeads('exp-targeted', 6, (i) => (i < 2 ? 'lost' : 'new'))
    const id = (await post(payload('exp-targeted'))).json().id as string
    expect((await act(id, 'start')).statusCode).toBe(200)
    await broadcastUntil(id, (v) => v.status === 'completed')
    const lost = leads.slice(0, 2)
    for (const l of lost) expect(wa.sent.find((m) => m.waId === l.waId)!.body).toMatchObject({ template: { name: 'offer_long' } })
    expect(await assignments(lost.map((l) => l.id))).toEqual([])
    expect(await pendingOf(lost.map((l) => l.id))).toEqual([])
    expect(await assignments(leads.slice(2).map((l) => l.id))).toHaveLength(4)
    const v = await broadcastUntil(id, (x) => x.stats.read === 6)
    const none = v.stats.variations.find((x: { variationKey: string | null }) => x.variationKey === null)
    expect(none).toMatchObject({ dispatched: 2, read: 2 })
    expect(v.stats.variations.reduce((n: number, x: { dispatched: number }) => n + x.dispatched, 0)).toBe(6)
  })

  it("pauses by itself when a variation's template can no longer be sent, refuses to resume until it can, and sends nobody twice", async () => {
    await makeTemplate(db.current.sql, tenant, number, { name: 'offer_b_variant', category: 'MARKETING', components: BODY('{{1}}, see {{2}}.') })
    await makeExperiment(db.current.sql, tenant, { key: 'exp-pausing', variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.5, value: { template: { name: 'offer_b_variant' } } }] })
    const leads = await makeLeads('exp-pausing', 150)
    const id = (await post(payload('exp-pausing', { experiment: 'exp-pausing' }))).json().id as string
    expect((await act(id, 'start')).statusCode).toBe(200)
    await broadcastUntil(id, (v) => v.stats.sent + v.stats.delivered + v.stats.read >= 10)
    // What Meta's template webhook records (its path is tested with the broadcast's own template).
    const setStatus = (status: string) => db.current.owner`update whatsapp.templates set status = ${status} where tenant_id = ${tenant.id} and name = 'offer_b_variant'`
    await setStatus('PAUSED')
    const paused = await broadcastUntil(id, (v) => v.status === 'paused')
    expect(paused.statusReason).toBe('variation_template_paused')
    expect(paused.statusDetail).toMatch(/variation b of experiment exp-pausing/)
    const refused = await act(id, 'resume')
    expect(refused.statusCode).toBe(422)
    expect(refused.json().error.details).toMatchObject({ reason: 'variation_template_paused', variationKey: 'b' })
    await setStatus('APPROVED')
    expect((await act(id, 'resume')).statusCode).toBe(200)
    await broadcastUntil(id, (v) => v.status === 'completed')
    const sent = wa.sent.filter((m) => leads.some((l) => l.waId === m.waId))
    expect(sent).toHaveLength(150)
    expect(new Set(sent.map((m) => m.waId)).size).toBe(150)
  })

  it('refuses, before anything is stored, an experiment that is missing, foreign, or whose variations are not templates the broadcast can send', async () => {
    await makeExperiment(db.current.sql, other, { key: 'foreign-exp' })
    await makeExperiment(db.current.sql, tenant, { key: 'exp-visitors', unit: 'anonymous' })
    const withVariation = (key: string, value: object) => makeExperiment(db.current.sql, tenant, { key, variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.5, value }] })
    await withVariation('exp-pending', { template: { name: 'offer_pending' } })
    await withVariation('exp-missing', { template: { name: 'no_such_template' } })
    await withVariation('exp-params', { template: { name: 'offer_one_param' } })
    await withVariation('exp-components', { template: { components: [{ type: 'body', parameters: [{ type: 'text', text: 'x' }, { type: 'text', text: 'y' }] }] } })
    await withVariation('exp-not-template', { template: 'offer_short' })
    const before = (await db.current.owner<{ n: number }[]>`select count(*)::int as n from campaigns.broadcasts`)[0]!.n
    const cases: [string, number, RegExp][] = [
      ['no-such-experiment', 404, /experiment no-such-experiment not found/],
      ['foreign-exp', 404, /experiment foreign-exp not found/],
      ['exp-visitors', 422, /website visitors/],
      ['exp-pending', 422, /variation b .*offer_pending \(en_US\) is PENDING/],
      ['exp-missing', 404, /no_such_template \(en_US\) not found/],
      ['exp-params', 400, /do not fit template offer_one_param of variation b/],
      ['exp-components', 422, /gives template components/],
      ['exp-not-template', 422, /does not describe a template/],
    ]
    for (const [key, status, message] of cases) {
      const res = await post(payload('nobody', { experiment: key }))
      expect(res.statusCode, `${key}: ${res.body}`).toBe(status)
      expect(res.json().error.message).toMatch(message)
    }
    expect((await post(payload('nobody', { experiment: 'Not A Key' }))).statusCode).toBe(400)
    expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from campaigns.broadcasts`)[0]!.n).toBe(before)

    // An update is checked the same way; null removes the experiment.
    const id = (await post(payload('nobody'))).json().id as string
    const patch = (body: object) => api.inject({ method: 'PATCH', url: `/v1/broadcasts/${id}`, headers: bearer(tenant.adminKey), payload: body })
    expect((await patch({ experiment: 'exp-pending' })).statusCode).toBe(422)
    expect((await patch({ template: { name: 'offer_one_param', language: 'en_US' }, parameters: { body: [{ field: 'first_name' }] } })).statusCode).toBe(400)
    const removed = await patch({ experiment: null })
    expect(removed.statusCode, removed.body).toBe(200)
    expect(removed.json().experiment).toBeNull()
  })

  it('refuses to start while the experiment is a draft, and forgets an experiment that is deleted', async () => {
    const draft = await makeExperiment(db.current.sql, tenant, { key: 'exp-draft', draft: true })
    await makeLeads('exp-draft', 1)
    const create = await post(payload('exp-draft', { experiment: 'exp-draft' }))
    expect(create.statusCode, create.body).toBe(201)
    const start = await act(create.json().id, 'start')
    expect(start.statusCode).toBe(422)
    expect(start.json().error).toMatchObject({ message: expect.stringMatching(/exp-draft is a draft/), details: { reason: 'experiment_draft' } })
    // Deleting the experiment leaves the broadcast with its own template only.
    const deleted = await api.inject({ method: 'DELETE', url: `/v1/experiments/${draft.id}`, headers: bearer(tenant.adminKey) })
    expect(deleted.statusCode, deleted.body).toBe(204)
    expect((await view(create.json().id)).experiment).toBeNull()
  })
})
