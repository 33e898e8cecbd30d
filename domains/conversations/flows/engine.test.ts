import { describe, expect, it } from 'vitest'
import { demoQualificationFlow } from './demo-qualification-flow.js'
import { advance, type FlowContext, isOptOut, type LeadSnapshot, matchesTrigger, MAX_STEPS_PER_EVENT, parseAnswer, startFlow, type StepResult } from './engine.js'
import { type FlowAction, FlowDocument, type FlowDocumentInput, type FlowEvent, FlowState } from './schema.js'

const T0 = new Date('2025-03-10T12:00:00.000Z')
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000)
const iso = (seconds: number) => at(seconds).toISOString()

const lead = (overrides: Partial<LeadSnapshot> = {}): LeadSnapshot => ({ name: 'Maria', tags: [], status: 'new', fields: {}, ...overrides })
const ctx = (seconds = 0, leadOverrides: Partial<LeadSnapshot> = {}): FlowContext => ({ now: at(seconds), lead: lead(leadOverrides) })

let messageSeq = 0
const text = (body: string): FlowEvent => ({ type: 'message', messageId: `m${++messageSeq}`, text: body, kind: 'text' })
const button = (id: string, title = id): FlowEvent => ({ type: 'message', messageId: `m${++messageSeq}`, buttonId: id, text: title, kind: 'interactive' })
const listReply = (id: string): FlowEvent => ({ type: 'message', messageId: `m${++messageSeq}`, listId: id, kind: 'interactive' })
const timer = (dueAt: string): FlowEvent => ({ type: 'timer', dueAt })
const release: FlowEvent = { type: 'release' }

const demo = FlowDocument.parse(demoQualificationFlow)
const parseFlow = (doc: FlowDocumentInput) => FlowDocument.parse(doc)
const types = (actions: FlowAction[]) => actions.map((a) => a.type)
const texts = (actions: FlowAction[]) => actions.flatMap((a) => ('text' in a ? [a.text] : []))

/** Feeds events in order, as the worker would, returning every step. */
function play(flow: FlowDocument, events: [FlowEvent, FlowContext][], start: FlowContext = ctx()): StepResult[] {
  const steps = [startFlow(flow, start, { flowId: 'flow-1', flowVersion: 4 })]
  for (const [event, context] of events) steps.push(advance(flow, steps.at(-1)!.state, event, context))
  return steps
}

