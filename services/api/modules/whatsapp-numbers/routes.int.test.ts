import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../../../ops/emulators/whatsapp-cloud-api.js'
import * as f from '../../../../domains/whatsapp/webhook/fixtures.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { runJobs } from '../../../../test/factories/conversations-rows.js'
import { postDelivery } from '../../../../test/whatsapp.js'
import { useTestDatabase } from '../../../../test/db.js'
import { freePort } from '../../../../test/free-port.js'
import { makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

const digits = (n: number) => `${randomInt(1, 10)}${Array.from({ length: n - 1 }, () => randomInt(10)).join('')}`

/**
 * Registering a number asks Meta (the Cloud API emulator, over HTTP) for its messaging limit tier, so broadcasts
 * hold the real 24-hour limit from the start instead of TIER_250 until a webhook says otherwise. Asking is best effort.
 */
describe('POST /v1/whatsapp/numbers asks Meta for the messaging limit tier', () => {
  const db = useTestDatabase()
  let wa: WhatsAppEmulator
  let api: App
  let tenant: TestTenant
  const TIER_10K_NUMBER = digits(15)
  const SILENT_NUMBER = digits(15)
  const WABA = digits(15)

  beforeAll(async () => {
    wa = await startWhatsAppEmulator({
      autoStatuses: false,
      phoneNumbers: [
        { id: TIER_10K_NUMBER, wabaId: WABA, displayPhoneNumber: '15550001111', messagingLimit: 'TIER_10K' },
        // A number whose answer carries no messaging limit at all.
        { id: SILENT_NUMBER, wabaId: WABA, displayPhoneNumber: '15550002222', messagingLimit: null },
      ],
    })
    api = await buildTestApi(db.current, { GRAPH_API_BASE_URL: wa.url })
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(async () => {
    await api?.close()
    await wa?.stop()
  })
  beforeEach(() => wa.reset())

  const register = (app: App, phoneNumberId: string, displayPhoneNumber = `+1 555 ${digits(3)} ${digits(4)}`) =>
    app.inject({
      method: 'POST', url: '/v1/whatsapp/numbers', headers: bearer(tenant.adminKey),
      payload: { phoneNumberId, wabaId: WABA, displayPhoneNumber, accessToken: `EAAG${digits(40)}`, app: { mode: 'platform' } },
    })
  const storedLimit = async (phoneNumberId: string) =>
    (await db.current.owner<{ messagingLimit: string | null }[]>`select messaging_limit from whatsapp.phone_numbers where phone_number_id = ${phoneNumberId}`)[0]!.messagingLimit

  it('stores the tier Meta answers and shows it at once', async () => {
    const res = await register(api, TIER_10K_NUMBER)
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json()).toMatchObject({ phoneNumberId: TIER_10K_NUMBER, messagingLimit: 'TIER_10K' })
    expect(await storedLimit(TIER_10K_NUMBER)).toBe('TIER_10K')
    const one = await api.inject({ method: 'GET', url: `/v1/whatsapp/numbers/${res.json().id}`, headers: bearer(tenant.adminKey) })
    expect(one.json().messagingLimit).toBe('TIER_10K')
  })

  it.each([
    ['Meta rejects the token (190)', (w: WhatsAppEmulator) => w.failNext(190)],
    ['Meta has an outage (131000)', (w: WhatsAppEmulator) => w.failNext(131000)],
    ['Meta does not know the number (100)', (w: WhatsAppEmulator) => w.failNext(100)],
  ])('registers with the limit unknown when %s', async (_case, fail) => {
    // Any all-digit id is a number of the emulator only without `phoneNumbers`; this one is known, with TIER_10K.
    await db.current.owner`delete from whatsapp.phone_numbers where phone_number_id = ${TIER_10K_NUMBER}`
    fail(wa)
    const res = await register(api, TIER_10K_NUMBER)
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json().messagingLimit).toBeNull()
    expect(await storedLimit(TIER_10K_NUMBER)).toBeNull()
  })

  it("registers with the limit unknown when Meta's answer has no tier", async () => {
    const res = await register(api, SILENT_NUMBER)
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json().messagingLimit).toBeNull()
  })

  it('registers with the limit unknown, promptly, when the Graph API cannot be reached', async () => {
    const offline = await buildTestApi(db.current, { GRAPH_API_BASE_URL: `http://127.0.0.1:${await freePort()}` })
    try {
      await db.current.owner`delete from whatsapp.phone_numbers where phone_number_id = ${TIER_10K_NUMBER}`
      const started = Date.now()
      const res = await register(offline, TIER_10K_NUMBER)
      expect(res.statusCode, res.body).toBe(201)
      expect(res.json().messagingLimit).toBeNull()
      expect(Date.now() - started).toBeLessThan(5_000)
    } finally {
      await offline.close()
    }
  })

  it("is ordered with Meta's limit webhooks: one stamped before the answer changes nothing, a later one wins", async () => {
    await db.current.owner`delete from whatsapp.phone_numbers where phone_number_id = ${TIER_10K_NUMBER}`
    const res = await register(api, TIER_10K_NUMBER, '+1 555 000 1111')
    expect(res.json().messagingLimit).toBe('TIER_10K')
    const webhooks = await buildTestWebhooks(db.current)
    try {
      const update = (limit: string, time: number) =>
        postDelivery(webhooks, f.managementDelivery(WABA, 'phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: '15550001111', event: 'UPGRADE', currentLimit: limit }), time))
      // Delayed in transit: stamped an hour before Meta answered us.
      expect((await update('TIER_1K', Math.floor(Date.now() / 1000) - 3_600)).statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await storedLimit(TIER_10K_NUMBER)).toBe('TIER_10K')
      expect((await update('TIER_100K', Math.floor(Date.now() / 1000) + 60)).statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await storedLimit(TIER_10K_NUMBER)).toBe('TIER_100K')
    } finally {
      await webhooks.close()
    }
  })
})
