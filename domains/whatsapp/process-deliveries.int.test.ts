import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { count, drainJobs, postDelivery } from '../../test/whatsapp.js'
import { refreshMessageStatuses } from './apply-items.js'
import * as f from './webhook/fixtures.js'

describe('processing WhatsApp deliveries into the whatsapp and marketing schemas', () => {
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
  const ingest = async (body: unknown) => {
    const res = await postDelivery(app, body)
    expect(res.statusCode).toBe(200)
    await drainJobs(db.current)
    return res.json() as { deliveryId: string }
  }
  const asTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(db.current.sql, tenant.id, fn)
  const messageByWamid = (wamid: string) =>
    asTenant((tx) => tx<Record<string, any>[]>`select * from whatsapp.messages where wamid = ${wamid}`.then((r) => r[0]))
  let phoneSeq = 0
  const newSender = () => `55119${String(87_000_000 + ++phoneSeq).padStart(8, '0')}`

  it('creates the lead from the wa_id, in E.164, with profile name, interaction, event and service window', async () => {
    const from = newSender()
    const msg = f.textMessage({ from, body: 'Olá, quero marcar uma consulta' })
    await ingest(f.delivery({ ...scope(), messages: [msg], contacts: [{ waId: from, name: 'Maria Souza' }] }))

    const lead = await asTenant((tx) => tx<Record<string, any>[]>`select * from marketing.leads where wa_id = ${from}`.then((r) => r[0]))
    expect(lead).toMatchObject({ phoneE164: `+${from}`, profileName: 'Maria Souza', source: 'whatsapp', status: 'new' })
    const stored = await messageByWamid(msg.id)
    expect(stored).toMatchObject({ direction: 'inbound', type: 'text', content: { body: 'Olá, quero marcar uma consulta' }, leadId: lead!.id, status: 'received' })
    expect(await count(db.current, 'marketing.lead_interactions', `lead_id = '${lead!.id}' and type = 'whatsapp_message'`)).toBe(1)
    expect(await count(db.current, 'analytics.events', `lead_id = '${lead!.id}' and name = 'whatsapp.message_received'`)).toBe(1)
    const [window] = await asTenant((tx) => tx<{ lastInboundAt: Date }[]>`select last_inbound_at from whatsapp.service_windows where wa_id = ${from}`)
    expect(window!.lastInboundAt.getTime()).toBe(stored!.occurredAt.getTime())
  })

  it('stores every message type with its full content, never dropping one', async () => {
    const from = newSender()
    const first = f.textMessage({ from, body: 'first' })
    const messages = [
      first,
      f.imageMessage({ from, caption: 'my teeth' }),
      f.audioMessage({ from, voice: true }),
      f.videoMessage({ from }),
      f.documentMessage({ from, filename: 'exam.pdf' }),
      f.stickerMessage({ from }),
      f.locationMessage({ from, name: 'Clínica', address: 'Av. Paulista 1000' }),
      f.contactsMessage({ from, contacts: [{ name: 'João', phone: '+5511912345678' }] }),
      f.interactiveButtonReply({ from, replyId: 'book', title: 'Book a visit' }),
      f.interactiveListReply({ from, replyId: 'morning', title: 'Morning' }),
      f.flowReply({ from, response: { date: '2026-12-01' } }),
      f.templateButtonReply({ from, text: 'Yes', payload: 'CONFIRM' }),
      f.reactionMessage({ from, messageId: first.id, emoji: '👍' }),
      f.reactionMessage({ from, messageId: first.id, emoji: '' }),
      f.orderMessage({ from }),
      f.systemMessage({ from, newWaId: '5511900000000' }),
      f.unsupportedMessage({ from }),
      f.replyTo(f.textMessage({ from, body: 'answering you' }), 'wamid.previous'),
      f.forwarded(f.textMessage({ from, body: 'look at this' })),
    ]
    await ingest(f.delivery({ ...scope(), messages }))
    const rows = await asTenant((tx) => tx<{ wamid: string; type: string; content: any; context: any; errors: any }[]>`
      select wamid, type, content, context, errors from whatsapp.messages where wamid = any(${messages.map((m) => m.id)})`)
    const byId = new Map(rows.map((r) => [r.wamid, r]))
    expect(rows).toHaveLength(messages.length)
    expect(messages.map((m) => byId.get(m.id)!.type)).toEqual([
      'text', 'image', 'audio', 'video', 'document', 'sticker', 'location', 'contacts', 'interactive', 'interactive', 'interactive',
      'button', 'reaction', 'reaction', 'order', 'system', 'unsupported', 'text', 'text',
    ])
    expect(byId.get(messages[1]!.id)!.content).toMatchObject({ caption: 'my teeth', mime_type: 'image/jpeg' })
    expect(byId.get(messages[2]!.id)!.content).toMatchObject({ voice: true })
    expect(byId.get(messages[6]!.id)!.content).toMatchObject({ name: 'Clínica', latitude: -23.5613 })
    expect(byId.get(messages[8]!.id)!.content).toMatchObject({ type: 'button_reply', button_reply: { id: 'book', title: 'Book a visit' } })
    expect(byId.get(messages[10]!.id)!.content).toMatchObject({ type: 'nfm_reply' })
    expect(byId.get(messages[11]!.id)!.content).toEqual({ text: 'Yes', payload: 'CONFIRM' })
    expect(byId.get(messages[13]!.id)!.content).toMatchObject({ message_id: first.id, emoji: '' })
    expect(byId.get(messages[16]!.id)!.errors).toEqual([expect.objectContaining({ code: 131051 })])
    expect(byId.get(messages[17]!.id)!.context).toMatchObject({ id: 'wamid.previous' })
    expect(byId.get(messages[18]!.id)!.context).toMatchObject({ forwarded: true })
    // One lead, one interaction per message; the system message said the person changed number, so the lead followed.
    expect(await count(db.current, 'marketing.leads', `tenant_id = '${tenant.id}' and wa_id in ('${from}', '5511900000000')`)).toBe(1)
    expect(await count(db.current, 'marketing.leads', `tenant_id = '${tenant.id}' and wa_id = '5511900000000'`)).toBe(1)
    expect(await count(db.current, 'marketing.lead_interactions', `type = 'whatsapp_message' and message_id in (select id from whatsapp.messages where wa_id = '${from}')`)).toBe(messages.length)
  })

  it('keeps a click-to-WhatsApp ad as the lead source', async () => {
    const from = newSender()
    const msg = f.withReferral(f.textMessage({ from, body: 'I saw your ad' }), { source_id: '120210000000000001' })
    await ingest(f.delivery({ ...scope(), messages: [msg] }))
    const [lead] = await asTenant((tx) => tx<{ source: string; sourceDetails: any }[]>`select source, source_details from marketing.leads where wa_id = ${from}`)
    expect(lead!.source).toBe('whatsapp_ad')
    expect(lead!.sourceDetails.referral).toMatchObject({ sourceId: '120210000000000001', sourceType: 'ad' })
    expect((await messageByWamid(msg.id))!.referral).toMatchObject({ ctwaClid: expect.any(String) })
  })

  it('applies the same delivery posted 5 times at once exactly once: one message, one interaction', async () => {
    const from = newSender()
    const msg = f.textMessage({ from, body: 'are you there?' })
    const body = f.delivery({ ...scope(), messages: [msg] })
    await Promise.all(Array.from({ length: 5 }, () => postDelivery(app, body)))
    await drainJobs(db.current)
    expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(1)
    expect(await count(db.current, 'marketing.lead_interactions', `dedupe_key = 'wa:msg:${msg.id}'`)).toBe(1)
    expect(await count(db.current, 'analytics.events', `dedupe_key = 'wa:msg:${msg.id}'`)).toBe(1)
  })

  it('changes nothing when the same message arrives again inside a different delivery', async () => {
    const from = newSender()
    const msg = f.textMessage({ from, body: 'hello' })
    await ingest(f.delivery({ ...scope(), messages: [msg] }))
    const snapshot = async () => asTenant((tx) => tx`select l.*, (select count(*) from marketing.lead_interactions i where i.lead_id = l.id) as interactions from marketing.leads l where wa_id = ${from}`)
    const before = await snapshot()
    // Same message, plus a status, in a different body: a new delivery row, but the message is not applied twice.
    await ingest(f.delivery({ ...scope(), messages: [msg], statuses: [f.statusUpdate({ id: 'wamid.unrelated', status: 'sent', recipientId: from })] }))
    expect(await snapshot()).toEqual(before)
    expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(1)
  })

  describe('statuses of outbound messages', () => {
    const outbound = async (wamid: string, waId: string) => {
      await asTenant(async (tx) => {
        await tx`
          insert into whatsapp.messages (tenant_id, phone_number_id, direction, wamid, wa_id, type, content, status, occurred_at)
          values (${tenant.id}, ${number.id}, 'outbound', ${wamid}, ${waId}, 'text', '{"body":"hi"}', 'pending', now())`
        await refreshMessageStatuses(tx, [wamid])
      })
    }
    const t0 = Date.now() - 60_000

    it('only move forward: a late "delivered" never replaces "read"', async () => {
      const to = newSender()
      await outbound('wamid.out-forward', to)
      await ingest(f.delivery({ ...scope(), statuses: [f.statusUpdate({ id: 'wamid.out-forward', status: 'sent', recipientId: to, timestamp: new Date(t0) })] }))
      await ingest(f.delivery({ ...scope(), statuses: [f.statusUpdate({ id: 'wamid.out-forward', status: 'read', recipientId: to, timestamp: new Date(t0 + 2000) })] }))
      await ingest(f.delivery({ ...scope(), statuses: [f.statusUpdate({ id: 'wamid.out-forward', status: 'delivered', recipientId: to, timestamp: new Date(t0 + 1000) })] }))
      const m = await messageByWamid('wamid.out-forward')
      expect(m).toMatchObject({ status: 'read', statusRank: 30 })
      expect([m!.sentAt, m!.deliveredAt, m!.readAt].map((d: Date) => d.getTime())).toEqual([t0, t0 + 1000, t0 + 2000].map((t) => Math.floor(t / 1000) * 1000))
      expect(m!.pricing).toMatchObject({ category: 'utility' })
    })

    it('are kept when they arrive before their message, and applied when it appears', async () => {
      const to = newSender()
      await ingest(f.delivery({ ...scope(), statuses: [
        f.statusUpdate({ id: 'wamid.out-early', status: 'delivered', recipientId: to, timestamp: new Date(t0 + 1000) }),
        f.statusUpdate({ id: 'wamid.out-early', status: 'sent', recipientId: to, timestamp: new Date(t0) }),
      ] }))
      expect(await count(db.current, 'whatsapp.message_statuses', `wamid = 'wamid.out-early'`)).toBe(2)
      await outbound('wamid.out-early', to)
      expect(await messageByWamid('wamid.out-early')).toMatchObject({ status: 'delivered' })
    })

    it('record a failure with its error code and title', async () => {
      const to = newSender()
      await outbound('wamid.out-failed', to)
      await ingest(f.delivery({ ...scope(), statuses: [f.statusUpdate({ id: 'wamid.out-failed', status: 'failed', recipientId: to, errors: [f.waError(131047, 'Re-engagement message')] })] }))
      expect(await messageByWamid('wamid.out-failed')).toMatchObject({ status: 'failed', errorCode: 131047, errorTitle: 'Re-engagement message' })
    })
  })

  it('records value-level errors such as 130429', async () => {
    await ingest(f.delivery({ ...scope(), errors: [f.waError(130429, 'Rate limit hit', 'Cloud API message throughput has been reached.')] }))
    const [row] = await asTenant((tx) => tx<{ code: number; title: string }[]>`select code, title from whatsapp.webhook_errors where code = 130429`)
    expect(row).toMatchObject({ code: 130429, title: 'Rate limit hit' })
  })

  it('keeps template, account and phone-number updates in the whatsapp schema', async () => {
    const templateId = 778899001122
    await ingest(f.managementDelivery(number.wabaId, 'message_template_status_update', f.templateStatusUpdate({ templateId, name: 'appointment_reminder', language: 'pt_BR', event: 'REJECTED', reason: 'INVALID_FORMAT' }), 1_800_000_000))
    await ingest(f.managementDelivery(number.wabaId, 'message_template_status_update', f.templateStatusUpdate({ templateId, name: 'appointment_reminder', language: 'pt_BR', event: 'APPROVED' }), 1_800_000_100))
    // An older event arriving late does not undo the approval.
    await ingest(f.managementDelivery(number.wabaId, 'message_template_status_update', f.templateStatusUpdate({ templateId, name: 'appointment_reminder', language: 'pt_BR', event: 'PENDING' }), 1_799_999_000))
    await ingest(f.managementDelivery(number.wabaId, 'message_template_quality_update', f.templateQualityUpdate({ templateId, newScore: 'RED' })))
    await ingest(f.managementDelivery(number.wabaId, 'template_category_update', f.templateCategoryUpdate({ templateId, previousCategory: 'UTILITY', newCategory: 'MARKETING' })))
    const [tpl] = await asTenant((tx) => tx<Record<string, unknown>[]>`select * from whatsapp.templates where meta_template_id = ${String(templateId)}`)
    expect(tpl).toMatchObject({ name: 'appointment_reminder', language: 'pt_BR', status: 'APPROVED', rejectionReason: null, qualityScore: 'RED', category: 'MARKETING', previousCategory: 'UTILITY' })

    await ingest(f.managementDelivery(number.wabaId, 'account_update', f.accountUpdate({ event: 'ACCOUNT_RESTRICTION', restriction_info: [{ restriction_type: 'RESTRICTED_ADD_PHONE_NUMBER_ACTION' }] })))
    await ingest(f.managementDelivery(number.wabaId, 'phone_number_quality_update', f.phoneNumberQualityUpdate({ displayPhoneNumber: number.displayPhoneNumber.replace(/\D/g, ''), event: 'DOWNGRADE', currentLimit: 'TIER_250' })))
    const [account] = await asTenant((tx) => tx<Record<string, any>[]>`select * from whatsapp.business_accounts where waba_id = ${number.wabaId}`)
    expect(account!.reviewStatus).toBe('ACCOUNT_RESTRICTION')
    expect(account!.restriction).toEqual([{ restriction_type: 'RESTRICTED_ADD_PHONE_NUMBER_ACTION' }])
    const [phone] = await asTenant((tx) => tx<Record<string, any>[]>`select * from whatsapp.phone_numbers where id = ${number.id}`)
    expect(phone).toMatchObject({ qualityRating: 'DOWNGRADE', messagingLimit: 'TIER_250' })
  })

  it('quarantines items for an unknown phone_number_id, visibly, without failing the delivery', async () => {
    const msg = f.textMessage({ from: newSender(), body: 'who are you?' })
    const { deliveryId } = await ingest(f.delivery({ wabaId: '999000111222333', phoneNumberId: '888000111222333', messages: [msg] }))
    const [delivery] = await db.current.owner<{ status: string; quarantinedCount: number }[]>`select status, quarantined_count from whatsapp.webhook_deliveries where id = ${deliveryId}`
    expect(delivery).toEqual({ status: 'processed', quarantinedCount: 1 })
    const [item] = await db.current.owner<{ reason: string; routeKey: string }[]>`select reason, route_key from whatsapp.quarantined_items where delivery_id = ${deliveryId}`
    expect(item).toEqual({ reason: 'unknown phone_number_id 888000111222333', routeKey: '888000111222333' })
    expect(await count(db.current, 'whatsapp.messages', `wamid = '${msg.id}'`)).toBe(0)
  })

  it('applies a delivery with 100 messages from many leads, each once and in order', async () => {
    const senders = Array.from({ length: 20 }, newSender)
    const base = Date.now() - 100_000
    const messages = Array.from({ length: 100 }, (_, i) => f.textMessage({ from: senders[i % 20]!, body: `message ${i}`, timestamp: new Date(base + i * 1000) }))
    await ingest(f.delivery({ ...scope(), messages }))
    expect(await count(db.current, 'whatsapp.messages', `wamid = any(array[${messages.map((m) => `'${m.id}'`).join(',')}])`)).toBe(100)
    expect(await count(db.current, 'marketing.leads', `wa_id = any(array[${senders.map((s) => `'${s}'`).join(',')}])`)).toBe(20)
    const [lead] = await asTenant((tx) => tx<{ lastSeenAt: Date }[]>`select last_seen_at from marketing.leads where wa_id = ${senders[0]!}`)
    expect(lead!.lastSeenAt.getTime()).toBe(Math.floor((base + 80_000) / 1000) * 1000)
  })

  describe('security: another tenant', () => {
    it("never sees this tenant's messages or leads, and its number does not receive them", async () => {
      const other = await makeTenant(db.current.sql)
      await makePhoneNumber(db.current.sql, other)
      const msg = f.textMessage({ from: newSender(), body: 'private' })
      await ingest(f.delivery({ ...scope(), messages: [msg] }))
      const seen = await withTenant(db.current.sql, other.id, (tx) => tx`select 1 from whatsapp.messages where wamid = ${msg.id}`)
      expect(seen).toHaveLength(0)
      expect((await messageByWamid(msg.id))!.tenantId).toBe(tenant.id)
    })
  })
})
