import { describe, expect, it } from 'vitest'
import { signStandardWebhook, verifyStandardWebhook } from './webhooks.js'

// The Standard Webhooks specification's published test vector (standard-webhooks/standard-webhooks, and Svix's
// libraries, which implement the same scheme): a receiver's library must accept what we send.
const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
}

describe('Standard Webhooks signatures', () => {
  it('reproduces the published test vector exactly', () => {
    expect(signStandardWebhook(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature)
  })

  it('verifies as a receiver does: any listed v1 signature, within the timestamp tolerance', () => {
    const headers = { id: VECTOR.id, timestamp: String(VECTOR.timestamp), signature: `v1,bm9wZQ== ${VECTOR.signature}` }
    expect(verifyStandardWebhook(VECTOR.secret, headers, VECTOR.body, 300, VECTOR.timestamp * 1000)).toBe(true)
    expect(verifyStandardWebhook(VECTOR.secret, headers, VECTOR.body, 300, (VECTOR.timestamp + 301) * 1000)).toBe(false)
    expect(verifyStandardWebhook(VECTOR.secret, headers, `${VECTOR.body} `, 300, VECTOR.timestamp * 1000)).toBe(false)
    expect(verifyStandardWebhook(VECTOR.secret, { ...headers, id: 'msg_other' }, VECTOR.body, 300, VECTOR.timestamp * 1000)).toBe(false)
  })
})
