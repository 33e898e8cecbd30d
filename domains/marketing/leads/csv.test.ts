import { describe, expect, it } from 'vitest'
import { CSV_HEADER, csvField, leadCsvRow } from './csv.js'
import type { LeadView } from './schemas.js'

describe('lead CSV', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['', ''],
  ])('writes %j as %s', (value, csv) => {
    expect(csvField(value, true)).toBe(csv)
  })

  it('defuses spreadsheet formulas in what people typed, but leaves phone numbers exact', () => {
    expect(csvField('=HYPERLINK("http://evil")', true)).toBe(`"'=HYPERLINK(""http://evil"")"`)
    expect(csvField('@SUM(A1)', true)).toBe("'@SUM(A1)")
    expect(csvField('+5511987654321', false)).toBe('+5511987654321')
  })

  it('writes one line per lead with the header columns', () => {
    const at = new Date('2025-01-02T03:04:05.000Z')
    const lead: LeadView = {
      id: '6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11', phoneE164: '+5511987654321', waId: null, email: 'ana@example.com', name: 'Ana, Silva',
      profileName: null, company: null, source: 'web_form', sourceDetails: {}, status: 'new', owner: null, tags: ['vip', 'promo'],
      fields: { interest: 'implants' }, optedOutAt: null, mergedInto: null, firstSeenAt: at, lastSeenAt: at, createdAt: at, updatedAt: at,
    }
    const row = leadCsvRow(lead)
    expect(row.endsWith('\r\n')).toBe(true)
    expect(row).toContain('"Ana, Silva"')
    expect(row).toContain('vip;promo')
    expect(row).toContain('"{""interest"":""implants""}"')
    expect(CSV_HEADER.split(',').length).toBe(row.match(/(?:^|,)(?:"(?:[^"]|"")*"|[^,\r\n]*)/g)!.length)
  })
})
