import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestWebhooks } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeForm } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../test/factories/whatsapp.js'
import { drainJobs, postDelivery } from '../../../test/whatsapp.js'
import type { App } from '../../../lib/http/create-server.js'
import { delivery, textMessage } from '../../whatsapp/webhook/fixtures.js'
import type { FormView } from '../forms/views.js'

describe('identity resolution: one person, one lead, across web forms and WhatsApp', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let number: TestNumber
  let form: FormView
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    number = await makePhoneNumber(db.current.sql, tenant)
    form = await makeForm(db.current.sql, tenant)
  })
  afterAll(() => app.close())

  /** Posts a submission; the answer comes once it is in the inbox, before the worker resolves the person. */
  const post = async (f: FormView, answers: Record<string, unknown>): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: `/forms/${f.publicKey}/submissions`, payload: { name: 'Someone', ...answers } })
    expect(res.statusCode, res.body).toBe(201)
    return res.json().submissionId
  }
  const leadOf = async (submissionId: string) => {
    const [row] = await db.current.owner<{ leadId: string }[]>`select lead_id from marketing.form_submissions where id = ${submissionId}`
    expect(row, `submission ${submissionId} was applied`).toBeDefined()
    return row!.leadId
  }
  /** Submits, lets the worker apply it, and returns the lead the person was resolved to. */
  const submit = async (f: FormView, answers: Record<string, unknown>) => {
    const submissionId = await post(f, answers)
    await drainJobs(db.current)
    return leadOf(submissionId)
  }
  /** Submits all at once (the inbox commits them in a few batches, whose jobs run concurrently), then applies them. */
  const submitAll = async (f: FormView, answers: Record<string, unknown>[]) => {
    const submissionIds = await Promise.all(answers.map((a) => post(f, a)))
    await drainJobs(db.current)
    return Promise.all(submissionIds.map(leadOf))
  }
  /** Messages the tenant's WhatsApp number as Meta would deliver it, and lets the worker process it. */
  const sendWhatsApp = async (...senders: { waId: string; body?: string }[]) => {
    const res = await postDelivery(app, delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, displayPhoneNumber: number.displayPhoneNumber,
      messages: senders.map((s) => textMessage({ from: s.waId, body: s.body ?? 'Olá!' })),
    }))
    expect(res.statusCode).toBe(200)
    await drainJobs(db.current)
  }
  const whatsAppLead = async (waId: string) =>
    (await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${waId} and merged_into is null`)[0]?.id
  const liveLeads = async (where: { email?: string; phoneKey?: string }) =>
    (await db.current.owner<{ id: string }[]>`
      select id from marketing.leads
       where tenant_id = ${tenant.id} and merged_into is null
         and (email = ${where.email ?? null} or phone_key = ${where.phoneKey ?? null})`).map((r) => r.id)

  describe('national phone quirks: the form number and the WhatsApp id of one person give one lead', () => {
    const cases = [
      { story: 'Brazil, account older than the ninth digit', country: 'BR', waId: '552187654321', typed: '(21) 98765-4321', key: '+5521987654321' },
      { story: 'Brazil, mobile typed without the ninth digit', country: 'BR', waId: '5531987654321', typed: '(31) 8765-4321', key: '+5531987654321' },
      { story: 'Mexico, legacy +52 1 id', country: 'MX', waId: '5215512345678', typed: '55 1234 5678', key: '+525512345678' },
      { story: 'Argentina, 9 in the id, 15 typed at home', country: 'AR', waId: '5491123456789', typed: '011 15 2345-6789', key: '+541123456789' },
      { story: 'Argentina, typed as from abroad without the 9', country: 'AR', waId: '5492235123456', typed: '+54 223 512-3456', key: '+542235123456' },
    ] as const
    const forms = new Map<string, FormView>()
    beforeAll(async () => {
      for (const country of ['BR', 'MX', 'AR'] as const) forms.set(country, await makeForm(db.current.sql, tenant, { defaultCountry: country }))
      await sendWhatsApp(...cases.map((c) => ({ waId: c.waId })))
    })

    it.each(cases)('$story', async ({ country, waId, typed, key }) => {
      const waLead = await whatsAppLead(waId)
      expect(waLead).toBeDefined()
      const leadId = await submit(forms.get(country)!, { phone: typed, email: `p${randomInt(1e9)}@example.com` })
      expect(leadId).toBe(waLead)
      expect(await liveLeads({ phoneKey: key })).toEqual([waLead])
      const types = await db.current.owner<{ type: string }[]>`select type from marketing.lead_interactions where lead_id = ${leadId} order by id`
      expect(types.map((t) => t.type)).toEqual(['whatsapp_message', 'form_submitted'])
    })

    it('joins a WhatsApp message that arrives after the form to the form lead', async () => {
      const leadId = await submit(form, { phone: '(47) 99123-4567', email: `later${randomInt(1e9)}@example.com` })
      await sendWhatsApp({ waId: '554791234567' }) // Santa Catarina account from before the ninth digit
      expect(await whatsAppLead('554791234567')).toBe(leadId)
      expect(await liveLeads({ phoneKey: '+5547991234567' })).toEqual([leadId])
    })
  })

  describe('under concurrency', () => {
    it('makes one lead of 20 simultaneous submissions with the same email, however it is spelled', async () => {
      const email = `rush${randomInt(1e9)}@example.com`
      const spellings = [email, email.toUpperCase(), `  ${email}  `, email.replace(/^r/, 'R')]
      const leadIds = await submitAll(form, Array.from({ length: 20 }, (_, i) => ({ email: spellings[i % spellings.length] })))
      expect(new Set(leadIds).size).toBe(1)
      expect(await liveLeads({ email })).toEqual([leadIds[0]])
      const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submissions where lead_id = ${leadIds[0]!}`
      expect(row!.n).toBe(20)
    })

    it('makes one lead of simultaneous submissions of one phone in different spellings', async () => {
      const local = `9${randomInt(1000, 9999)}-${randomInt(1000, 9999)}`
      const spellings = [`(11) ${local}`, `+55 11 ${local}`, `011 ${local}`, `0055 11 ${local}`, `55 11 ${local}`]
      const leadIds = await submitAll(form, Array.from({ length: 15 }, (_, i) => ({ phone: spellings[i % spellings.length] })))
      expect(new Set(leadIds).size).toBe(1)
    })

    it('converges when simultaneous submissions link the same email and phone in both orders', async () => {
      const email = `pair${randomInt(1e9)}@example.com`
      const phone = `(11) 9${randomInt(1000, 9999)}-${randomInt(1000, 9999)}`
      const leadIds = await submitAll(form, Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? { email } : i % 3 === 1 ? { phone } : { email, phone })))
      const live = await db.current.owner<{ id: string }[]>`
        select id from marketing.leads where tenant_id = ${tenant.id} and merged_into is null and (email = ${email} or phone_key = (select phone_key from marketing.leads where id = any(${leadIds}::uuid[]) and phone_key is not null limit 1))`
      expect(live).toHaveLength(1)
    })
  })

  describe('merging', () => {
    let consentForm: FormView
    beforeAll(async () => {
      consentForm = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me', policyVersion: 'v1' } })
    })

    it('merges a WhatsApp lead and a web lead when a submission shows they are one person', async () => {
      const waId = `55119${randomInt(1000, 9999)}${randomInt(1000, 9999)}`
      const email = `merge${randomInt(1e9)}@example.com`
      await sendWhatsApp({ waId, body: 'Quero marcar uma consulta' })
      const waLead = (await whatsAppLead(waId))!
      const webLead = await submit(consentForm, { email, consent: true })
      expect(webLead).not.toBe(waLead)

      const leadId = await submit(form, { email, phone: `+${waId}` })
      // The older lead survives; the other keeps its row, pointing at it.
      expect(leadId).toBe(waLead)
      const [merged] = await db.current.owner`select merged_into from marketing.leads where id = ${webLead}`
      expect(merged).toEqual({ mergedInto: waLead })
      const [survivor] = await db.current.owner`select email, wa_id, phone_key from marketing.leads where id = ${waLead}`
      expect(survivor).toEqual({ email, waId, phoneKey: `+${waId}` })

      const interactions = await db.current.owner<{ type: string }[]>`select type from marketing.lead_interactions where lead_id = ${waLead} order by occurred_at, id`
      expect(interactions.map((i) => i.type).sort()).toEqual(['form_submitted', 'form_submitted', 'lead_merged', 'whatsapp_message'])
      expect(await db.current.owner`select 1 from marketing.lead_interactions where lead_id = ${webLead}`).toHaveLength(0)
      expect(await db.current.owner`select lead_id from whatsapp.messages where wa_id = ${waId}`).toEqual([{ leadId: waLead }])
      expect(await db.current.owner`select lead_id from marketing.consents where lead_id in (${waLead}, ${webLead})`).toEqual([{ leadId: waLead }])
      expect(await db.current.owner`select survivor_id, merged_id, reason, actor, matched_on from marketing.lead_merges where merged_id = ${webLead}`).toEqual([
        { survivorId: waLead, mergedId: webLead, reason: 'form_submission', actor: `form:${form.id}`, matchedOn: { survivor: ['phone'], merged: ['email'] } },
      ])

      // The person keeps writing: still one lead.
      await sendWhatsApp({ waId, body: 'Pode ser amanhã?' })
      expect(await liveLeads({ email, phoneKey: `+${waId}` })).toEqual([waLead])
    })

    it('updates the known lead when a submission matches it by email, filling what it lacked', async () => {
      const email = `known${randomInt(1e9)}@example.com`
      const first = await submit(form, { email })
      const second = await submit(form, { email: email.toUpperCase(), phone: '+55 11 91234-0000', name: 'Ana' })
      expect(second).toBe(first)
      const [lead] = await db.current.owner`select name, phone_e164 from marketing.leads where id = ${first}`
      // The name given first stays; the phone it lacked is filled.
      expect(lead).toEqual({ name: 'Someone', phoneE164: '+5511912340000' })
    })

    it('creates a lead per submission when a form asks for nothing that identifies a person', async () => {
      const anonymous = await makeForm(db.current.sql, tenant, { fields: [{ name: 'message', label: 'Message', type: 'text' }] })
      const a = await submit(anonymous, { message: 'hi' })
      const b = await submit(anonymous, { message: 'hi' })
      expect(a).not.toBe(b)
    })
  })

})
