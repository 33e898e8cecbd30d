import { describe, expect, it } from 'vitest'
import * as f from './fixtures.js'
import { normalizeMessage, normalizeStatus } from './normalize.js'
import { type DeliveryItem, type MessageItem, canonicalJson, splitDelivery } from './split.js'

const LEAD = '5511988887777'
const WABA = '300000000000001'
const PHONE_ID = '400000000000001'
const DISPLAY = '5511300000000'

const scope = { wabaId: WABA, phoneNumberId: PHONE_ID, displayPhoneNumber: DISPLAY }

function only<K extends DeliveryItem['kind']>(items: DeliveryItem[], kind: K): Extract<DeliveryItem, { kind: K }> {
  expect(items).toHaveLength(1)
  expect(items[0]?.kind).toBe(kind)
  return items[0] as Extract<DeliveryItem, { kind: K }>
}

const splitOne = (msg: f.RawMessage): MessageItem => only(splitDelivery(f.delivery({ ...scope, messages: [msg] })), 'message')

describe('splitDelivery: inbound messages', () => {
  const cases: [string, f.RawMessage, string, (content: Record<string, unknown>) => void][] = [
    ['text', f.textMessage({ from: LEAD, body: 'Quero saber o preço' }), 'text', (c) => expect(c).toEqual({ body: 'Quero saber o preço' })],
    ['image', f.imageMessage({ from: LEAD, mediaId: '111', sha256: 'abc=', caption: 'foto' }), 'image',
      (c) => expect(c).toEqual({ id: '111', mime_type: 'image/jpeg', sha256: 'abc=', caption: 'foto' })],
    ['voice note', f.audioMessage({ from: LEAD, voice: true }), 'audio', (c) => expect(c).toMatchObject({ voice: true, mime_type: 'audio/ogg; codecs=opus' })],
    ['audio file', f.audioMessage({ from: LEAD }), 'audio', (c) => expect(c).toMatchObject({ voice: false })],
    ['video', f.videoMessage({ from: LEAD, caption: 'olha' }), 'video', (c) => expect(c).toMatchObject({ mime_type: 'video/mp4', caption: 'olha' })],
    ['document', f.documentMessage({ from: LEAD, filename: 'rg.pdf' }), 'document', (c) => expect(c).toMatchObject({ filename: 'rg.pdf' })],
    ['sticker', f.stickerMessage({ from: LEAD, animated: true }), 'sticker', (c) => expect(c).toMatchObject({ animated: true, mime_type: 'image/webp' })],
    ['location', f.locationMessage({ from: LEAD, latitude: 1.5, longitude: -2.5, name: 'Loja' }), 'location',
      (c) => expect(c).toEqual({ latitude: 1.5, longitude: -2.5, name: 'Loja' })],
    ['contacts', f.contactsMessage({ from: LEAD }), 'contacts',
      (c) => expect(c).toMatchObject({ contacts: [{ name: { formatted_name: 'Ana Souza' }, phones: [{ wa_id: '5511988887777' }] }] })],
    ['button reply', f.interactiveButtonReply({ from: LEAD, replyId: 'yes', title: 'Sim' }), 'interactive',
      (c) => expect(c).toEqual({ type: 'button_reply', button_reply: { id: 'yes', title: 'Sim' } })],
    ['list reply', f.interactiveListReply({ from: LEAD, replyId: 'plan-a', title: 'Plano A', description: 'mensal' }), 'interactive',
      (c) => expect(c).toEqual({ type: 'list_reply', list_reply: { id: 'plan-a', title: 'Plano A', description: 'mensal' } })],
    ['flow reply', f.flowReply({ from: LEAD, flowToken: 'tok-1', response: { email: 'a@b.c' } }), 'interactive', (c) => {
      expect(c).toMatchObject({ type: 'nfm_reply', nfm_reply: { name: 'flow', body: 'Sent' } })
      expect(JSON.parse((c.nfm_reply as { response_json: string }).response_json)).toEqual({ flow_token: 'tok-1', email: 'a@b.c' })
    }],
    ['template quick reply', f.templateButtonReply({ from: LEAD, text: 'Parar', payload: 'STOP' }), 'button',
      (c) => expect(c).toEqual({ payload: 'STOP', text: 'Parar' })],
    ['reaction', f.reactionMessage({ from: LEAD, messageId: 'wamid.abc', emoji: '👍' }), 'reaction',
      (c) => expect(c).toEqual({ message_id: 'wamid.abc', emoji: '👍' })],
    ['order', f.orderMessage({ from: LEAD, catalogId: '123', text: 'pedido' }), 'order',
      (c) => expect(c).toMatchObject({ catalog_id: '123', text: 'pedido', product_items: [{ product_retailer_id: 'sku-1', quantity: 1 }] })],
    ['system', f.systemMessage({ from: LEAD, newWaId: '5511977776666' }), 'system',
      (c) => expect(c).toMatchObject({ type: 'user_changed_number', wa_id: '5511977776666' })],
    ['unsupported', f.unsupportedMessage({ from: LEAD }), 'unsupported', (c) => expect(c).toEqual({ type: 'edit' })],
  ]

  it.each(cases)('reads a %s message with its content exactly as sent', (_name, raw, type, checkContent) => {
    const item = splitOne(raw)
    expect(item).toMatchObject({ ...scope, itemKey: `message:${raw.id}`, parseError: null, raw })
    expect(item.message).toMatchObject({ wamid: raw.id, from: LEAD, type, rawType: type })
    expect(item.message.timestamp).toEqual(new Date(Number(raw.timestamp) * 1000))
    checkContent(item.message.content)
  })

  it('gives the sender profile name from contacts, and none for system messages (Meta sends no contacts with them)', () => {
    expect(splitOne(f.textMessage({ from: LEAD, body: 'oi' })).contactName).toBe(`Lead ${LEAD}`)
    expect(splitOne(f.systemMessage({ from: LEAD, newWaId: '5511977776666' })).contactName).toBeNull()
    const body = f.delivery({ ...scope, messages: [f.textMessage({ from: LEAD, body: 'oi' })], contacts: [{ waId: LEAD, name: 'Ana' }] })
    expect(only(splitDelivery(body), 'message').contactName).toBe('Ana')
  })

  it('flags reactions, and an empty emoji as a removed reaction', () => {
    const added = splitOne(f.reactionMessage({ from: LEAD, messageId: 'wamid.x', emoji: '❤️' })).message
    const removed = splitOne(f.reactionMessage({ from: LEAD, messageId: 'wamid.x', emoji: '' })).message
    expect(added).toMatchObject({ isReaction: true, isReactionRemoval: false })
    expect(removed).toMatchObject({ isReaction: true, isReactionRemoval: true, content: { message_id: 'wamid.x', emoji: '' } })
    expect(splitOne(f.textMessage({ from: LEAD, body: 'x' })).message).toMatchObject({ isReaction: false, isReactionRemoval: false })
  })

  it('keeps the errors Meta attaches to an unsupported message', () => {
    expect(splitOne(f.unsupportedMessage({ from: LEAD })).message.errors).toEqual([
      { code: 131051, title: 'Message type unknown', message: 'Message type unknown', details: 'Message type is currently not supported.' },
    ])
  })

  it('reads reply, forward and product context', () => {
    const reply = splitOne(f.replyTo(f.textMessage({ from: LEAD, body: 'sim' }), 'wamid.original', DISPLAY)).message
    expect(reply.context).toEqual({ id: 'wamid.original', from: DISPLAY })
    expect(splitOne(f.forwarded(f.imageMessage({ from: LEAD }))).message.context).toEqual({ forwarded: true })
    expect(splitOne(f.forwarded(f.textMessage({ from: LEAD, body: 'x' }), { frequently: true })).message.context).toEqual({ frequentlyForwarded: true })
    const product = { ...f.textMessage({ from: LEAD, body: 'tem?' }), context: { from: DISPLAY, id: 'gBGGEiRVVgBPAgm7FUgc73noXjo', referred_product: { catalog_id: 'c1', product_retailer_id: 'sku-9' } } }
    expect(splitOne(product).message.context).toEqual({ from: DISPLAY, id: 'gBGGEiRVVgBPAgm7FUgc73noXjo', referredProduct: { catalogId: 'c1', productRetailerId: 'sku-9' } })
  })

  it('reads click-to-WhatsApp referral with its ctwa_clid', () => {
    const raw = f.withReferral(f.textMessage({ from: LEAD, body: 'vi o anúncio' }), { ctwa_clid: 'clid-1', source_id: 'ad-1' })
    expect(splitOne(raw).message.referral).toEqual({
      sourceUrl: 'https://fb.me/2ZIbTnqdR', sourceId: 'ad-1', sourceType: 'ad', headline: 'Fale com a gente', body: 'Tire suas dúvidas pelo WhatsApp',
      mediaType: 'image', imageUrl: 'https://scontent.xx.fbcdn.net/v/image.jpg', ctwaClid: 'clid-1',
    })
    const video = splitOne(f.withReferral(f.textMessage({ from: LEAD, body: 'x' }), { media_type: 'video' })).message.referral
    expect(video).toMatchObject({ mediaType: 'video', videoUrl: expect.any(String), thumbnailUrl: expect.any(String) })
  })

  it('keeps keys Meta adds that we do not know about', () => {
    const image = f.imageMessage({ from: LEAD })
    const raw = { ...image, image: { ...(image.image as object), url: 'https://lookaside.fbsbx.com/x' }, brand_new_field: { x: 1 } }
    const item = splitOne(raw)
    expect(item.parseError).toBeNull()
    expect(item.message.content.url).toBe('https://lookaside.fbsbx.com/x')
    expect(item.raw).toMatchObject({ brand_new_field: { x: 1 } })
  })

  it('reads a message type added after this code as type unknown, content kept', () => {
    const raw = { ...f.textMessage({ from: LEAD, body: 'x' }), type: 'poll', poll: { question: 'q?' } }
    delete (raw as Record<string, unknown>).text
    const item = splitOne(raw)
    expect(item.parseError).toBeNull()
    expect(item.message).toMatchObject({ type: 'unknown', rawType: 'poll', content: { question: 'q?' } })
  })

  it('reads a sender known only by business-scoped user id (usernames enabled)', () => {
    const raw: Record<string, unknown> = { ...f.textMessage({ from: LEAD, body: 'oi' }), from_user_id: 'BR.13491208655302741918' }
    delete raw.from
    const item = only(splitDelivery(f.delivery({ ...scope, messages: [raw as f.RawMessage], contacts: [] })), 'message')
    expect(item.parseError).toBeNull()
    expect(item.message).toMatchObject({ from: null, fromUserId: 'BR.13491208655302741918', type: 'text' })
  })
})

