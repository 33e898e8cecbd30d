import { describe, expect, it } from 'vitest'
import { checkTemplateParameters } from '../../whatsapp/outbound/template-params.js'
import { canMove, TRANSITIONS } from './lifecycle.js'
import { type LeadValues, renderParameters, sampleComponents } from './params.js'
import { ParameterMapping } from './schemas.js'
import { tierLimit, tierRemaining } from './tier.js'

const lead = (over: Partial<LeadValues> = {}): LeadValues => ({
  name: 'Maria  da Silva', profileName: 'Mari', company: null, email: 'maria@example.com', phoneE164: '+5511987654321', source: 'web_form', status: 'new',
  fields: { city: 'Recife', visits: 3, vip: true, blank: '  ' }, ...over,
})
const mapping = (m: object) => ParameterMapping.parse(m)

describe('template parameters from lead fields', () => {
  it.each([
    { source: { field: 'first_name' }, expected: 'Maria' },
    { source: { field: 'name' }, expected: 'Maria  da Silva' },
    { source: { field: 'fields.city' }, expected: 'Recife' },
    { source: { field: 'fields.visits' }, expected: '3' },
    { source: { field: 'fields.vip' }, expected: 'true' },
    { source: { field: 'company', fallback: 'your company' }, expected: 'your company' },
    { source: { field: 'fields.blank', fallback: 'n/a' }, expected: 'n/a' },
    { source: { value: 'DEC20' }, expected: 'DEC20' },
  ])('reads $source as $expected', ({ source, expected }) => {
    const r = renderParameters(lead(), mapping({ body: [source] }))
    expect(r).toEqual({ ok: true, components: [{ type: 'body', parameters: [{ type: 'text', text: expected }] }] })
  })

  it('falls back from name to the WhatsApp profile name for first_name', () => {
    const r = renderParameters(lead({ name: null }), mapping({ body: [{ field: 'first_name' }] }))
    expect(r).toMatchObject({ ok: true, components: [{ parameters: [{ text: 'Mari' }] }] })
  })

  it('refuses a recipient with every missing value named, and no fallback', () => {
    const r = renderParameters(lead({ company: null, fields: {} }), mapping({ header: { field: 'company' }, body: [{ field: 'name' }, { field: 'fields.city' }] }))
    expect(r).toEqual({ ok: false, reason: 'no value for header (company), body {{2}} (fields.city)' })
  })

  it('flattens newlines and long runs of spaces Meta would refuse (132018)', () => {
    const r = renderParameters(lead({ fields: { note: 'line one\n\tline     two' } }), mapping({ body: [{ field: 'fields.note' }] }))
    expect(r).toMatchObject({ ok: true, components: [{ parameters: [{ text: 'line one line   two' }] }] })
  })

  it('builds URL and copy-code buttons by index, and the sample fits the template it was written for', () => {
    const m = mapping({ body: [{ field: 'first_name' }], buttons: [{ index: 1, subType: 'url', source: { field: 'fields.city' } }, { index: 2, subType: 'copy_code', source: { value: 'SAVE10' } }] })
    const stored = [{ type: 'BODY', text: 'Hi {{1}}' }, { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Yes' }, { type: 'URL', text: 'Open', url: 'https://x.example/{{1}}' }, { type: 'COPY_CODE', example: 'SAVE10' }] }]
    expect(checkTemplateParameters(stored, sampleComponents(m))).toEqual([])
    expect(checkTemplateParameters(stored, sampleComponents(mapping({ body: [] })))).not.toEqual([])
  })
})

describe('the 24-hour messaging limit tiers', () => {
  it.each([
    ['TIER_250', 250], ['TIER_1K', 1000], ['TIER_2K', 2000], ['TIER_10K', 10_000], ['TIER_100K', 100_000], ['TIER_UNLIMITED', null], [null, 250], ['something new', 250], ['1000', 1000],
  ])('reads %s as %s', (tier, limit) => expect(tierLimit(tier)).toBe(limit))

  it('leaves what the window has not used, never less than nothing', () => {
    expect(tierRemaining(250, 240)).toBe(10)
    expect(tierRemaining(250, 300)).toBe(0)
    expect(tierRemaining(null, 1e9)).toBe(Number.POSITIVE_INFINITY)
  })
})

describe('the broadcast lifecycle', () => {
  it('only moves forward, pauses beside sending, and ends in completed, stopped or failed', () => {
    expect(canMove('draft', 'scheduled')).toBe(true)
    expect(canMove('scheduled', 'sending')).toBe(true)
    expect(canMove('sending', 'paused')).toBe(true)
    expect(canMove('paused', 'sending')).toBe(true)
    expect(canMove('completed', 'sending')).toBe(false)
    expect(canMove('draft', 'completed')).toBe(false)
    for (const end of ['completed', 'stopped', 'failed'] as const) expect(TRANSITIONS[end]).toEqual([])
  })
})
