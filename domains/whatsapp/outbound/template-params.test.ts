import { describe, expect, it } from 'vitest'
import { checkTemplateParameters } from './template-params.js'

const stored = [
  { type: 'HEADER', format: 'IMAGE' },
  { type: 'BODY', text: 'Hi {{1}}, your visit is on {{2}} at {{2}}.' },
  { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Yes' }, { type: 'URL', text: 'Open', url: 'https://x.example/{{1}}' }, { type: 'URL', text: 'Site', url: 'https://x.example' }] },
]
const header = { type: 'header' as const, parameters: [{ type: 'image' as const, image: { link: 'https://x.example/a.png' } }] }
const body = (n: number) => ({ type: 'body' as const, parameters: Array.from({ length: n }, (_, i) => ({ type: 'text' as const, text: `v${i}` })) })
const urlButton = { type: 'button' as const, subType: 'url' as const, index: 1, parameters: [{ type: 'text' as const, text: 'abc' }] }

describe('template parameters against the stored template', () => {
  it('accepts parameters that fit: one per distinct variable, the media header, the dynamic URL', () => {
    expect(checkTemplateParameters(stored, [header, body(2), urlButton])).toEqual([])
  })

  it.each([
    ['a missing media header', [body(2), urlButton], /header needs a image/],
    ['a text header for an image one', [{ type: 'header' as const, parameters: [{ type: 'text' as const, text: 'x' }] }, body(2), urlButton], /must be image/],
    ['too many body parameters', [header, body(3), urlButton], /2 variable\(s\); 3 parameter/],
    ['no URL parameter', [header, body(2)], /button 1 \(URL\) needs a parameter/],
    ['a parameter for a fixed URL', [header, body(2), urlButton, { ...urlButton, index: 2 }], /fixed URL/],
    ['a button the template lacks', [header, body(2), urlButton, { ...urlButton, index: 5 }], /no button 5/],
    ['the wrong button type', [header, body(2), { ...urlButton, subType: 'quick_reply' as const }], /is URL, not quick_reply/],
  ])('refuses %s', (_name, given, message) => {
    expect(checkTemplateParameters(stored, given as never).map((i) => i.message).join('; ')).toMatch(message)
  })

  it('takes no parameters for a template without variables', () => {
    expect(checkTemplateParameters([{ type: 'BODY', text: 'Hello' }], undefined)).toEqual([])
    expect(checkTemplateParameters([{ type: 'BODY', text: 'Hello' }], [body(1)])).toHaveLength(1)
  })
})
