import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber } from '../../../../test/factories/whatsapp.js'
import { drainJobs, postDelivery } from '../../../../test/whatsapp.js'
import type { App } from '../../../../lib/http/create-server.js'
import { delivery, textMessage } from '../../../../domains/whatsapp/webhook/fixtures.js'

/** The "done when", as a new business would try it. */
describe('a web lead, from form to WhatsApp', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let tenant: TestTenant
  beforeAll(async () => {
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
  })
  afterAll(async () => {
    await Promise.all([api.close(), webhooks.close()])
  })

  it('makes one lead with the form submissions, the WhatsApp message and the consent', async () => {
    const created = await api.inject({
      method: 'POST', url: '/v1/forms', headers: bearer(tenant.adminKey),
      payload: {
        name: 'Agende sua avaliação',
        fields: [
          { name: 'name', label: 'Nome', type: 'text', required: true },
          { name: 'email', label: 'E-mail', type: 'email', required: true },
          { name: 'phone', label: 'WhatsApp', type: 'phone', required: true },
        ],
        allowedOrigins: ['https://www.sorriso.example'],
        redirectUrl: 'https://www.sorriso.example/obrigado',
        consent: { required: true, text: 'Aceito ser contatado pelo WhatsApp.', policyVersion: '2025-02', policyUrl: 'https://www.sorriso.example/privacidade' },
      },
    })
    expect(created.statusCode).toBe(201)
    const form = created.json()

    // A plain <form method="post" action="…submitPath"> on the clinic's site: no script, so no fill-time stamp.
    const html = await webhooks.inject({
      method: 'POST', url: form.submitPath,
      headers: { origin: 'https://www.sorriso.example', referer: 'https://www.sorriso.example/?utm_source=facebook&utm_campaign=clareamento', 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
      payload: 'name=Ana+Souza&email=Ana%40Example.com&phone=%2821%29+98765-4321&consent=on&website=',
    })
    expect(html.statusCode).toBe(303)
    expect(html.headers.location).toBe('https://www.sorriso.example/obrigado')

    // The same person again, through the page's script.
    const json = await webhooks.inject({
      method: 'POST', url: form.submitPath, headers: { origin: 'https://www.sorriso.example' },
      payload: { name: 'Ana', email: 'ana@example.com', phone: '+55 21 98765-4321', consent: true, started_at: Date.now() - 15_000 },
    })
    expect(json.statusCode).toBe(201)
    // Answered once committed to the inbox; the worker resolves her, like the WhatsApp message below.
    await drainJobs(db.current)

    // Then she writes on WhatsApp, from an account older than Brazil's ninth digit.
    const number = await makePhoneNumber(db.current.sql, tenant)
    const wa = await postDelivery(webhooks, delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, displayPhoneNumber: number.displayPhoneNumber,
      messages: [textMessage({ from: '552187654321', body: 'Oi, preenchi o formulário' })],
    }))
    expect(wa.statusCode).toBe(200)
    await drainJobs(db.current)

    const found = await api.inject({ method: 'GET', url: `/v1/leads?q=${encodeURIComponent('ana@example.com')}`, headers: bearer(tenant.adminKey) })
    expect(found.json().data).toHaveLength(1)
    const lead = found.json().data[0]
    expect(lead).toMatchObject({ name: 'Ana Souza', email: 'ana@example.com', phoneE164: '+5521987654321', waId: '552187654321', source: 'web_form' })
    expect((await api.inject({ method: 'GET', url: '/v1/leads', headers: bearer(tenant.adminKey) })).json().data).toHaveLength(1)

    const detail = (await api.inject({ method: 'GET', url: `/v1/leads/${lead.id}`, headers: bearer(tenant.adminKey) })).json()
    expect(detail.timeline.data.map((e: { type: string }) => e.type).sort()).toEqual(['form_submitted', 'form_submitted', 'whatsapp_message'])
    expect(detail.consents).toHaveLength(2)
    expect(detail.consents[0]).toMatchObject({ granted: true, purpose: 'Aceito ser contatado pelo WhatsApp.', policyVersion: '2025-02', ip: '127.0.0.1' })
    expect(lead.sourceDetails).toMatchObject({ utm: { utm_source: 'facebook', utm_campaign: 'clareamento' } })
    const messages = (await api.inject({ method: 'GET', url: `/v1/leads/${lead.id}/messages`, headers: bearer(tenant.adminKey) })).json()
    expect(messages.data).toMatchObject([{ direction: 'inbound', content: { body: 'Oi, preenchi o formulário' } }])
  })
})
