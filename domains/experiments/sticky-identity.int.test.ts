import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeSiteKey } from '../../test/factories/analytics-rows.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeForm } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import type { FormView } from '../marketing/forms/views.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import { bucketUnit } from './hashing.js'
import type { ExperimentView } from './schemas.js'

const ORIGIN = 'https://clinic.example'

/**
 * Carla visits the clinic's landing page (an anonymous visitor, bucketed by her anonymousId), fills the form (she is a
 * lead now), writes on WhatsApp from the number she gave, and later turns out to be an older lead too (an email-only
 * form she filled months ago, assigned on another device since): the leads merge. Through all of it she keeps the
 * variation her first visit got, and the merge records the assignment it dropped.
 */
describe('a visitor keeps its variation from the first visit through form, WhatsApp and merge', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let number: TestNumber
  let form: FormView
  let siteKey: string
  let experiment: ExperimentView
  const phone = '5511987651234'
  const arms = [{ key: 'photo', weight: 0.5 }, { key: 'video', weight: 0.5 }]
  const armOf = (id: string) => arms[bucketUnit({ seed: 'landing-hero', hashVersion: 2, coverage: 1, weights: [0.5, 0.5], namespace: null }, id)]!.key
  // Two devices of one person that GrowthBook's hash puts in different arms, so a wrong winner would show.
  const visitor = 'anon-carla-phone'
  const otherDevice = Array.from({ length: 50 }, (_, i) => `anon-carla-laptop-${i}`).find((id) => armOf(id) !== armOf(visitor))!

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    number = await makePhoneNumber(db.current.sql, tenant)
    form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me on WhatsApp', policyVersion: 'v1' } })
    siteKey = (await makeSiteKey(db.current.sql, tenant, { allowedOrigins: [ORIGIN] })).publicKey
    experiment = await makeExperiment(db.current.sql, tenant, { key: 'landing-hero', unit: 'anonymous', variations: arms })
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    wa = await startWhatsAppEmulator({ autoStatuses: false })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  const jobs = () => runJobs(db.current, wa.url)
  const onSite = async (anonymousId: string) => {
    const res = await webhooks.inject({ method: 'POST', url: `/v1/variants?siteKey=${siteKey}`, headers: { origin: ORIGIN }, payload: { anonymousId } })
    expect(res.statusCode, res.body).toBe(200)
    return res.json().assignments as { experimentKey: string; variationKey: string; isNew: boolean }[]
  }
  const viaApi = async (body: Record<string, unknown>) => {
    const res = await api.inject({ method: 'POST', url: '/v1/experiments/assign', headers: bearer(tenant.adminKey), payload: body })
    expect(res.statusCode, res.body).toBe(200)
    return res.json().assignments as { experimentKey: string; variationKey: string; isNew: boolean }[]
  }
  const submit = async (answers: Record<string, unknown>) => {
    const res = await webhooks.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload: { name: 'Carla', consent: true, ...answers } })
    expect(res.statusCode, res.body).toBe(201)
    await jobs()
    const [row] = await db.current.owner<{ leadId: string }[]>`select lead_id from marketing.form_submissions where id = ${res.json().submissionId}`
    return row!.leadId
  }
  const liveLead = async (id: string) => (await db.current.owner<{ id: string }[]>`select coalesce(merged_into, id) as id from marketing.leads where id = ${id}`)[0]!.id

  it('keeps the first visit\'s variation from visitor to lead, on WhatsApp, and through a merge with an older lead', async () => {
    // Months ago: an email-only form (the older lead), and nothing assigned yet.
    const older = await submit({ email: 'carla@example.com' })

    // 1. First visit: bucketed by her anonymous id.
    const [first] = await onSite(visitor)
    expect(first).toMatchObject({ experimentKey: 'landing-hero', variationKey: armOf(visitor), isNew: true })

    // 2. The landing page's form (carrying the page's anonymous_id) makes her a lead, and analytics links the visitor to it.
    const lead = await submit({ email: 'carla.work@example.com', phone: `+${phone}`, anonymous_id: visitor })
    expect(lead).not.toBe(older)
    expect(await viaApi({ leadId: lead })).toEqual([expect.objectContaining({ variationKey: armOf(visitor), isNew: false })])
    const [adopted] = await db.current.owner<{ leadId: string }[]>`select lead_id from experiments.assignments where unit_id = ${visitor}`
    expect(adopted!.leadId).toBe(lead)

    // 3. She writes on WhatsApp from the number she gave: the same lead, the same variation.
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from: phone, body: 'Oi' })] }))
    expect(res.statusCode).toBe(200)
    await jobs()
    const [fromWhatsApp] = await db.current.owner<{ leadId: string }[]>`select lead_id from whatsapp.messages where tenant_id = ${tenant.id} and direction = 'inbound' order by created_at desc limit 1`
    expect(fromWhatsApp!.leadId).toBe(lead)
    expect(await viaApi({ leadId: fromWhatsApp!.leadId })).toEqual([expect.objectContaining({ variationKey: armOf(visitor), isNew: false })])

    // Meanwhile, on her laptop, the older lead was assigned the other arm (later than her phone's first visit).
    expect(await viaApi({ leadId: older, anonymousId: otherDevice })).toEqual([expect.objectContaining({ variationKey: armOf(otherDevice), isNew: true })])

    // 4. A form with both the old email and the phone: one person, two leads, merged (the older survives).
    const survivor = await submit({ email: 'carla@example.com', phone: `+${phone}` })
    expect(survivor).toBe(older)
    expect(await liveLead(lead)).toBe(older)

    // The earliest assignment (the first visit's) wins, asked by any of her ids.
    for (const asked of [{ leadId: older }, { leadId: lead }, { anonymousId: visitor }, { anonymousId: otherDevice }]) {
      expect(await viaApi(asked), JSON.stringify(asked)).toEqual([expect.objectContaining({ experimentKey: 'landing-hero', variationKey: armOf(visitor), isNew: false })])
    }
    expect(await onSite(visitor)).toEqual([expect.objectContaining({ variationKey: armOf(visitor), isNew: false })])
    expect(await onSite(otherDevice)).toEqual([expect.objectContaining({ variationKey: armOf(visitor), isNew: false })])

    const conflicts = await api.inject({ method: 'GET', url: `/v1/experiments/${experiment.id}/conflicts`, headers: bearer(tenant.adminKey) })
    expect(conflicts.json().data).toEqual([expect.objectContaining({
      leadId: older, mergedLeadId: lead, keptUnitId: visitor, keptVariationKey: armOf(visitor), droppedUnitId: otherDevice, droppedVariationKey: armOf(otherDevice), reason: 'merge',
    })])
    const [rows] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where experiment_id = ${experiment.id}`
    expect(rows!.n).toBe(2)
  })

  it('lets an earlier visit win when a lead turns out to be a visitor seen before, and records the clash', async () => {
    const seenBefore = 'anon-dan-tablet'
    const later = Array.from({ length: 50 }, (_, i) => `anon-dan-phone-${i}`).find((id) => armOf(id) !== armOf(seenBefore))!
    await onSite(seenBefore)
    const dan = await submit({ email: 'dan@example.com' })
    expect(await viaApi({ leadId: dan, anonymousId: later })).toEqual([expect.objectContaining({ variationKey: armOf(later), isNew: true })])
    // The tablet's visit was earlier: once we learn it was Dan too, it wins.
    expect(await viaApi({ leadId: dan, anonymousId: seenBefore })).toEqual([expect.objectContaining({ variationKey: armOf(seenBefore), isNew: false })])
    expect(await viaApi({ leadId: dan })).toEqual([expect.objectContaining({ variationKey: armOf(seenBefore), isNew: false })])
    const [conflict] = await db.current.owner`select lead_id, merged_lead_id, kept_unit_id, dropped_unit_id, reason from experiments.assignment_conflicts where lead_id = ${dan}`
    expect(conflict).toEqual({ leadId: dan, mergedLeadId: null, keptUnitId: seenBefore, droppedUnitId: later, reason: 'identify' })
  })
})
