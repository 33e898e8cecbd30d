import { describe, expect, it } from 'vitest'
import * as f from './fixtures.js'
import { InboundMessage, MessageStatus, WebhookChange, WebhookPayload } from './payload.js'

const LEAD = '5511988887777'

describe('WebhookPayload', () => {
  it('parses a messages delivery and keeps keys it does not model', () => {
    const body = f.delivery({ messages: [f.textMessage({ from: LEAD, body: 'oi' })], statuses: [f.statusUpdate({ id: f.newWamid(), status: 'read', recipientId: LEAD })] })
    const withExtra = { ...body, extra_top_level: 1 }
    const parsed = WebhookPayload.parse(withExtra)
    expect(parsed).toEqual(withExtra)
    const change = parsed.entry[0]?.changes[0]
    expect(change?.field).toBe('messages')
  })

  it('parses every management field, and fields it does not know with their value as is', () => {
    const fields: [string, unknown][] = [
      ['message_template_status_update', f.templateStatusUpdate()],
      ['message_template_quality_update', f.templateQualityUpdate()],
      ['template_category_update', f.templateCategoryUpdate()],
      ['account_update', f.accountUpdate()],
      ['phone_number_quality_update', f.phoneNumberQualityUpdate()],
      ['phone_number_name_update', f.phoneNumberNameUpdate()],
      ['history', { anything: ['goes'] }],
    ]
    for (const [field, value] of fields) {
      expect(WebhookChange.parse({ field, value })).toEqual({ field, value })
      expect(WebhookPayload.safeParse(f.managementDelivery('1', field, value)).success).toBe(true)
    }
  })

  it('rejects a known field with a malformed value rather than calling it unknown', () => {
    expect(WebhookChange.safeParse({ field: 'account_update', value: {} }).success).toBe(false)
  })

  it('is strict on ids and timestamps', () => {
    const msg = f.textMessage({ from: LEAD, body: 'x' })
    expect(InboundMessage.safeParse(msg).success).toBe(true)
    expect(InboundMessage.safeParse({ ...msg, timestamp: 1749416383 }).success).toBe(false)
    expect(InboundMessage.safeParse({ ...msg, timestamp: '2025-06-08T12:00:00Z' }).success).toBe(false)
    expect(InboundMessage.safeParse({ ...msg, id: '' }).success).toBe(false)
    // Meta's dashboard "Test" button sends a sample whose id is not a wamid: any non-empty id is a message id.
    expect(InboundMessage.safeParse({ ...msg, id: 'ABGGFlA5Fpa' }).success).toBe(true)
    expect(InboundMessage.safeParse({ ...msg, from: undefined }).success).toBe(false)
    const status = f.statusUpdate({ id: f.newWamid(), status: 'sent', recipientId: LEAD })
    expect(MessageStatus.safeParse(status).success).toBe(true)
    expect(MessageStatus.safeParse({ ...status, id: 'abc' }).success).toBe(false)
  })
})