describe('splitDelivery: malformed parts are kept, never thrown or dropped', () => {
  it('keeps a message that fails its schema as an unknown message with the raw object and the reason', () => {
    const bad = { ...f.imageMessage({ from: LEAD }), image: { caption: 'no id' } }
    const good = f.textMessage({ from: LEAD, body: 'ok' })
    const items = splitDelivery(f.delivery({ ...scope, messages: [bad, good] }))
    expect(items.map((i) => i.kind)).toEqual(['message', 'message'])
    const kept = items[0] as MessageItem
    expect(kept.itemKey).toBe(`message:${bad.id}`)
    expect(kept.message).toMatchObject({ wamid: bad.id, type: 'unknown', rawType: 'image', from: LEAD, content: { caption: 'no id' } })
    expect(kept.message.timestamp).toEqual(new Date(Number(bad.timestamp) * 1000))
    expect(kept.parseError).toMatch(/image\.id/)
    expect(kept.raw).toBe(bad)
    expect((items[1] as MessageItem).message.type).toBe('text')
  })

  it('keeps a message with a bad timestamp, with a null timestamp', () => {
    const bad = { ...f.textMessage({ from: LEAD, body: 'x' }), timestamp: 1749416383 }
    const item = splitOne(bad as unknown as f.RawMessage)
    expect(item.parseError).toMatch(/timestamp/)
    expect(item.message.timestamp).toBeNull()
  })

  it('turns a message without an id into an invalid item that says where it was', () => {
    const { id: _id, ...noId } = f.textMessage({ from: LEAD, body: 'x' })
    const item = only(splitDelivery(f.delivery({ ...scope, messages: [noId as f.RawMessage] })), 'invalid')
    expect(item).toMatchObject({ wabaId: WABA, field: 'messages', path: 'entry[0].changes[0].value.messages[0]', raw: noId })
    expect(item.reason).toMatch(/id/)
  })

  it('turns a status with an unknown status name into an invalid item', () => {
    const raw = { ...f.statusUpdate({ id: f.newWamid(), status: 'sent', recipientId: LEAD }), status: 'teleported' }
    const item = only(splitDelivery(f.delivery({ ...scope, statuses: [raw] })), 'invalid')
    expect(item.path).toBe('entry[0].changes[0].value.statuses[0]')
  })

  it.each([
    ['undefined', undefined],
    ['a string', 'hello'],
    ['an Instagram body', { object: 'instagram', entry: [] }],
    ['an envelope without entries', { object: 'whatsapp_business_account' }],
  ])('returns one invalid item for %s', (_name, body) => {
    const item = only(splitDelivery(body), 'invalid')
    expect(item).toMatchObject({ path: '$', wabaId: null, field: null })
    expect(item.reason).toMatch(/not a WhatsApp webhook envelope/)
  })

  it('keeps the good entries and changes around a bad one', () => {
    const good = f.delivery({ ...scope, messages: [f.textMessage({ from: LEAD, body: 'x' })] })
    const body = f.envelope([
      { id: '' } as unknown as f.RawEntry,
      { id: WABA, changes: [{ value: {} } as unknown as f.RawChange, { field: 'messages', value: { messaging_product: 'whatsapp' } }] },
      ...good.entry,
    ])
    const items = splitDelivery(body)
    expect(items.map((i) => [i.kind, i.kind === 'invalid' ? i.path : null])).toEqual([
      ['invalid', 'entry[0]'],
      ['invalid', 'entry[1].changes[0]'],
      ['invalid', 'entry[1].changes[1].value'],
      ['message', null],
    ])
  })
})

