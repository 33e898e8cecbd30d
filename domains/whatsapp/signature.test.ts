import { describe, expect, it } from 'vitest'
import { signMetaBody, verifyMetaSignature } from './signature.js'

describe('verifyMetaSignature', () => {
  const secret = 'app-secret-123'
  // Meta sends non-ASCII escaped; the bytes signed are these, not a re-serialized "olá".
  const raw = Buffer.from('{"object":"whatsapp_business_account","entry":[{"text":"ol\\u00e1 \\ud83d\\ude00"}]}')

  it('accepts the HMAC-SHA256 of the exact bytes', () => {
    expect(verifyMetaSignature(raw, signMetaBody(raw, secret), secret)).toBe(true)
  })

  it('refuses a re-serialization of the same JSON (different bytes)', () => {
    const reserialized = Buffer.from(JSON.stringify(JSON.parse(raw.toString())))
    expect(reserialized.equals(raw)).toBe(false)
    expect(verifyMetaSignature(reserialized, signMetaBody(raw, secret), secret)).toBe(false)
  })

  it.each([
    ['a wrong secret', signMetaBody(raw, 'other-secret')],
    ['a missing header', undefined],
    ['a header without the sha256= prefix', signMetaBody(raw, secret).slice(7)],
    ['a truncated digest', signMetaBody(raw, secret).slice(0, -2)],
    ['garbage', 'sha256=zz'],
  ])('refuses %s', (_name, header) => {
    expect(verifyMetaSignature(raw, header, secret)).toBe(false)
  })

  it('refuses a body with one byte changed', () => {
    const header = signMetaBody(raw, secret)
    const changed = Buffer.from(raw)
    changed[changed.length - 3]! ^= 1
    expect(verifyMetaSignature(changed, header, secret)).toBe(false)
  })
})