describe('the demo dental clinic flow', () => {
  it('greets by name, asks service, time and email, qualifies an implant lead and says thanks', () => {
    const [greeting, service, time, email] = play(demo, [
      [button('implants', 'Implants & braces'), ctx(30)],
      [listReply('saturday'), ctx(60)],
      [text('  Maria.Silva@Example.com '), ctx(90)],
    ])

    expect(greeting!.actions).toEqual([
      { type: 'send_text', text: expect.stringMatching(/^Hi Maria! 👋 Welcome to Bright Smile Dental/) },
      {
        type: 'send_buttons',
        text: 'What can we help you with?',
        options: [
          { id: 'cleaning', title: 'Cleaning & check-up' },
          { id: 'implants', title: 'Implants & braces' },
          { id: 'human', title: 'Talk to a person' },
        ],
      },
      { type: 'schedule_timer', dueAt: iso(3600), kind: 'ask_reminder' },
    ])
    expect(greeting!.state).toEqual({
      flowId: 'flow-1', flowVersion: 4, currentNodeId: 'ask_service', status: 'waiting_answer', attempts: 0, answers: {},
      timerDueAt: iso(3600), timerKind: 'ask_reminder',
    })

    expect(types(service!.actions)).toEqual(['cancel_timer', 'send_list'])
    expect(service!.actions[1]).toMatchObject({ text: 'Great choice: Implants & braces. When would you prefer to come in?', buttonText: 'See times' })
    expect(service!.state).toMatchObject({ currentNodeId: 'ask_time', answers: { service: 'implants' } })
    expect(service!.state).not.toHaveProperty('timerDueAt')

    expect(time!.actions).toEqual([
      { type: 'set_lead_field', field: 'preferred_time', value: 'Saturday' },
      { type: 'send_text', text: "What's your email? We'll send your appointment confirmation there." },
    ])

    expect(email!.actions).toEqual([
      { type: 'set_lead_field', field: 'email', value: 'maria.silva@example.com' },
      { type: 'set_status', status: 'qualified' },
      { type: 'add_tags', tags: ['service:implants', 'high_value'] },
      { type: 'send_text', text: 'Thank you, Maria! 🦷 Our team will confirm your Implants & braces appointment (Saturday) here on WhatsApp shortly.' },
      { type: 'end' },
    ])
    expect(email!.state).toEqual({
      flowId: 'flow-1', flowVersion: 4, currentNodeId: null, status: 'ended', attempts: 0,
      answers: { service: 'implants', preferred_time: 'saturday', email: 'maria.silva@example.com' },
    })
  })

  it('tags a cleaning lead instead of qualifying it', () => {
    const steps = play(demo, [[button('cleaning'), ctx(1)], [listReply('weekday_morning'), ctx(2)], [text('joao@example.com'), ctx(3)]])
    expect(types(steps.at(-1)!.actions)).toEqual(['set_lead_field', 'add_tags', 'send_text', 'end'])
    expect(steps.at(-1)!.actions[1]).toEqual({ type: 'add_tags', tags: ['service:cleaning'] })
  })

  it('tags the lead and moves on when no valid email comes after three tries', () => {
    const steps = play(demo, [
      [button('implants'), ctx(1)], [listReply('saturday'), ctx(2)],
      [text('maria at example'), ctx(3)], [text('maria@'), ctx(4)], [text('still no'), ctx(5)],
    ])
    const [first, second, third] = steps.slice(-3)
    expect(first!.actions).toEqual([{ type: 'send_text', text: expect.stringMatching(/^Hmm, that doesn't look like an email/) }])
    expect(first!.state.attempts).toBe(1)
    expect(second!.state.attempts).toBe(2)
    expect(types(third!.actions)).toEqual(['add_tags', 'set_status', 'add_tags', 'send_text', 'end'])
    expect(third!.actions[0]).toEqual({ type: 'add_tags', tags: ['no_email'] })
    expect(third!.state.answers).not.toHaveProperty('email')
  })

  it('hands over on "Talk to a person", ignores messages until released, then ends', () => {
    const [, handover, ignored, released] = play(demo, [[button('human'), ctx(5)], [text('hello?'), ctx(6)], [release, ctx(7)]])
    expect(handover!.actions).toEqual([
      { type: 'cancel_timer' },
      { type: 'send_text', text: expect.stringMatching(/^Sure! I'm passing you to our front desk/) },
      { type: 'handover', note: 'Lead asked for a person (service: Talk to a person)' },
    ])
    expect(handover!.state).toMatchObject({ status: 'handed_over', currentNodeId: null })
    expect(ignored).toEqual({ state: handover!.state, actions: [] })
    expect(released!.actions).toEqual([{ type: 'end' }])
    expect(released!.state).toMatchObject({ status: 'ended', currentNodeId: null })
  })

  it('ignores messages once the run has ended', () => {
    const steps = play(demo, [[button('cleaning'), ctx(1)], [listReply('saturday'), ctx(2)], [text('a@b.co'), ctx(3)], [text('one more thing'), ctx(4)]])
    expect(steps.at(-1)!.actions).toEqual([])
    expect(steps.at(-1)!.state).toBe(steps.at(-2)!.state)
  })
})

describe('ask answers', () => {
  const flowWith = (input: unknown, extra: Record<string, unknown> = {}) =>
    parseFlow({
      name: 'ask', trigger: { type: 'first_message' }, startNodeId: 'q',
      nodes: [
        { type: 'ask', id: 'q', text: 'Question?', answerKey: 'a', input, invalidText: 'Try again', next: 'done', ...extra } as FlowDocumentInput['nodes'][number],
        { type: 'end', id: 'done', text: 'Got {{answers.a}}' },
      ],
    })

  it('matches a button by id, or by its title typed in any case and accents', () => {
    const flow = flowWith({ kind: 'buttons', options: [{ id: 'yes', title: 'Sí, claro' }, { id: 'no', title: 'No' }] })
    const waiting = startFlow(flow, ctx()).state
    expect(advance(flow, waiting, button('yes', 'Sí, claro'), ctx()).state.answers).toEqual({ a: 'yes' })
    expect(advance(flow, waiting, text('  SI,  CLARO '), ctx()).state.answers).toEqual({ a: 'yes' })
    expect(advance(flow, waiting, text('no'), ctx()).actions).toContainEqual({ type: 'send_text', text: 'Got No' })
    expect(advance(flow, waiting, button('maybe'), ctx()).state.attempts).toBe(1)
  })

  it('matches a list row by id or title', () => {
    const input = { kind: 'list' as const, buttonText: 'Choose', options: [{ id: 'sp', title: 'São Paulo' }, { id: 'rj', title: 'Rio de Janeiro' }] }
    expect(parseAnswer({ kind: 'list', buttonText: 'Choose', options: input.options }, { listId: 'rj' })).toBe('rj')
    const flow = flowWith(input)
    const waiting = startFlow(flow, ctx()).state
    expect(advance(flow, waiting, listReply('sp'), ctx()).state.answers).toEqual({ a: 'sp' })
    expect(advance(flow, waiting, text('sao paulo'), ctx()).state.answers).toEqual({ a: 'sp' })
  })

  it.each([
    ['email', ' Ana@Clinic.COM.br ', 'ana@clinic.com.br'],
    ['email', 'ana@clinic', undefined],
    ['email', 'ana clinic.com', undefined],
    ['phone', '+55 (11) 98765-4321', '+55 (11) 98765-4321'],
    ['phone', '12345', undefined],
    ['phone', '1234567890123456', undefined],
    ['phone', 'call me', undefined],
    ['number', '42', 42],
    ['number', '3,5', 3.5],
    ['number', '1.000.000', undefined],
    ['number', 'forty', undefined],
    ['any', '  hello  ', 'hello'],
    ['any', '   ', undefined],
  ] as const)('validates %s: %j -> %j', (validate, body, expected) => {
    expect(parseAnswer({ kind: 'text', validate }, { text: body })).toBe(expected)
  })

  it('applies min and max to the value of numbers and to the length of other text', () => {
    expect(parseAnswer({ kind: 'text', validate: 'number', min: 18, max: 99 }, { text: '17' })).toBeUndefined()
    expect(parseAnswer({ kind: 'text', validate: 'number', min: 18, max: 99 }, { text: '18' })).toBe(18)
    expect(parseAnswer({ kind: 'text', min: 3 }, { text: 'ab' })).toBeUndefined()
    expect(parseAnswer({ kind: 'text', max: 3 }, { text: 'abcd' })).toBeUndefined()
  })

  it('treats a media message as an invalid answer', () => {
    const flow = flowWith({ kind: 'text' })
    const result = advance(flow, startFlow(flow, ctx()).state, { type: 'message', messageId: 'img', kind: 'image' }, ctx())
    expect(result.actions).toEqual([{ type: 'send_text', text: 'Try again' }])
    expect(result.state.attempts).toBe(1)
  })

  it('reprompts with the buttons again, then hands over after maxAttempts when no onMaxAttempts is set', () => {
    const flow = flowWith({ kind: 'buttons', options: [{ id: 'y', title: 'Yes' }] }, { maxAttempts: 2 })
    const [, first, second] = play(flow, [[text('what'), ctx()], [text('huh'), ctx()]])
    expect(first!.actions).toEqual([{ type: 'send_buttons', text: 'Try again', options: [{ id: 'y', title: 'Yes' }] }])
    expect(first!.state).toMatchObject({ status: 'waiting_answer', attempts: 1 })
    expect(second!.actions).toEqual([{ type: 'handover', note: 'no valid answer to "q" after 2 attempts' }])
    expect(second!.state).toMatchObject({ status: 'handed_over', attempts: 0, currentNodeId: null })
  })

  it('goes to onMaxAttempts after the last invalid answer', () => {
    const [, , , gaveUp] = play(demo, [[text('a'), ctx()], [text('b'), ctx()], [text('c'), ctx()]])
    expect(types(gaveUp!.actions)).toEqual(['cancel_timer', 'send_text', 'handover'])
    expect(gaveUp!.actions[2]).toEqual({ type: 'handover', note: 'Lead asked for a person (service: not chosen)' })
  })
})

describe('timers', () => {
  it('sends the reminder, then takes the timeout path', () => {
    const [started, reminded, timedOut] = play(demo, [[timer(iso(3600)), ctx(3600)], [timer(iso(7200)), ctx(7200)]])
    expect(started!.state.timerKind).toBe('ask_reminder')
    expect(reminded!.actions).toEqual([
      { type: 'send_text', text: 'Still there? Just tap one of the options above and we will find you a slot 🙂' },
      { type: 'schedule_timer', dueAt: iso(7200), kind: 'ask_timeout' },
    ])
    expect(reminded!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'ask_service', timerDueAt: iso(7200), timerKind: 'ask_timeout' })
    expect(timedOut!.actions).toEqual([
      { type: 'send_text', text: "No worries, Maria. Whenever you're ready, just send us a message here. 😊" },
      { type: 'end' },
    ])
    expect(timedOut!.state).not.toHaveProperty('timerDueAt')
  })

  it('still accepts an answer after the reminder', () => {
    const [, reminded, answered] = play(demo, [[timer(iso(3600)), ctx(3600)], [button('cleaning'), ctx(3700)]])
    expect(reminded!.state.timerKind).toBe('ask_timeout')
    expect(types(answered!.actions)).toEqual(['cancel_timer', 'send_list'])
  })

  it('ignores a timer that is no longer pending', () => {
    const [, answered] = play(demo, [[button('cleaning'), ctx(10)]])
    const stale = advance(demo, answered!.state, timer(iso(3600)), ctx(3600))
    expect(stale).toEqual({ state: answered!.state, actions: [] })
  })

  it('ignores a timer whose due time or kind does not match the pending one', () => {
    const waiting = startFlow(demo, ctx()).state
    expect(advance(demo, waiting, timer(iso(3599)), ctx(3600)).actions).toEqual([])
    expect(advance(demo, waiting, { type: 'timer', dueAt: iso(3600), kind: 'wait' }, ctx(3600)).actions).toEqual([])
    // Same instant written differently is the same timer.
    expect(advance(demo, waiting, timer('2025-03-10T13:00:00Z'), ctx(3600)).actions).not.toEqual([])
  })

  it('restarts the reminder clock when the lead answers badly', () => {
    const [, reprompted] = play(demo, [[text('hm'), ctx(1000)]])
    expect(reprompted!.actions.at(-1)).toEqual({ type: 'schedule_timer', dueAt: iso(4600), kind: 'ask_reminder' })
    expect(advance(demo, reprompted!.state, timer(iso(3600)), ctx(3600)).actions).toEqual([])
  })

  it('waits on a wait node, ignoring messages, and resumes when its timer fires', () => {
    const flow = parseFlow({
      name: 'wait', trigger: { type: 'first_message' }, startNodeId: 'hello',
      nodes: [
        { type: 'send_message', id: 'hello', text: 'One moment…', next: 'pause' },
        { type: 'wait', id: 'pause', seconds: 90, next: 'bye' },
        { type: 'end', id: 'bye', text: 'Done' },
      ],
    })
    const [started, ignored, resumed] = play(flow, [[text('hello?'), ctx(10)], [timer(iso(90)), ctx(90)]])
    expect(started!.actions).toEqual([{ type: 'send_text', text: 'One moment…' }, { type: 'schedule_timer', dueAt: iso(90), kind: 'wait' }])
    expect(started!.state).toMatchObject({ status: 'waiting_timer', currentNodeId: 'pause' })
    expect(ignored!.actions).toEqual([])
    expect(resumed!.actions).toEqual([{ type: 'send_text', text: 'Done' }, { type: 'end' }])
  })
})

describe('handover and release', () => {
  const flow = parseFlow({
    name: 'handover', trigger: { type: 'first_message' }, startNodeId: 'human',
    nodes: [
      { type: 'handover', id: 'human', text: 'A person will reply', note: 'new lead {{lead.name}}', next: 'after' },
      { type: 'ask', id: 'after', text: 'Anything else?', answerKey: 'more', input: { kind: 'text' }, invalidText: 'Anything else?', next: 'bye' },
      { type: 'end', id: 'bye' },
    ],
  })

  it('pauses the bot until released, then resumes at the node after the handover', () => {
    const [handedOver, ignoredMessage, ignoredTimer, released] = play(flow, [[text('hi'), ctx(1)], [timer(iso(5)), ctx(5)], [release, ctx(9)]])
    expect(handedOver!.actions).toEqual([{ type: 'send_text', text: 'A person will reply' }, { type: 'handover', note: 'new lead Maria' }])
    expect(handedOver!.state).toMatchObject({ status: 'handed_over', currentNodeId: 'after' })
    expect(ignoredMessage!.actions).toEqual([])
    expect(ignoredTimer!.actions).toEqual([])
    expect(released!.actions).toEqual([{ type: 'send_text', text: 'Anything else?' }])
    expect(released!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'after' })
  })

  it('ignores a release when nothing is handed over', () => {
    const waiting = advance(flow, startFlow(flow, ctx()).state, release, ctx()).state
    expect(advance(flow, waiting, release, ctx()).actions).toEqual([])
  })
})

describe('interpolation and lead updates', () => {
  const flow = parseFlow({
    name: 'interp', trigger: { type: 'first_message' }, startNodeId: 'q',
    nodes: [
      { type: 'ask', id: 'q', text: 'Hi {{lead.name|there}} from {{lead.company|nowhere}}, {{ lead.clinic_branch }}?', answerKey: 'city', input: { kind: 'text' }, invalidText: 'City?', next: 'save' },
      { type: 'set_field', id: 'save', field: 'city', value: '{{answers.city}}', next: 'unset' },
      { type: 'set_field', id: 'unset', field: 'nickname', value: '{{lead.nickname}}', next: 'check' },
      { type: 'branch', id: 'check', rules: [{ when: { lead: 'city', equals: 'CURITIBA' }, next: 'local' }], otherwise: 'far' },
      { type: 'send_message', id: 'local', text: 'Neighbours in {{lead.city}}! You said "{{answers.city}}".', next: 'bye' },
      { type: 'send_message', id: 'far', text: 'Far away', next: 'bye' },
      { type: 'end', id: 'bye' },
    ],
  })

  it('fills lead and answer placeholders, with fallbacks for missing values', () => {
    expect(startFlow(flow, ctx(0, { name: null, fields: { clinic_branch: 'Centro' } })).actions[0]).toEqual({ type: 'send_text', text: 'Hi there from nowhere, Centro?' })
    expect(startFlow(flow, ctx(0, { company: 'Acme' })).actions[0]).toEqual({ type: 'send_text', text: 'Hi Maria from Acme, ?' })
    expect(startFlow(flow, ctx(0, { fields: { company: 'Fields Co' } })).actions[0]).toMatchObject({ text: 'Hi Maria from Fields Co, ?' })
  })

  it('lets later nodes see fields set earlier in the same run and skips empty values', () => {
    const answered = advance(flow, startFlow(flow, ctx()).state, text('Curitiba'), ctx())
    expect(answered.actions).toEqual([
      { type: 'set_lead_field', field: 'city', value: 'Curitiba' },
      { type: 'send_text', text: 'Neighbours in Curitiba! You said "Curitiba".' },
      { type: 'end' },
    ])
  })
})

describe('branch conditions', () => {
  const flowWhen = (when: unknown) =>
    parseFlow({
      name: 'branch', trigger: { type: 'first_message' }, startNodeId: 'q',
      nodes: [
        { type: 'ask', id: 'q', text: 'Budget?', answerKey: 'budget', input: { kind: 'text', validate: 'number' }, invalidText: 'A number please', next: 'b' },
        { type: 'branch', id: 'b', rules: [{ when, next: 'yes' }], otherwise: 'no' } as FlowDocumentInput['nodes'][number],
        { type: 'end', id: 'yes', text: 'yes' },
        { type: 'end', id: 'no', text: 'no' },
      ],
    })
  const decide = (when: unknown, answer: string, leadOverrides: Partial<LeadSnapshot> = {}) => {
    const flow = flowWhen(when)
    return texts(advance(flow, startFlow(flow, ctx()).state, text(answer), ctx(0, leadOverrides)).actions)[0]
  }

  it.each([
    [{ answer: 'budget', equals: 5000 }, '5000', {}, 'yes'],
    [{ answer: 'budget', equals: '5000' }, '4999', {}, 'no'],
    [{ answer: 'budget', in: [100, 200] }, '200', {}, 'yes'],
    [{ answer: 'budget', matches: '^\\d{4,}$' }, '12345', {}, 'yes'],
    [{ answer: 'budget', matches: '^\\d{4,}$' }, '12', {}, 'no'],
    [{ answer: 'budget', exists: true }, '1', {}, 'yes'],
    [{ lead: 'email', exists: true }, '1', {}, 'no'],
    [{ lead: 'email', exists: true }, '1', { email: 'a@b.co' }, 'yes'],
    [{ lead: 'status', equals: 'Qualified' }, '1', { status: 'qualified' }, 'yes'],
    [{ tag: 'VIP' }, '1', { tags: ['vip'] }, 'yes'],
    [{ all: [{ answer: 'budget', exists: true }, { tag: 'vip' }] }, '1', {}, 'no'],
    [{ any: [{ tag: 'vip' }, { answer: 'budget', equals: 1 }] }, '1', {}, 'yes'],
    [{ not: { answer: 'budget', equals: 1 } }, '1', {}, 'no'],
  ] as const)('%j with answer %j and lead %j -> %s', (when, answer, leadOverrides, expected) => {
    expect(decide(when, answer, leadOverrides)).toBe(expected)
  })
})

describe('robustness', () => {
  it('is deterministic and never mutates its inputs', () => {
    const events: [FlowEvent, FlowContext][] = [
      [text('nope'), ctx(10)], [timer(iso(3610)), ctx(3610)], [button('implants'), ctx(3700)], [listReply('saturday'), ctx(3800)], [text('x@y.com'), ctx(3900)],
    ]
    const frozen = structuredClone(events)
    const first = play(demo, events)
    const second = play(demo, events)
    expect(second).toEqual(first)
    expect(events).toEqual(frozen)
    for (const step of first) expect(FlowState.parse(JSON.parse(JSON.stringify(step.state)))).toEqual(step.state)

    const state = Object.freeze({ ...first[1]!.state, answers: Object.freeze({ ...first[1]!.state.answers }) })
    expect(() => advance(demo, state, button('cleaning'), ctx(20))).not.toThrow()
  })

  it('hands over with a note when the state points at a node the flow no longer has', () => {
    const state: FlowState = { flowVersion: 1, currentNodeId: 'deleted_node', status: 'waiting_answer', attempts: 0, answers: {}, timerDueAt: iso(60), timerKind: 'ask_reminder' }
    expect(advance(demo, state, text('hi'), ctx())).toEqual({
      state: { flowVersion: 1, currentNodeId: null, status: 'handed_over', attempts: 0, answers: {} },
      actions: [{ type: 'cancel_timer' }, { type: 'handover', note: 'flow error: state is at "deleted_node", which is not in the flow; expected the ask node' }],
    })
  })

  it('stops at the step cap when handed an unchecked flow with a tight loop', () => {
    const looping = {
      name: 'loop', trigger: { type: 'first_message' }, startNodeId: 'a',
      nodes: [{ type: 'tag', id: 'a', add: ['x'], next: 'a' }],
    } as FlowDocument
    const result = startFlow(looping, ctx())
    expect(result.actions.at(-1)).toEqual({ type: 'handover', note: `flow error: flow ran ${MAX_STEPS_PER_EVENT} steps without waiting; last node "a"` })
    expect(result.actions.filter((a) => a.type === 'add_tags')).toHaveLength(1)
    expect(result.state.status).toBe('handed_over')
  })
})

describe('matchesTrigger', () => {
  const keywordFlow = { trigger: { type: 'keyword' as const, keywords: ['promoção', 'implant offer'] } }

  it('matches keywords on the whole message or its first word, ignoring case, accents and punctuation', () => {
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: 'PROMOCAO!' })).toBe(true)
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: 'Promoção, quero saber' })).toBe(true)
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: ' implant   OFFER ' })).toBe(true)
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: 'quero a promoção' })).toBe(false)
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: 'implant' })).toBe(false)
    expect(matchesTrigger(keywordFlow, { isFirstMessage: false, text: null })).toBe(false)
  })

  it('matches first messages and click-to-WhatsApp referrals', () => {
    expect(matchesTrigger(demo, { isFirstMessage: true })).toBe(true)
    expect(matchesTrigger(demo, { isFirstMessage: false, text: 'hi' })).toBe(false)
    const anyAd = { trigger: { type: 'referral' as const } }
    const someAds = { trigger: { type: 'referral' as const, sourceIds: ['ad-1'] } }
    expect(matchesTrigger(anyAd, { isFirstMessage: true, referralSourceId: 'ad-9' })).toBe(true)
    expect(matchesTrigger(anyAd, { isFirstMessage: true })).toBe(false)
    expect(matchesTrigger(someAds, { isFirstMessage: false, referralSourceId: 'ad-1' })).toBe(true)
    expect(matchesTrigger(someAds, { isFirstMessage: false, referralSourceId: 'ad-2' })).toBe(false)
  })
})

