import { describe, expect, it } from 'vitest'
import { addressHash, clip, truncatedAddress } from './privacy.js'

describe('what a link click keeps of the visitor', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0/24'],
    ['::ffff:198.51.100.9', '198.51.100.0/24'],
    ['2001:db8:abcd:12:1:2:3:4', '2001:db8:abcd::/48'],
    ['2001:db8::1', '2001:db8:0::/48'],
    ['fe80::1%eth0', 'fe80:0:0::/48'],
    ['not an address', null],
    ['', null],
  ])('keeps %s as %s', (ip, expected) => {
    expect(truncatedAddress(ip)).toBe(expected)
  })

  it('hashes the whole address with a key: stable, not the address, different for neighbours', () => {
    const a = addressHash('203.0.113.77')!
    expect(a).toBe(addressHash('203.0.113.77'))
    expect(a).toBe(addressHash('::ffff:203.0.113.77'))
    expect(a).not.toContain('203')
    expect(a).not.toBe(addressHash('203.0.113.78'))
  })

  it('clips user agents and referrers and drops control characters', () => {
    expect(clip('a\u0000b\nc', 10)).toBe('abc')
    expect(clip('x'.repeat(600), 500)).toHaveLength(500)
    expect(clip(undefined, 5)).toBeNull()
  })
})
