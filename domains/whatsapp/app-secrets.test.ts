import { describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import { appKeyOf, idsInDelivery, ownSigner, parseSigner, registeredUnder } from './app-secrets.js'

describe("an own app's key", () => {
  const box = SecretBox.fromConfig('0'.repeat(64))

  it('is the same for the same secret, differs for another secret, and under another SECRETS_KEY', () => {
    const key = appKeyOf(box, 'tenant-own-app-secret-0001')
    expect(key).toMatch(/^[0-9a-f]{64}$/)
    expect(appKeyOf(box, 'tenant-own-app-secret-0001')).toBe(key)
    expect(appKeyOf(box, 'tenant-own-app-secret-0002')).not.toBe(key)
    expect(appKeyOf(SecretBox.fromConfig('1'.repeat(64)), 'tenant-own-app-secret-0001')).not.toBe(key)
  })

  it('round-trips through the stored signer, and anything else is unbound', () => {
    const key = appKeyOf(box, 's'.repeat(32))
    expect(parseSigner(ownSigner(key))).toEqual({ kind: 'own', appKey: key })
    expect(parseSigner('platform')).toEqual({ kind: 'platform' })
    for (const other of ['unbound', 'own:', 'own:xyz', `own:${key}0`, 'PLATFORM']) expect(parseSigner(other)).toEqual({ kind: 'unbound' })
  })
})

describe('registeredUnder', () => {
  const a = 'a'.repeat(64)
  const b = 'b'.repeat(64)
  it.each([
    ['platform signer, platform number', { kind: 'platform' as const }, { platform: true, appKeys: [] }, true],
    ['platform signer, own-app number', { kind: 'platform' as const }, { platform: false, appKeys: [a] }, false],
    ['own app, its number', { kind: 'own' as const, appKey: a }, { platform: false, appKeys: [a] }, true],
    ['own app, a WABA with its number among others', { kind: 'own' as const, appKey: a }, { platform: true, appKeys: [b, a] }, true],
    ['own app, another app\'s number', { kind: 'own' as const, appKey: a }, { platform: false, appKeys: [b] }, false],
    ['own app, a platform number', { kind: 'own' as const, appKey: a }, { platform: true, appKeys: [] }, false],
    ['unbound, anything', { kind: 'unbound' as const }, { platform: true, appKeys: [a] }, false],
  ])('%s: %s', (_name, signer, registration, expected) => {
    expect(registeredUnder(signer, registration)).toBe(expected)
  })
})

describe('idsInDelivery', () => {
  it('reads the WABA and phone number ids without trusting the shape', () => {
    expect(idsInDelivery({ entry: [{ id: '1', changes: [{ value: { metadata: { phone_number_id: '2' } } }, null] }, 'x'] })).toEqual({ phoneNumberIds: ['2'], wabaIds: ['1'] })
    expect(idsInDelivery(null)).toEqual({ phoneNumberIds: [], wabaIds: [] })
  })
})