describe('isOptOut', () => {
  it.each(['STOP', 'stop', ' Stop! ', 'Unsubscribe', 'opt-out', 'Cancelar', 'PARAR', 'sair.', 'Baja', 'darme de baja', 'DÉTENER'])('treats %j as an opt-out', (body) => {
    expect(isOptOut(body)).toBe(true)
  })

  it.each(['stop please call me tomorrow', 'não quero parar o tratamento', 'hello', '', 'stopped', null])('does not treat %j as an opt-out', (body) => {
    expect(isOptOut(body)).toBe(false)
  })
})

describe('the experiment node', () => {
  const flow = parseFlow({
    name: 'greeting test', trigger: { type: 'first_message' }, startNodeId: 'which',
    nodes: [
      { type: 'experiment', id: 'which', experimentKey: 'greeting-tone', variations: [{ variationKey: 'warm', next: 'warm' }, { variationKey: 'brief', next: 'brief' }], otherwise: 'plain' },
      { type: 'end', id: 'warm', text: 'Hi Maria! So glad you wrote 😊' },
      { type: 'end', id: 'brief', text: 'Hi.' },
      { type: 'end', id: 'plain', text: 'Hello.' },
    ],
  })
  const withVariation = (variation: string | null): FlowContext => ({ ...ctx(), experiments: { 'greeting-tone': variation } })

  it.each([['warm', 'Hi Maria! So glad you wrote 😊'], ['brief', 'Hi.']])('branches to the %s variation and reports the exposure', (variation, said) => {
    const step = startFlow(flow, withVariation(variation))
    expect(step.actions).toEqual([{ type: 'experiment_exposure', experimentKey: 'greeting-tone', variationKey: variation }, { type: 'send_text', text: said }, { type: 'end' }])
  })

  it('goes to otherwise, with no exposure, for a lead outside the experiment', () => {
    for (const context of [withVariation(null), ctx()]) expect(startFlow(flow, context).actions).toEqual([{ type: 'send_text', text: 'Hello.' }, { type: 'end' }])
  })

  it('goes to otherwise, not exposed, for a variation the node does not list', () => {
    expect(types(startFlow(flow, withVariation('new-arm')).actions)).toEqual(['send_text', 'end'])
    expect(texts(startFlow(flow, withVariation('new-arm')).actions)).toEqual(['Hello.'])
  })

  it('refuses an experiment node pointing at a node that does not exist', () => {
    const bad = { ...flow, nodes: flow.nodes.map((n) => (n.type === 'experiment' ? { ...n, otherwise: 'nowhere' } : n)) }
    expect(FlowDocument.safeParse(bad).success).toBe(false)
  })
})
