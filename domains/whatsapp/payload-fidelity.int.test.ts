import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { count, drainJobs, postDelivery } from '../../test/whatsapp.js'
import * as f from './webhook/fixtures.js'

/** Real Cloud API payloads this product had not seen, applied end to end: webhook → inbox → worker → tables. */
describe('applying real-world WhatsApp payloads faithfully', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let number: TestNumber
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
  })
  afterAll(() => app.close())

  const scope = () => ({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId })
  const ingest = async (body: unknown, raw?: string) => {
    const res = await postDelivery(app, body, raw === undefined ? {} : { raw })
    expect(res.statusCode).toBe(200)
    await drainJobs(db.current)
    const { deliveryId } = res.json() as { deliveryId: string }
    const [delivery] = await db.current.owner<{ status: string; quarantinedCount: number }[]>`
      select status, quarantined_count from whatsapp.webhook_deliveries where id = ${deliveryId}`
    return delivery!
  }
  const asTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(db.current.sql, tenant.id, fn)
  const one = <T = Record<string, any>>(query: (tx: any) => Promise<T[]>) => asTenant(async (tx) => (await query(tx))[0]!)
  const phone = () => one((tx) => tx`select * from whatsapp.phone_numbers where id = ${number.id}`)
  const account = () => one((tx) => tx`select * from whatsapp.business_accounts where waba_id = ${number.wabaId}`)
  const template = (templateId: number) => one((tx) => tx`select * from whatsapp.templates where meta_template_id = ${String(templateId)}`)
  const manage = (field: string, value: unknown, time: number) => ingest(f.managementDelivery(number.wabaId, field, value, time))
  const digits = () => number.displayPhoneNumber.replace(/\D/g, '')
  let seq = 0
  const newSender = () => `55119${String(86_000_000 + ++seq).padStart(8, '0')}`

  it('accepts an account restriction whose expiration is unix seconds, and stores it as a timestamp', async () => {
    const expiration = 1_776_607_160
    const delivery = await manage('account_update', f.accountUpdate({
      event: 'ACCOUNT_RESTRICTION',
      restriction_info: [{ restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration }, { restriction_type: 'RESTRICTED_ADD_PHONE_NUMBER_ACTION', expiration: '2026-04-19T13:59:20+0000' }],
    }), 1_760_000_000)
    expect(delivery).toEqual({ status: 'processed', quarantinedCount: 0 })
    const a = await account()
    expect(a.reviewStatus).toBe('ACCOUNT_RESTRICTION')
    expect(a.restrictionExpiresAt).toEqual(new Date(expiration * 1000))
    expect(a.restriction).toEqual([
      { restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration: new Date(expiration * 1000).toISOString() },
      { restriction_type: 'RESTRICTED_ADD_PHONE_NUMBER_ACTION', expiration: '2026-04-19T13:59:20.000Z' },
    ])
  })

  it('keeps THROUGHPUT_UPGRADE out of the quality rating and the messaging limit, in fields of its own', async () => {
    await manage('phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: digits(), event: 'DOWNGRADE', currentLimit: 'TIER_250' }), 1_760_000_100)
    await manage('phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: digits(), event: 'THROUGHPUT_UPGRADE', currentLimit: 'TIER_UNLIMITED' }), 1_760_000_200)
    expect(await phone()).toMatchObject({ qualityRating: 'DOWNGRADE', messagingLimit: 'TIER_250', qualityEvent: 'THROUGHPUT_UPGRADE', throughputLevel: 'HIGH' })

    // The 2026 shape: no current_limit, only the portfolio's max_daily_conversations_per_business.
    await manage('phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: digits(), event: 'UPGRADE', currentLimit: null, maxDailyConversations: 'TIER_2K' }), 1_760_000_300)
    expect(await phone()).toMatchObject({ qualityRating: 'UPGRADE', messagingLimit: 'TIER_2K', maxDailyConversations: 'TIER_2K', qualityEvent: 'UPGRADE', throughputLevel: 'HIGH' })
  })

  describe('management updates are applied once, in event-time order', () => {
    it('keeps the previous category when an announced recategorisation is redelivered after it happened', async () => {
      const templateId = f.newTemplateId()
      const t = { templateId, name: 'order_update', language: 'en_US' }
      await manage('message_template_status_update', f.templateStatusUpdate({ ...t, event: 'APPROVED', category: 'UTILITY' }), 1_760_001_000)
      const notice = f.managementDelivery(number.wabaId, 'template_category_update', f.templateCategoryUpdate({ ...t, newCategory: 'UTILITY', correctCategory: 'MARKETING', categoryUpdateTimestamp: 1_760_087_400 }), 1_760_001_000)
      await ingest(notice)
      expect(await template(templateId)).toMatchObject({ category: 'UTILITY', pendingCategory: 'MARKETING', pendingCategoryAt: new Date(1_760_087_400_000) })
      await manage('template_category_update', f.templateCategoryUpdate({ ...t, previousCategory: 'UTILITY', newCategory: 'MARKETING' }), 1_760_087_400)
      const after = await template(templateId)
      expect(after).toMatchObject({ category: 'MARKETING', previousCategory: 'UTILITY', pendingCategory: null })

      // Meta retries the old notice: a byte-different copy (other whitespace), so a new delivery row.
      await ingest(notice, JSON.stringify(notice, null, 2))
      expect(await template(templateId)).toEqual(after)
      expect(await count(db.current, 'whatsapp.management_events', `kind = 'template_category' and value->>'message_template_id' = '${templateId}'`)).toBe(2)
    })

    it('changes nothing, not even updated_at, when the same event arrives again in another delivery', async () => {
      const templateId = f.newTemplateId()
      await manage('message_template_status_update', f.templateStatusUpdate({ templateId, name: 'promo', event: 'APPROVED' }), 1_760_001_900)
      const body = f.managementDelivery(number.wabaId, 'message_template_quality_update', f.templateQualityUpdate({ templateId, name: 'promo', newScore: 'YELLOW' }), 1_760_002_000)
      await ingest(body)
      const before = await template(templateId)
      expect(before).toMatchObject({ status: 'APPROVED', qualityScore: 'YELLOW' })
      await ingest(f.mergeDeliveries(body, f.delivery({ ...scope(), statuses: [f.statusUpdate({ id: f.newWamid(), status: 'sent', recipientId: newSender() })] })))
      expect(await template(templateId)).toEqual(before)
    })

    it.each([
      ['template quality', async (templateId: number, time: number, n: number) => manage('message_template_quality_update', f.templateQualityUpdate({ templateId, name: 'quality_tpl', newScore: ['GREEN', 'RED'][n]! }), time),
        async (templateId: number) => (await template(templateId)).qualityScore, 'RED'],
      ['template status', async (templateId: number, time: number, n: number) => manage('message_template_status_update', f.templateStatusUpdate({ templateId, name: 'status_tpl', event: ['PENDING', 'APPROVED'][n]! }), time),
        async (templateId: number) => (await template(templateId)).status, 'APPROVED'],
      ['template category', async (templateId: number, time: number, n: number) => manage('template_category_update', f.templateCategoryUpdate({ templateId, name: 'category_tpl', previousCategory: ['MARKETING', 'UTILITY'][n]!, newCategory: ['UTILITY', 'MARKETING'][n]! }), time),
        async (templateId: number) => (await template(templateId)).category, 'MARKETING'],
      ['account update', async (_: number, time: number, n: number) => manage('account_update', f.accountUpdate({ event: ['VERIFIED_ACCOUNT', 'ACCOUNT_VIOLATION'][n]!, violation_info: { violation_type: 'SCAM' } }), time),
        async () => (await account()).reviewStatus, 'ACCOUNT_VIOLATION'],
      ['phone quality', async (_: number, time: number, n: number) => manage('phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: digits(), event: ['UNFLAGGED', 'FLAGGED'][n]!, currentLimit: ['TIER_10K', 'TIER_1K'][n]! }), time),
        async () => { const p = await phone(); return `${p.qualityRating}/${p.messagingLimit}` }, 'FLAGGED/TIER_1K'],
      ['phone name', async (_: number, time: number, n: number) => manage('phone_number_name_update', f.phoneNumberNameUpdate({ displayPhoneNumber: digits(), requestedName: ['Old Name', 'New Name'][n]! }), time),
        async () => (await phone()).verifiedName, 'New Name'],
    ] as const)('ignores an older %s event that arrives after a newer one', async (_kind, send, read, expected) => {
      const templateId = f.newTemplateId()
      await send(templateId, 1_770_000_200, 1)
      expect(await read(templateId)).toBe(expected)
      const delivery = await send(templateId, 1_770_000_100, 0)
      expect(delivery.status).toBe('processed')
      expect(await read(templateId)).toBe(expected)
    })
  })

  it('records quality and category updates for a template the product does not know yet', async () => {
    const quality = f.newTemplateId()
    await manage('message_template_quality_update', f.templateQualityUpdate({ templateId: quality, name: 'made_in_manager', language: 'es', newScore: 'RED' }), 1_760_003_000)
    expect(await template(quality)).toMatchObject({ name: 'made_in_manager', language: 'es', qualityScore: 'RED' })
    const category = f.newTemplateId()
    await manage('template_category_update', f.templateCategoryUpdate({ templateId: category, name: 'also_in_manager', previousCategory: 'UTILITY', newCategory: 'MARKETING' }), 1_760_003_000)
    expect(await template(category)).toMatchObject({ name: 'also_in_manager', category: 'MARKETING', previousCategory: 'UTILITY' })
  })

  it('keeps rejection_info with the template, beyond the raw delivery', async () => {
    const templateId = f.newTemplateId()
    const rejectionInfo = { reason: 'Your template has parameters placed next to each other.', recommendation: 'Separate parameters with descriptive text.' }
    await manage('message_template_status_update', f.templateStatusUpdate({ templateId, name: 'abandoned_cart', event: 'REJECTED', reason: 'INVALID_FORMAT', rejectionInfo }), 1_760_004_000)
    expect(await template(templateId)).toMatchObject({ status: 'REJECTED', rejectionReason: 'INVALID_FORMAT', rejectionInfo })
    await db.current.owner`delete from whatsapp.webhook_deliveries`
    const [logged] = await asTenant((tx) => tx<{ value: any }[]>`select value from whatsapp.management_events where kind = 'template_status' and value->>'message_template_id' = ${String(templateId)}`)
    expect(logged!.value.rejection_info).toEqual(rejectionInfo)
  })

  it('takes the dashboard "Test" message (id not a wamid) as a text message the bot sees', async () => {
    const msg = f.dashboardTestMessage({ from: newSender(), id: 'ABGGFlA5Fpa' })
    await ingest(f.delivery({ ...scope(), messages: [msg] }))
    const stored = await one((tx) => tx`select id, type, content from whatsapp.messages where wamid = 'ABGGFlA5Fpa'`)
    expect(stored).toMatchObject({ type: 'text', content: { body: 'this is a text message' } })
    expect(await count(db.current, 'conversations.events', `message_id = '${stored.id}'`)).toBe(1)
  })

  it("keeps a message's identity block and its contact's identity_key_hash in their own field", async () => {
    const from = newSender()
    const msg = f.withIdentity(f.textMessage({ from, body: 'oi' }), { acknowledged: true, created_timestamp: '1760005000', hash: 'Sjvjlx8G6Z0=' })
    await ingest(f.delivery({ ...scope(), messages: [msg], contacts: [{ waId: from, name: 'Ana', identityKeyHash: 'KEY-HASH' }] }))
    const stored = await one((tx) => tx`select identity from whatsapp.messages where wamid = ${msg.id}`)
    expect(stored.identity).toEqual({ acknowledged: true, createdAt: new Date(1_760_005_000_000).toISOString(), hash: 'Sjvjlx8G6Z0=', keyHash: 'KEY-HASH' })
  })

  describe('a user who changed their number', () => {
    const leadOf = (waId: string) => one((tx) => tx`select * from marketing.leads where wa_id = ${waId} and merged_into is null`)

    it('keeps the same lead, now on the new number, with its service window, bot conversation and an interaction', async () => {
      const [oldNumber, newNumber] = [newSender(), newSender()]
      await ingest(f.delivery({ ...scope(), messages: [f.textMessage({ from: oldNumber, body: 'hello' })] }))
      const lead = await leadOf(oldNumber)
      const notice = f.systemMessage({ from: oldNumber, newWaId: newNumber })
      await ingest(f.delivery({ ...scope(), messages: [notice] }))

      expect(await one((tx) => tx`select * from marketing.leads where id = ${lead.id}`)).toMatchObject({
        phoneE164: `+${newNumber}`, phoneKey: `+${newNumber}`, waId: newNumber, mergedInto: null,
      })
      const [change] = await asTenant((tx) => tx<{ details: any }[]>`select details from marketing.lead_interactions where lead_id = ${lead.id} and type = 'whatsapp_number_changed'`)
      expect(change!.details).toEqual({ fromWaId: oldNumber, toWaId: newNumber })
      const windows = await asTenant((tx) => tx<{ waId: string; leadId: string }[]>`select wa_id, lead_id from whatsapp.service_windows where wa_id = any(${[oldNumber, newNumber]})`)
      expect(windows).toEqual([{ waId: newNumber, leadId: lead.id }])
      const conversations = await asTenant((tx) => tx<{ waId: string }[]>`select wa_id from conversations.conversations where lead_id = ${lead.id}`)
      expect(conversations).toEqual([{ waId: newNumber }])

      // The next message from the new number is the same person: no new lead, same conversation.
      await ingest(f.delivery({ ...scope(), messages: [f.textMessage({ from: newNumber, body: 'me again' })] }))
      expect((await leadOf(newNumber)).id).toBe(lead.id)
      expect(await count(db.current, 'conversations.conversations', `lead_id = '${lead.id}'`)).toBe(1)

      // A replay of the notice moves nothing and records nothing twice.
      await ingest(f.delivery({ ...scope(), messages: [notice] }))
      expect(await count(db.current, 'marketing.lead_interactions', `type = 'whatsapp_number_changed' and lead_id = '${lead.id}'`)).toBe(1)
    })

    it('merges into the older lead when the new number already had a lead of its own', async () => {
      const [oldNumber, newNumber] = [newSender(), newSender()]
      await ingest(f.delivery({ ...scope(), messages: [f.textMessage({ from: oldNumber, body: 'first' })] }))
      const older = await leadOf(oldNumber)
      const fromNew = f.textMessage({ from: newNumber, body: 'written from the new phone before the notice' })
      await ingest(f.delivery({ ...scope(), messages: [fromNew] }))
      const newer = await leadOf(newNumber)
      expect(newer.id).not.toBe(older.id)

      await ingest(f.delivery({ ...scope(), messages: [f.systemMessage({ from: oldNumber, newWaId: newNumber })] }))
      expect(await one((tx) => tx`select * from marketing.leads where id = ${older.id}`)).toMatchObject({ waId: newNumber, phoneKey: `+${newNumber}`, mergedInto: null })
      expect(await one((tx) => tx`select merged_into from marketing.leads where id = ${newer.id}`)).toEqual({ mergedInto: older.id })
      expect(await one((tx) => tx`select lead_id from whatsapp.messages where wamid = ${fromNew.id}`)).toEqual({ leadId: older.id })
      expect(await count(db.current, 'marketing.lead_merges', `survivor_id = '${older.id}' and merged_id = '${newer.id}' and reason = 'whatsapp_number_changed'`)).toBe(1)
      const windows = await asTenant((tx) => tx<{ waId: string; leadId: string }[]>`select wa_id, lead_id from whatsapp.service_windows where wa_id = any(${[oldNumber, newNumber]})`)
      expect(windows).toEqual([{ waId: newNumber, leadId: older.id }])
      const conversations = await asTenant((tx) => tx<{ waId: string }[]>`select wa_id from conversations.conversations where lead_id = ${older.id}`)
      expect(conversations).toEqual([{ waId: newNumber }])
    })
  })
})
