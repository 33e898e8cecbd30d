import { describe, expect, it } from 'vitest'
import { Question } from './schemas.js'
import { pageOf, parseReply, questionMessage } from './whatsapp.js'

const q = (x: object) => Question.parse({ text: 'Q?', ...x })
const many = q({ id: 'country', type: 'single_choice', options: Array.from({ length: 23 }, (_, i) => ({ id: `c${i + 1}`, label: `Country number ${i + 1} with a long name` })) })
const reply = (o: { text?: string; buttonId?: string; listId?: string }) => ({ messageId: 'wamid.x', kind: o.listId ? 'interactive' : 'text', ...o })

describe('questions as WhatsApp messages, within Meta\'s limits', () => {
  it.each([
    ['yes/no → 2 buttons', q({ id: 'a', type: 'yes_no' }), 'send_buttons', 2],
    ['optional yes/no → 3 buttons with Skip', q({ id: 'a', type: 'yes_no', required: false }), 'send_buttons', 3],
    ['3 short options → buttons', q({ id: 'a', type: 'single_choice', options: [{ id: 'x', label: 'X' }, { id: 'y', label: 'Y' }, { id: 'z', label: 'Z' }] }), 'send_buttons', 3],
    ['a title over 20 characters → a list', q({ id: 'a', type: 'single_choice', options: [{ id: 'x', label: 'A rather long option title' }, { id: 'y', label: 'Y' }] }), 'send_list', 2],
    ['4 options → a list', q({ id: 'a', type: 'single_choice', options: ['a', 'b', 'c', 'd'].map((id) => ({ id, label: id })) }), 'send_list', 4],
    ['a 1-10 scale → a list of 10', q({ id: 'a', type: 'scale', min: 1, max: 10 }), 'send_list', 10],
    ['a 0-20 scale → typed', q({ id: 'a', type: 'scale', min: 0, max: 20 }), 'send_text', 0],
    ['23 options → 9 rows and More…', many, 'send_list', 10],
    ['a number → typed', q({ id: 'a', type: 'number', min: 0, max: 100 }), 'send_text', 0],
    ['multiple choice → typed with numbers', q({ id: 'a', type: 'multiple_choice', options: [{ id: 'x', label: 'X' }, { id: 'y', label: 'Y' }] }), 'send_text', 0],
  ])('%s', (_name, question, type, count) => {
    const m = questionMessage(question, { index: 1, total: 5 })
    expect(m.type).toBe(type)
    if (m.type === 'send_buttons') {
      expect(m.options).toHaveLength(count)
      expect(m.options.every((o) => o.title.length <= 20)).toBe(true)
    }
    if (m.type === 'send_list') {
      expect(m.options).toHaveLength(count)
      expect(m.options.every((o) => o.title.length <= 24 && (o.description ?? '').length <= 72)).toBe(true)
    }
  })

  it('pages 23 options as 9 + More…, 9 + More…, 5 + Back to the start, and wraps', () => {
    const choices = many.options!.map((o) => ({ id: o.id, title: o.label }))
    const pages = [0, 1, 2, 3].map((p) => pageOf(choices, p))
    expect(pages.map((p) => p.length)).toEqual([10, 10, 6, 10])
    expect(pages.map((p) => p.at(-1)!.title)).toEqual(['More…', 'More…', 'Back to the start', 'More…'])
    expect(pages.slice(0, 3).flatMap((p) => p.slice(0, -1).map((c) => c.id))).toEqual(choices.map((c) => c.id))
  })
})

describe('replies, tapped or typed, validated against the question', () => {
  const single = q({ id: 'a', type: 'single_choice', options: [{ id: 'low', label: 'Low' }, { id: 'high', label: 'Élevé' }] })
  const multi = q({ id: 'm', type: 'multiple_choice', required: false, options: [{ id: 'x', label: 'Walking' }, { id: 'y', label: 'Running' }, { id: 'z', label: 'Yoga' }] })
  it.each([
    [single, { listId: 'opt:high' }, { value: 'high' }],
    [single, { text: '2' }, { value: 'high' }],
    [single, { text: 'eleve' }, { value: 'high' }],
    [single, { listId: 'opt:nope' }, 'invalid'],
    [single, { text: '3' }, 'invalid'],
    [single, { text: 'skip' }, 'invalid'],
    [q({ id: 'b', type: 'yes_no' }), { text: 'Sim' }, { value: true }],
    [q({ id: 'b', type: 'yes_no' }), { buttonId: 'opt:no' }, { value: false }],
    [q({ id: 's', type: 'scale', min: 1, max: 5 }), { listId: 'scale:4' }, { value: 4 }],
    [q({ id: 's', type: 'scale', min: 1, max: 5 }), { text: '7' }, 'invalid'],
    [q({ id: 'n', type: 'number' }), { text: '72,5' }, { value: 72.5 }],
    [q({ id: 'n', type: 'number' }), { text: '1.000,50' }, 'invalid'],
    [multi, { text: '1, 3' }, { value: ['x', 'z'] }],
    [multi, { text: 'walking and yoga' }, { value: ['x', 'z'] }],
    [multi, { text: 'none' }, { value: [] }],
    [multi, { text: '1, 9' }, 'invalid'],
    [multi, { text: 'skip' }, { value: null }],
    [many, { listId: 'more' }, { more: true }],
  ])('%#: %j', (question, r, expected) => {
    const parsed = parseReply(question, reply(r))
    if (expected === 'invalid') expect(parsed).toHaveProperty('invalid')
    else expect(parsed).toEqual(expected)
  })
})
