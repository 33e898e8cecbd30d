import { describe, expect, it } from 'vitest'
import { safeEqual, SecretBox } from './crypto.js'
import { redactUrl } from './logger.js'

describe('SecretBox', () => {
  const box = SecretBox.fromConfig('0'.repeat(64))

  it('opens what it sealed, and seals the same text differently each time', () => {
    const a = box.seal('EAAG-access-token')
    expect(box.open(a)).toBe('EAAG-access-token')
    expect(box.seal('EAAG-access-token')).not.toBe(a)
    expect(a).not.toContain('EAAG')
  })

  it('refuses a tampered ciphertext and a different key', () => {
    const sealed = box.seal('secret')
    const parts = sealed.split('.')
    const flipped = Buffer.from(parts[3]!, 'base64url')
    flipped[0]! ^= 1
    expect(() => box.open([parts[0], parts[1], parts[2], flipped.toString('base64url')].join('.'))).toThrow()
    expect(() => SecretBox.fromConfig('1'.repeat(64)).open(sealed)).toThrow()
  })
})

describe('safeEqual', () => {
  it('compares secrets of any length', () => {
    expect(safeEqual('abc', 'abc')).toBe(true)
    expect(safeEqual('abc', 'abcd')).toBe(false)
  })
})

describe('redactUrl', () => {
  it("keeps query names but drops secret values such as Meta's verify token", () => {
    expect(redactUrl('/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=42')).toBe(
      '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=%5Bredacted%5D&hub.challenge=%5Bredacted%5D',
    )
    expect(redactUrl('/v1/leads?limit=5')).toBe('/v1/leads?limit=5')
  })
})
