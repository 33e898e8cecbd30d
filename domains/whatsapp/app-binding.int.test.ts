import { randomInt } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestApi, buildTestWebhooks, OPERATOR_KEY } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { count, postDelivery } from '../../test/whatsapp.js'
import { createFlow } from '../conversations/service.js'
import * as f from './webhook/fixtures.js'

const digits = (n: number) => `${randomInt(1, 10)}${Array.from({ length: n - 1 }, () => randomInt(10)).join('')}`

interface Registered {
  id: string
  phoneNumberId: string
  wabaId: string
  displayPhoneNumber: string
}

/**
 * Security item 1 of issue 8: a tenant on its own Meta app signs a delivery with its own secret but names another
 * tenant's number. The delivery may only affect what is registered under the app whose secret verified it.
 */
describe('a delivery only reaches numbers and WABAs registered under the app that signed it', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let wa: WhatsAppEmulator
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    // Registration asks the emulator for each number's messaging limit tier (TIER_250 for its numbers).
    api = await buildTestApi(db.current, { GRAPH_API_BASE_URL: wa.url })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })
  beforeEach(() => wa.reset())

  /** Registers a number as a tenant does: through POST /v1/whatsapp/numbers. */
  const register = async (tenant: TestTenant, app: { mode: 'platform' } | { mode: 'own'; appSecret: string; verifyToken: string; appId?: string }, wabaId = digits(15)) => {
    const phoneNumberId = digits(15)
    const displayPhoneNumber = `+1 555 ${digits(3)} ${digits(4)}`
    const res = await api.inject({
      method: 'POST', url: '/v1/whatsapp/numbers', headers: bearer(tenant.adminKey),
      payload: { phoneNumberId, wabaId, displayPhoneNumber, accessToken: `EAAG${digits(40)}`, app },
    })
    expect(res.statusCode, res.body).toBe(201)
    return { id: res.json().id as string, phoneNumberId, wabaId, displayPhoneNumber } satisfies Registered
  }
  const publishGreeter = (tenant: TestTenant) =>
    createFlow(db.current.sql, { tenantId: tenant.id, actor: 'test' }, {
      document: { name: 'greeter', trigger: { type: 'first_message' }, startNodeId: 'hi', nodes: [{ type: 'end', id: 'hi', text: 'Hello from the clinic!' }] },
      publish: true,
    })
  const quarantine = async () => {
    const res = await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/quarantine?limit=200', headers: bearer(OPERATOR_KEY) })
    expect(res.statusCode).toBe(200)
    return res.json().data as { deliveryId: string; kind: string; routeKey: string; reason: string }[]
  }
  /** Every row the pipeline could have written for a tenant, table by table. */
  const footprint = async (tenant: TestTenant) => {
    const tables = ['marketing.leads', 'whatsapp.messages', 'marketing.lead_interactions', 'analytics.events', 'whatsapp.service_windows',
      'whatsapp.message_statuses', 'whatsapp.webhook_errors', 'whatsapp.templates', 'conversations.conversations', 'conversations.events', 'whatsapp.outbound_sends']
    const out: Record<string, number> = {}
    for (const t of tables) out[t] = await count(db.current, t, `tenant_id = '${tenant.id}'`)
    return out
  }
  const nothing = (fp: Record<string, number>) => Object.fromEntries(Object.keys(fp).map((k) => [k, 0]))
  let seq = 0
  const newSender = () => `55119${String(60_000_000 + ++seq * 7919).padStart(8, '0')}`

  describe('the attack of issue 8: an own-app secret, the attacker\'s WABA, the victim\'s phone_number_id', () => {
    let victim: TestTenant
    let victimNumber: Registered
    let attacker: TestTenant
    let attackerNumber: Registered
    const ATTACKER_SECRET = 'attacker-own-app-secret-0001'
    beforeAll(async () => {
      victim = await makeTenant(db.current.sql, { name: 'Victim clinic' })
      victimNumber = await register(victim, { mode: 'platform' })
      // The victim's bot greets every new lead: if the forged message landed, it would answer from the victim's number.
      await publishGreeter(victim)
      attacker = await makeTenant(db.current.sql, { name: 'Attacker' })
      attackerNumber = await register(attacker, { mode: 'own', appSecret: ATTACKER_SECRET, verifyToken: 'attacker-verify-token-0001' })
    })

    it('lands nothing in the victim tenant, sends nothing, and quarantines the item with the reason', async () => {
      const before = await footprint(victim)
      expect(before).toEqual(nothing(before))
      const target = newSender()
      const forged = f.delivery({
        wabaId: attackerNumber.wabaId, phoneNumberId: victimNumber.phoneNumberId,
        messages: [f.textMessage({ from: target, body: 'hello?' })], contacts: [{ waId: target, name: 'Chosen recipient' }],
      })
      const res = await postDelivery(webhooks, forged, { secret: ATTACKER_SECRET })
      // Correctly signed by a registered app, so Meta's contract applies: acknowledged, then refused item by item.
      expect(res.statusCode).toBe(200)
      const { deliveryId } = res.json()
      await runJobs(db.current, wa.url)
      await runJobs(db.current, wa.url)

      expect(await footprint(victim)).toEqual(nothing(before))
      expect(await footprint(attacker)).toEqual(nothing(before))
      expect(wa.sent).toEqual([])
      const held = (await quarantine()).filter((q) => q.deliveryId === deliveryId)
      expect(held).toEqual([expect.objectContaining({
        kind: 'message', routeKey: victimNumber.phoneNumberId,
        reason: `phone_number_id ${victimNumber.phoneNumberId} is not registered under the app that signed this delivery`,
      })])
      const [row] = await db.current.owner<{ status: string; quarantinedCount: number }[]>`select status, quarantined_count from whatsapp.webhook_deliveries where id = ${deliveryId}`
      expect(row).toEqual({ status: 'processed', quarantinedCount: 1 })
    })

    it('refuses statuses, value errors and management updates aimed at the victim the same way', async () => {
      const before = await footprint(victim)
      const forged = f.mergeDeliveries(
        f.delivery({
          wabaId: attackerNumber.wabaId, phoneNumberId: victimNumber.phoneNumberId,
          statuses: [f.statusUpdate({ id: 'wamid.forged-status', status: 'read', recipientId: newSender() })],
          errors: [f.waError(130429, 'Rate limit hit')],
        }),
        // The victim's WABA named directly, next to an entry for the attacker's own WABA that finds its secret.
        f.managementDelivery(victimNumber.wabaId, 'message_template_status_update', f.templateStatusUpdate({ name: 'forged', language: 'en_US', event: 'APPROVED' })),
        f.managementDelivery(victimNumber.wabaId, 'phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: victimNumber.displayPhoneNumber.replace(/\D/g, ''), event: 'FLAGGED', currentLimit: 'TIER_50' })),
        f.managementDelivery(victimNumber.wabaId, 'account_update', f.accountUpdate({ event: 'DISABLED_UPDATE' })),
      )
      const res = await postDelivery(webhooks, forged, { secret: ATTACKER_SECRET })
      expect(res.statusCode).toBe(200)
      await runJobs(db.current, wa.url)

      expect(await footprint(victim)).toEqual(before)
      const [account] = await db.current.owner<{ reviewStatus: string | null }[]>`select review_status from whatsapp.business_accounts where waba_id = ${victimNumber.wabaId}`
      expect(account!.reviewStatus).toBeNull()
      const [phone] = await db.current.owner<{ qualityRating: string | null; messagingLimit: string | null }[]>`select quality_rating, messaging_limit from whatsapp.phone_numbers where id = ${victimNumber.id}`
      // As registration left it (Meta's answer then), not the forged FLAGGED / TIER_50.
      expect(phone).toEqual({ qualityRating: null, messagingLimit: 'TIER_250' })
      const held = (await quarantine()).filter((q) => q.deliveryId === res.json().deliveryId)
      expect(held.map((q) => q.kind).sort()).toEqual(['account_update', 'error', 'phone_number_quality', 'status', 'template_status'])
      for (const q of held) expect(q.reason).toMatch(/is not registered under the app that signed this delivery$/)
      expect(held.find((q) => q.kind === 'account_update')!.reason).toBe(`WhatsApp Business Account ${victimNumber.wabaId} is not registered under the app that signed this delivery`)
    })

    it('cannot use a victim on its own app either, nor pass for the victim\'s app by naming the victim\'s ids', async () => {
      const ownVictim = await makeTenant(db.current.sql)
      const ownVictimNumber = await register(ownVictim, { mode: 'own', appSecret: 'victim-own-app-secret-00001', verifyToken: 'victim-verify-token-000001' })
      await publishGreeter(ownVictim)
      const before = await footprint(ownVictim)
      const target = newSender()
      const forged = f.delivery({ wabaId: attackerNumber.wabaId, phoneNumberId: ownVictimNumber.phoneNumberId, messages: [f.textMessage({ from: target, body: 'hi' })] })
      const res = await postDelivery(webhooks, forged, { secret: ATTACKER_SECRET })
      expect(res.statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await footprint(ownVictim)).toEqual(before)
      expect(wa.sent).toEqual([])
      expect((await quarantine()).find((q) => q.deliveryId === res.json().deliveryId)).toMatchObject({ routeKey: ownVictimNumber.phoneNumberId })

      // Only the victim's ids, with the attacker's signature: no candidate secret matches, so nothing is stored.
      const alone = f.delivery({ wabaId: ownVictimNumber.wabaId, phoneNumberId: ownVictimNumber.phoneNumberId, messages: [f.textMessage({ from: target, body: 'hi' })] })
      expect((await postDelivery(webhooks, alone, { secret: ATTACKER_SECRET })).statusCode).toBe(401)
    })

    it('does not become the victim\'s app by claiming its Meta app id', async () => {
      const ownVictim = await makeTenant(db.current.sql)
      const ownVictimNumber = await register(ownVictim, { mode: 'own', appId: '880011223344', appSecret: 'victim-own-app-secret-00002', verifyToken: 'victim-verify-token-000002' })
      const copycat = await register(attacker, { mode: 'own', appId: '880011223344', appSecret: 'attacker-own-app-secret-0002', verifyToken: 'attacker-verify-token-0002' })
      const before = await footprint(ownVictim)
      const forged = f.delivery({ wabaId: copycat.wabaId, phoneNumberId: ownVictimNumber.phoneNumberId, messages: [f.textMessage({ from: newSender(), body: 'hi' })] })
      expect((await postDelivery(webhooks, forged, { secret: 'attacker-own-app-secret-0002' })).statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await footprint(ownVictim)).toEqual(before)
    })

    it("does not let the attacker pre-empt the genuine delivery of the same bytes", async () => {
      // The attacker's copy of a body, signed with its own app, is stored apart from the genuine one signed by the
      // platform: the genuine delivery is not a "duplicate" of the forgery, and it is applied.
      const target = newSender()
      const body = f.mergeDeliveries(
        f.delivery({ wabaId: victimNumber.wabaId, phoneNumberId: victimNumber.phoneNumberId, messages: [f.textMessage({ from: target, body: 'genuine' })] }),
        f.delivery({ wabaId: attackerNumber.wabaId, phoneNumberId: attackerNumber.phoneNumberId, statuses: [] }),
      )
      const forged = await postDelivery(webhooks, body, { secret: ATTACKER_SECRET })
      const genuine = await postDelivery(webhooks, body)
      expect([forged.statusCode, genuine.statusCode]).toEqual([200, 200])
      expect(genuine.json().duplicate).toBe(false)
      expect(genuine.json().deliveryId).not.toBe(forged.json().deliveryId)
      // Each app's retry is a duplicate of its own first copy.
      expect((await postDelivery(webhooks, body)).json()).toMatchObject({ duplicate: true, deliveryId: genuine.json().deliveryId })
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'marketing.leads', `tenant_id = '${victim.id}' and wa_id = '${target}'`)).toBe(1)
      expect(wa.sent.filter((m) => m.to === target)).toHaveLength(1)
    })
  })

  describe('legitimate deliveries still work', () => {
    it("applies an own-app delivery to the tenant's own number, and its bot answers from it", async () => {
      const tenant = await makeTenant(db.current.sql)
      const number = await register(tenant, { mode: 'own', appSecret: 'legit-own-app-secret-000001', verifyToken: 'legit-verify-token-0000001' })
      await publishGreeter(tenant)
      const from = newSender()
      const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [f.textMessage({ from, body: 'hi' })] }), { secret: 'legit-own-app-secret-000001' })
      expect(res.statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'whatsapp.messages', `tenant_id = '${tenant.id}' and direction = 'inbound' and wa_id = '${from}'`)).toBe(1)
      expect(wa.sent.filter((m) => m.to === from).map((m) => m.phoneNumberId)).toEqual([number.phoneNumberId])

      // Management updates for its own WABA apply too.
      const mgmt = await postDelivery(webhooks, f.managementDelivery(number.wabaId, 'account_update', f.accountUpdate({ event: 'VERIFIED_ACCOUNT' })), { secret: 'legit-own-app-secret-000001' })
      expect(mgmt.statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      const [account] = await db.current.owner<{ reviewStatus: string | null }[]>`select review_status from whatsapp.business_accounts where waba_id = ${number.wabaId}`
      expect(account!.reviewStatus).toBe('VERIFIED_ACCOUNT')
    })

    it('applies to every number of the same app, across its WABAs', async () => {
      const tenant = await makeTenant(db.current.sql)
      const app = { mode: 'own' as const, appSecret: 'shared-own-app-secret-00001', verifyToken: 'shared-verify-token-000001' }
      const first = await register(tenant, app)
      const second = await register(tenant, app)
      const a = f.textMessage({ from: newSender(), body: 'to first' })
      const b = f.textMessage({ from: newSender(), body: 'to second' })
      const body = f.mergeDeliveries(
        f.delivery({ wabaId: first.wabaId, phoneNumberId: first.phoneNumberId, messages: [a] }),
        f.delivery({ wabaId: second.wabaId, phoneNumberId: second.phoneNumberId, messages: [b] }),
      )
      expect((await postDelivery(webhooks, body, { secret: app.appSecret })).statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'whatsapp.messages', `tenant_id = '${tenant.id}' and wamid in ('${a.id}', '${b.id}')`)).toBe(2)
    })

    it('binds an own-app number registered before app keys existed on its first delivery, and applies it', async () => {
      const tenant = await makeTenant(db.current.sql)
      const number = await register(tenant, { mode: 'own', appSecret: 'older-own-app-secret-000001', verifyToken: 'older-verify-token-0000001' })
      await db.current.owner`update whatsapp.phone_numbers set app_key = null where id = ${number.id}`
      const msg = f.textMessage({ from: newSender(), body: 'hi' })
      const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [msg] }), { secret: 'older-own-app-secret-000001' })
      expect(res.statusCode).toBe(200)
      const [row] = await db.current.owner<{ appKey: Buffer | null }[]>`select app_key from whatsapp.phone_numbers where id = ${number.id}`
      expect(row!.appKey).not.toBeNull()
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'whatsapp.messages', `tenant_id = '${tenant.id}' and wamid = '${msg.id}'`)).toBe(1)
    })

    it('refuses the items of a delivery that does not record its signer (stored before deliveries were bound)', async () => {
      const tenant = await makeTenant(db.current.sql)
      const number = await register(tenant, { mode: 'platform' })
      const msg = f.textMessage({ from: newSender(), body: 'from the past' })
      const [row] = await db.current.owner<{ id: string }[]>`
        insert into whatsapp.webhook_deliveries (body_sha256, payload)
        values (sha256(${msg.id}::bytea), ${db.current.owner.json(f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [msg] }) as never)})
        returning id::text`
      await db.current.owner`select graphile_worker.add_job('whatsapp__process_deliveries', json_build_object('deliveryIds', array[${row!.id}::bigint]))`
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(0)
      expect((await quarantine()).find((q) => q.deliveryId === row!.id)).toMatchObject({
        reason: 'the delivery does not record which app signed it (stored before deliveries were bound to apps)',
      })
    })

    it("refuses a platform-signed item for a number registered on the tenant's own app", async () => {
      const tenant = await makeTenant(db.current.sql)
      const number = await register(tenant, { mode: 'own', appSecret: 'mode-own-app-secret-0000001', verifyToken: 'mode-verify-token-00000001' })
      const msg = f.textMessage({ from: newSender(), body: 'hi' })
      const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [msg] }))
      expect(res.statusCode).toBe(200)
      await runJobs(db.current, wa.url)
      expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(0)
      expect((await quarantine()).find((q) => q.deliveryId === res.json().deliveryId)).toMatchObject({
        reason: `phone_number_id ${number.phoneNumberId} is not registered under the app that signed this delivery`,
      })
    })
  })

  describe('registering a number on its own app', () => {
    const ownApp = (n: number) => ({ mode: 'own' as const, appSecret: `claim-own-app-secret-${String(n).padStart(6, '0')}`, verifyToken: `claim-verify-token-${String(n).padStart(7, '0')}` })

    it.each([
      ['own app', ownApp(1)],
      ['platform app', { mode: 'platform' as const }],
    ])("answers 409 when the WABA is another tenant's, on the %s, and changes nothing", async (_name, app) => {
      const holder = await makeTenant(db.current.sql)
      const held = await register(holder, ownApp(2))
      const claimant = await makeTenant(db.current.sql)
      const auditBefore = await count(db.current, 'core.audit_log', `tenant_id = '${claimant.id}'`)
      const res = await api.inject({
        method: 'POST', url: '/v1/whatsapp/numbers', headers: bearer(claimant.adminKey),
        payload: { phoneNumberId: digits(15), wabaId: held.wabaId, displayPhoneNumber: '+1 555 010 0000', accessToken: `EAAG${digits(40)}`, app },
      })
      expect(res.statusCode).toBe(409)
      expect(res.json().error).toMatchObject({ code: 'CONFLICT', message: 'this WhatsApp number or business account is already registered', requestId: expect.any(String) })
      expect(await count(db.current, 'whatsapp.phone_numbers', `tenant_id = '${claimant.id}'`)).toBe(0)
      expect(await count(db.current, 'whatsapp.business_accounts', `tenant_id = '${claimant.id}'`)).toBe(0)
      expect(await count(db.current, 'core.audit_log', `tenant_id = '${claimant.id}'`)).toBe(auditBefore)
      const [account] = await db.current.owner<{ tenantId: string }[]>`select tenant_id from whatsapp.business_accounts where waba_id = ${held.wabaId}`
      expect(account!.tenantId).toBe(holder.id)
    })

    it("answers 409 for another tenant's number, and lets a tenant add numbers to its own WABA", async () => {
      const holder = await makeTenant(db.current.sql)
      const held = await register(holder, ownApp(3))
      const claimant = await makeTenant(db.current.sql)
      const res = await api.inject({
        method: 'POST', url: '/v1/whatsapp/numbers', headers: bearer(claimant.adminKey),
        payload: { phoneNumberId: held.phoneNumberId, wabaId: digits(15), displayPhoneNumber: '+1 555 010 0001', accessToken: `EAAG${digits(40)}`, app: ownApp(4) },
      })
      expect(res.statusCode).toBe(409)
      expect(await count(db.current, 'whatsapp.business_accounts', `tenant_id = '${claimant.id}'`)).toBe(0)
      await register(holder, ownApp(3), held.wabaId)
      expect(await count(db.current, 'whatsapp.phone_numbers', `tenant_id = '${holder.id}'`)).toBe(2)
    })
  })
})
