import { describe, expect, it } from 'vitest'
import { identityNeedles } from './verify.js'

describe('the identity strings erasure searches for', () => {
  it('covers every stored form of a phone with its shortest spelling: the national number', () => {
    // +55 11 98765-4321: E.164 digits contain the national number, so the national number alone finds both.
    expect(identityNeedles({ emails: [], phones: ['+5511987654321'], waIds: ['5511987654321'] })).toEqual(['11987654321'])
  })

  it('keeps a legacy wa_id that is not a substring of the number (Brazil without the ninth digit)', () => {
    expect(identityNeedles({ emails: [], phones: ['+5521987654321'], waIds: ['552187654321'] }).sort()).toEqual(['2187654321', '21987654321'].sort())
  })

  it('lowercases emails and drops strings too short to mean anyone', () => {
    expect(identityNeedles({ emails: ['Ana.Lima@Example.com'], phones: [], waIds: ['12345'] })).toEqual(['ana.lima@example.com'])
  })

  it('keeps a username-style WhatsApp id as it is', () => {
    expect(identityNeedles({ emails: [], phones: [], waIds: ['BR.abcdef123456'] })).toEqual(['br.abcdef123456'])
  })
})
