import { describe, expect, it } from 'vitest'
import { normalizeEmail } from './email.js'

describe('normalizeEmail', () => {
  it.each([
    ['ana@example.com', 'ana@example.com'],
    ['  Ana.Silva@Example.COM  ', 'ana.silva@example.com'],
    ['\tJOAO@EMPRESA.COM.BR\n', 'joao@empresa.com.br'],
    ['o_neil-99@sub.example.co.uk', 'o_neil-99@sub.example.co.uk'],
  ])('normalizes %j to %s', (raw, email) => {
    expect(normalizeEmail(raw)).toBe(email)
  })

  it('keeps dots and plus tags, which are distinct mailboxes at many providers', () => {
    expect(normalizeEmail('Ana.Silva+Promo@gmail.com')).toBe('ana.silva+promo@gmail.com')
    expect(normalizeEmail('a.b@outlook.com')).not.toBe(normalizeEmail('ab@outlook.com'))
    expect(normalizeEmail('ana+shop@fastmail.com')).not.toBe(normalizeEmail('ana@fastmail.com'))
  })

  it.each(['', '   ', 'ana', 'ana@', '@example.com', 'ana@example', 'ana @example.com', 'ana@@example.com', 'a,b@example.com', `${'a'.repeat(250)}@example.com`])(
    'rejects %j',
    (raw) => {
      expect(normalizeEmail(raw)).toBeNull()
    },
  )

  it('is idempotent', () => {
    const once = normalizeEmail(' Ana@Example.com ')!
    expect(normalizeEmail(once)).toBe(once)
  })
})
