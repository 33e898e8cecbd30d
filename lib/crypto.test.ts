import { describe, expect, it } from 'vitest'
import { Pseudonyms, safeEqual, SecretBox, sha256 } from './crypto.js'
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
  it("keeps query names but drops every value, Meta's verify token and a searched phone alike", () => {
    expect(redactUrl('/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=42')).toBe(
      '/webhooks/whatsapp?hub.mode=[redacted]&hub.verify_token=[redacted]&hub.challenge=[redacted]',
    )
    expect(redactUrl('/v1/leads?q=%2B5215599990000&limit=5')).toBe('/v1/leads?q=[redacted]&limit=[redacted]')
  })
})

describe('Pseudonyms', () => {
  const a = Pseudonyms.fromConfig('1'.repeat(64))
  it('gives the same recipient the same pseudonym, and says nothing of the number', () => {
    expect(a.of('wa-send', '5215599990000')).toBe(Pseudonyms.fromConfig('1'.repeat(64)).of('wa-send', '5215599990000'))
    expect(a.of('wa-send', '5215599990000')).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(a.of('wa-send', '5215599990001')).not.toBe(a.of('wa-send', '5215599990000'))
  })
  it('is keyed: another SECRETS_KEY or another purpose gives another pseudonym (a plain hash would not)', () => {
    expect(Pseudonyms.fromConfig('2'.repeat(64)).of('wa-send', '5215599990000')).not.toBe(a.of('wa-send', '5215599990000'))
    expect(a.of('other', '5215599990000')).not.toBe(a.of('wa-send', '5215599990000'))
    expect(a.of('wa-send', '5215599990000')).not.toBe(sha256('5215599990000').subarray(0, 16).toString('base64url'))
  })
})