describe('splitDelivery: statuses and value-level errors', () => {
  it.each(['sent', 'delivered', 'read', 'played'] as const)('reads a %s status with pricing', (status) => {
    const raw = f.statusUpdate({ id: f.newWamid(), status, recipientId: LEAD, timestamp: 1749416400, bizOpaqueCallbackData: 'campaign-7' })
    const item = only(splitDelivery(f.delivery({ ...scope, statuses: [raw] })), 'status')
    expect(item).toMatchObject({ ...scope, itemKey: `status:${raw.id}:${status}:1749416400`, raw })
    expect(item.status).toEqual({
      wamid: raw.id, status, timestamp: new Date(1749416400_000), recipientId: LEAD, recipientUserId: null, errors: [],
      pricing: { billable: true, pricingModel: 'PMP', category: 'utility', type: 'regular' }, bizOpaqueCallbackData: 'campaign-7',
    })
  })

  it('reads a failed status with its errors and the conversation of the old pricing model', () => {
    const raw = f.statusUpdate({
      id: f.newWamid(), status: 'failed', recipientId: LEAD, errors: [f.waError(131047, 'Re-engagement message', 'More than 24 hours have passed')],
      conversation: { id: 'conv-1', expiration_timestamp: '1749500000', origin: { type: 'marketing' } },
    })
    const status = only(splitDelivery(f.delivery({ ...scope, statuses: [raw] })), 'status').status
    expect(status.errors).toEqual([{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message', details: 'More than 24 hours have passed' }])
    expect(status.conversation).toEqual({ id: 'conv-1', expiresAt: new Date(1749500000_000), originType: 'marketing' })
    expect(status.pricing).toBeUndefined()
  })

  it('reads value-level errors such as a rate limit hit', () => {
    const raw = f.waError(130429, 'Rate limit hit', 'Cloud API message throughput has been reached.')
    const item = only(splitDelivery(f.delivery({ ...scope, errors: [raw] })), 'error')
    expect(item).toMatchObject({ ...scope, raw, error: { code: 130429, title: 'Rate limit hit', message: 'Rate limit hit', details: 'Cloud API message throughput has been reached.' } })
    expect(item.itemKey).toMatch(/^error:[0-9a-f]{64}$/)
  })

  it('reads a status for a message before we have seen it (statuses can beat the send response)', () => {
    expect(normalizeStatus(f.statusUpdate({ id: 'wamid.never-seen', status: 'delivered', recipientId: LEAD })).wamid).toBe('wamid.never-seen')
  })
})

describe('splitDelivery: management fields', () => {
  const time = 1749416383
  const at = new Date(time * 1000)

  it('reads a template status update', () => {
    const value = f.templateStatusUpdate({ templateId: 123456789012345, event: 'REJECTED', name: 'promo' })
    const item = only(splitDelivery(f.managementDelivery(WABA, 'message_template_status_update', value, time)), 'template_status')
    expect(item).toEqual({ kind: 'template_status', itemKey: `template_status:123456789012345:REJECTED:${time}`, wabaId: WABA, at, templateId: '123456789012345', event: 'REJECTED', value })
    expect(item.value.reason).toBe('INVALID_FORMAT')
  })

  it('reads a template quality update', () => {
    const value = f.templateQualityUpdate({ templateId: 42, previousScore: 'GREEN', newScore: 'RED' })
    const item = only(splitDelivery(f.managementDelivery(WABA, 'message_template_quality_update', value, time)), 'template_quality')
    expect(item).toMatchObject({ templateId: '42', previousScore: 'GREEN', newScore: 'RED', at, itemKey: `template_quality:42:RED:${time}` })
  })

  it('reads done and impending template category updates', () => {
    const done = only(splitDelivery(f.managementDelivery(WABA, 'template_category_update', f.templateCategoryUpdate({ templateId: 7 }), time)), 'template_category')
    expect(done).toMatchObject({ templateId: '7', previousCategory: 'UTILITY', newCategory: 'MARKETING', correctCategory: null })
    const soon = f.templateCategoryUpdate({ templateId: 7, correctCategory: 'MARKETING', categoryUpdateTimestamp: time + 86_400 })
    const impending = only(splitDelivery(f.managementDelivery(WABA, 'template_category_update', soon, time)), 'template_category')
    expect(impending).toMatchObject({ previousCategory: null, newCategory: 'MARKETING', correctCategory: 'MARKETING', value: { category_update_timestamp: time + 86_400 } })
  })

  it('reads an account update with its restrictions and ban info', () => {
    const value = f.accountUpdate({
      event: 'ACCOUNT_RESTRICTION',
      restriction_info: [{ restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration: '2026-04-19T13:59:20+0000' }],
      ban_info: { waba_ban_state: 'SCHEDULE_FOR_DISABLE', waba_ban_date: '2026-05-01' },
    })
    const item = only(splitDelivery(f.managementDelivery(WABA, 'account_update', value, time)), 'account_update')
    expect(item).toMatchObject({ event: 'ACCOUNT_RESTRICTION', itemKey: `account_update:${WABA}:ACCOUNT_RESTRICTION:${time}`, value })
  })

  it('reads a phone number quality update', () => {
    const value = f.phoneNumberQualityUpdate({ displayPhoneNumber: DISPLAY, event: 'DOWNGRADE', currentLimit: 'TIER_250', oldLimit: 'TIER_1K' })
    const item = only(splitDelivery(f.managementDelivery(WABA, 'phone_number_quality_update', value, time)), 'phone_number_quality')
    expect(item).toMatchObject({ displayPhoneNumber: DISPLAY, event: 'DOWNGRADE', currentLimit: 'TIER_250', value: { old_limit: 'TIER_1K' } })
  })

  it('reads a phone number name update', () => {
    const item = only(splitDelivery(f.managementDelivery(WABA, 'phone_number_name_update', f.phoneNumberNameUpdate({ decision: 'REJECTED' }), time)), 'phone_number_name')
    expect(item).toMatchObject({ decision: 'REJECTED', displayPhoneNumber: f.DEFAULT_DISPLAY_PHONE_NUMBER })
  })

  it('keeps a field we do not model as unknown, value untouched', () => {
    const value = { wa_id: LEAD, category: 'marketing_messages', value: 'stop' }
    const item = only(splitDelivery(f.managementDelivery(WABA, 'user_preferences', value, time)), 'unknown')
    expect(item).toMatchObject({ wabaId: WABA, field: 'user_preferences', value, at })
    expect(item.itemKey).toMatch(/^unknown:user_preferences:[0-9a-f]{64}$/)
  })

  it('turns a known management field with a bad value into an invalid item', () => {
    const item = only(splitDelivery(f.managementDelivery(WABA, 'message_template_status_update', { event: 'APPROVED' }, time)), 'invalid')
    expect(item).toMatchObject({ field: 'message_template_status_update', wabaId: WABA })
  })

  it('keys a management change by a hash of its value when the entry has no time', () => {
    const body = f.managementDelivery(WABA, 'account_update', f.accountUpdate(), time)
    delete body.entry[0]!.time
    const item = only(splitDelivery(body), 'account_update')
    expect(item.at).toBeNull()
    expect(item.itemKey).toMatch(/^account_update:\d+:VERIFIED_ACCOUNT:[0-9a-f]{64}$/)
  })
})

describe('splitDelivery: payload shapes seen in real Cloud API deliveries', () => {
  const time = 1749416383

  it('reads the dashboard "Test" message, whose id is not a wamid, as the text message it is', () => {
    const raw = f.dashboardTestMessage({ from: LEAD })
    const item = splitOne(raw)
    expect(item.parseError).toBeNull()
    expect(item.itemKey).toBe('message:ABGGFlA5Fpa')
    expect(item.message).toMatchObject({ wamid: 'ABGGFlA5Fpa', type: 'text', content: { body: 'this is a text message' } })
  })

  it('reads an account restriction whose expiration is unix seconds, not ISO text', () => {
    const value = f.accountUpdate({ event: 'ACCOUNT_RESTRICTION', restriction_info: [{ restriction_type: 'RESTRICTED_BIZ_INITIATED_MESSAGING', expiration: 1776607160 }] })
    const item = only(splitDelivery(f.managementDelivery(WABA, 'account_update', value, time)), 'account_update')
    expect(item).toMatchObject({ event: 'ACCOUNT_RESTRICTION', value })
  })

  it('reads THROUGHPUT_UPGRADE and the portfolio limit that replaces current_limit', () => {
    const upgrade = f.phoneNumberQualityUpdate({ displayPhoneNumber: DISPLAY, event: 'THROUGHPUT_UPGRADE', currentLimit: 'TIER_UNLIMITED' })
    expect(only(splitDelivery(f.managementDelivery(WABA, 'phone_number_quality_update', upgrade, time)), 'phone_number_quality'))
      .toMatchObject({ event: 'THROUGHPUT_UPGRADE', currentLimit: 'TIER_UNLIMITED', maxDailyConversations: null })
    const portfolio = f.phoneNumberQualityUpdate({ displayPhoneNumber: DISPLAY, event: 'UPGRADE', currentLimit: null, maxDailyConversations: 'TIER_2K' })
    expect(only(splitDelivery(f.managementDelivery(WABA, 'phone_number_quality_update', portfolio, time)), 'phone_number_quality'))
      .toMatchObject({ event: 'UPGRADE', currentLimit: null, maxDailyConversations: 'TIER_2K' })
  })

  it('keeps a rejection_info on a template status update', () => {
    const rejectionInfo = { reason: 'Parameters placed next to each other.', recommendation: 'Separate parameters with text.' }
    const value = f.templateStatusUpdate({ event: 'REJECTED', rejectionInfo })
    expect(only(splitDelivery(f.managementDelivery(WABA, 'message_template_status_update', value, time)), 'template_status').value.rejection_info).toEqual(rejectionInfo)
  })

  it('reads a quality update sent under message_template_status_update (as Meta\'s own reference shows it) as a quality update', () => {
    const value = f.templateQualityUpdate({ templateId: 42, newScore: 'RED' })
    expect(only(splitDelivery(f.managementDelivery(WABA, 'message_template_status_update', value, time)), 'template_quality'))
      .toMatchObject({ templateId: '42', newScore: 'RED' })
  })

  it('reads the identity block of a message and the identity_key_hash of its contact', () => {
    const raw = f.withIdentity(f.textMessage({ from: LEAD, body: 'oi' }), { acknowledged: true, created_timestamp: '1749416000', hash: 'Sjvjlx8G6Z0=' })
    const item = only(splitDelivery(f.delivery({ ...scope, messages: [raw], contacts: [{ waId: LEAD, name: 'Ana', identityKeyHash: 'KEY-HASH' }] })), 'message')
    expect(item.parseError).toBeNull()
    expect(item.message.identity).toEqual({ acknowledged: true, createdAt: new Date(1749416000_000), hash: 'Sjvjlx8G6Z0=', keyHash: 'KEY-HASH' })
    const notice = splitOne(f.identityChangedMessage({ from: LEAD, identity: 'NEW-HASH' }))
    expect(notice.message).toMatchObject({ type: 'system', content: { type: 'customer_identity_changed', identity: 'NEW-HASH', customer: LEAD } })
  })
})

describe('splitDelivery: order and keys', () => {
  const mixed = () => {
    const m1 = f.textMessage({ from: LEAD, body: '1' })
    const m2 = f.imageMessage({ from: '5521999990000' })
    const s1 = f.statusUpdate({ id: f.newWamid(), status: 'delivered', recipientId: LEAD })
    const s2 = f.statusUpdate({ id: s1.id, status: 'read', recipientId: LEAD })
    const other = f.delivery({ wabaId: '300000000000002', phoneNumberId: '400000000000002', messages: [f.textMessage({ from: LEAD, body: '3' })] })
    const first = f.delivery({ ...scope, messages: [m1, m2], statuses: [s1, s2], errors: [f.waError(130429, 'Rate limit hit')] })
    first.entry[0]!.changes.push({ field: 'messages', value: f.messagesValue({ phoneNumberId: PHONE_ID, statuses: [f.statusUpdate({ id: f.newWamid(), status: 'sent', recipientId: LEAD })] }) })
    first.entry[0]!.changes.push({ field: 'calls', value: { calls: [] } })
    return f.mergeDeliveries(first, other, f.managementDelivery(WABA, 'message_template_status_update', f.templateStatusUpdate()))
  }

  it('flattens entries, changes, messages, statuses and errors in the order Meta sent them', () => {
    const body = mixed()
    const items = splitDelivery(body)
    expect(items.map((i) => (i.kind === 'message' ? `message:${i.message.type}` : i.kind === 'status' ? `status:${i.status.status}` : i.kind))).toEqual([
      'message:text', 'message:image', 'status:delivered', 'status:read', 'error', 'status:sent', 'unknown', 'message:text', 'template_status',
    ])
    expect(items.map((i) => ('phoneNumberId' in i ? i.phoneNumberId : null))).toEqual([
      PHONE_ID, PHONE_ID, PHONE_ID, PHONE_ID, PHONE_ID, PHONE_ID, null, '400000000000002', null,
    ])
    expect((items[1] as MessageItem).contactName).toBe('Lead 5521999990000')
  })

  it('gives the same keys for the same body and distinct keys to distinct items', () => {
    const body = mixed()
    const keys = splitDelivery(body).map((i) => i.itemKey)
    expect(splitDelivery(structuredClone(body)).map((i) => i.itemKey)).toEqual(keys)
    expect(new Set(keys).size).toBe(keys.length)
  })

  it('keys do not depend on the order of object keys', () => {
    const value = { b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }
    const reordered = { a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }
    expect(canonicalJson(value)).toBe(canonicalJson(reordered))
    const k1 = splitDelivery(f.managementDelivery(WABA, 'calls', value, 1)).map((i) => i.itemKey)
    const k2 = splitDelivery(f.managementDelivery(WABA, 'calls', reordered, 1)).map((i) => i.itemKey)
    expect(k1).toEqual(k2)
  })

  it('does not throw on a change whose value is not an object', () => {
    expect(() => splitDelivery(f.managementDelivery(WABA, 'messages', null))).not.toThrow()
    expect(only(splitDelivery(f.managementDelivery(WABA, 'messages', 'x')), 'invalid').field).toBe('messages')
  })
})

describe('normalizeMessage', () => {
  it('throws on a message that does not match its schema', () => {
    expect(() => normalizeMessage({ id: 'wamid.x', from: LEAD, timestamp: '1', type: 'text' })).toThrow()
    expect(() => normalizeMessage({ id: '', from: LEAD, timestamp: '1', type: 'text', text: { body: 'x' } })).toThrow()
  })

  it('fixture ids look like Meta wamids and timestamps like strings of unix seconds', () => {
    const msg = f.textMessage({ from: LEAD, body: 'x' })
    expect(msg.id).toMatch(/^wamid\.[A-Za-z0-9+/]+=*$/)
    expect(msg.timestamp).toMatch(/^\d{10}$/)
    expect(f.textMessage({ from: LEAD, body: 'x' }).id).not.toBe(msg.id)
    expect(normalizeMessage(f.textMessage({ from: LEAD, body: 'x', timestamp: new Date('2026-01-02T03:04:05Z') })).timestamp).toEqual(new Date('2026-01-02T03:04:05Z'))
  })
})
