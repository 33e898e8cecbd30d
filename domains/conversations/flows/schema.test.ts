import { describe, expect, it } from 'vitest'
import { demoQualificationFlow } from './demo-qualification-flow.js'
import { FlowDocument, type FlowDocumentInput, FlowState } from './schema.js'

type NodeInput = FlowDocumentInput['nodes'][number]

const flowOf = (nodes: NodeInput[], startNodeId = nodes[0]?.id ?? 'start'): FlowDocumentInput => ({
  name: 'test flow',
  trigger: { type: 'first_message' },
  startNodeId,
  nodes,
})

const ask = (overrides: Partial<Extract<NodeInput, { type: 'ask' }>> = {}): NodeInput => ({
  type: 'ask',
  id: 'q',
  text: 'Pick one',
  answerKey: 'choice',
  input: { kind: 'buttons', options: [{ id: 'a', title: 'A' }, { id: 'b', title: 'B' }] },
  invalidText: 'Please tap a button',
  next: 'done',
  ...overrides,
})
const done: NodeInput = { type: 'end', id: 'done', text: 'Bye' }

/** The messages of every issue, for assertions that read like the error a tenant would see. */
const issues = (doc: unknown) => {
  const result = FlowDocument.safeParse(doc)
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

describe('FlowDocument', () => {
  it('accepts the demo dental clinic flow and fills in defaults', () => {
    const flow = FlowDocument.parse(demoQualificationFlow)
    const askTime = flow.nodes.find((n) => n.id === 'ask_time')
    expect(askTime).toMatchObject({ type: 'ask', maxAttempts: 3 })
  })

  it('accepts a minimal flow', () => {
    expect(issues(flowOf([ask(), done]))).toEqual([])
  })

  it('rejects a next that points nowhere', () => {
    expect(issues(flowOf([ask({ next: 'nowhere' }), done]))).toContain('nodes.0.next: no node "nowhere"')
  })

  it('rejects dangling otherwise, onMaxAttempts and thenNodeId too', () => {
    const found = issues(
      flowOf([
        ask({ onMaxAttempts: 'x1', timeout: { afterSeconds: 60, thenNodeId: 'x2' } }),
        { type: 'branch', id: 'b', rules: [{ when: { answer: 'choice', exists: true }, next: 'done' }], otherwise: 'x3' },
        done,
      ]),
    )
    expect(found).toEqual(expect.arrayContaining([
      'nodes.0.onMaxAttempts: no node "x1"',
      'nodes.0.timeout.thenNodeId: no node "x2"',
      'nodes.1.otherwise: no node "x3"',
    ]))
  })

  it('rejects a startNodeId that does not exist', () => {
    expect(issues(flowOf([ask(), done], 'missing'))).toContain('startNodeId: no node "missing"')
  })

  it('rejects duplicate node ids', () => {
    expect(issues(flowOf([ask(), done, { type: 'end', id: 'done' }]))).toContain('nodes.2.id: duplicate node id "done"')
  })

  it('rejects nodes nobody can reach', () => {
    expect(issues(flowOf([ask(), done, { type: 'end', id: 'orphan' }]))).toContain('nodes.2.id: node "orphan" is unreachable from "q"')
  })

  it('rejects a loop with no ask or wait in it', () => {
    const found = issues(
      flowOf([
        { type: 'send_message', id: 'a', text: 'hi', next: 'b' },
        { type: 'tag', id: 'b', add: ['x'], next: 'c' },
        { type: 'branch', id: 'c', rules: [{ when: { lead: 'email', exists: true }, next: 'done' }], otherwise: 'a' },
        done,
      ]),
    )
    expect(found).toEqual([expect.stringContaining('loop without an ask or wait: a -> b -> c -> a')])
  })

  it('rejects a node that points at itself', () => {
    expect(issues(flowOf([{ type: 'qualify', id: 'a', status: 'contacted', next: 'a' }]))).toEqual([
      expect.stringContaining('loop without an ask or wait: a -> a'),
    ])
  })

  it('accepts loops that pass through an ask or a wait', () => {
    const flow = flowOf([
      ask({ next: 'check' }),
      { type: 'branch', id: 'check', rules: [{ when: { answer: 'choice', equals: 'a' }, next: 'done' }], otherwise: 'pause' },
      { type: 'wait', id: 'pause', seconds: 60, next: 'q' },
      done,
    ])
    expect(issues(flow)).toEqual([])
  })

  it('rejects more than three buttons', () => {
    const options = ['a', 'b', 'c', 'd'].map((id) => ({ id, title: id.toUpperCase() }))
    expect(issues(flowOf([ask({ input: { kind: 'buttons', options } }), done]))).toEqual([
      expect.stringMatching(/^nodes\.0\.input\.options: Too big/),
    ])
  })

  it('rejects a button title longer than WhatsApp allows (20 characters)', () => {
    const input = { kind: 'buttons' as const, options: [{ id: 'a', title: 'x'.repeat(21) }] }
    expect(issues(flowOf([ask({ input }), done]))).toEqual([expect.stringMatching(/^nodes\.0\.input\.options\.0\.title: Too big/)])
    expect(issues(flowOf([ask({ input: { kind: 'buttons', options: [{ id: 'a', title: 'x'.repeat(20) }] } }), done]))).toEqual([])
  })

  it('rejects more than ten list rows and ambiguous option titles', () => {
    const rows = Array.from({ length: 11 }, (_, i) => ({ id: `r${i}`, title: `Row ${i}` }))
    expect(issues(flowOf([ask({ input: { kind: 'list', buttonText: 'Open', options: rows } }), done]))).toEqual([
      expect.stringMatching(/^nodes\.0\.input\.options: Too big/),
    ])
    const twins = [{ id: 'a', title: 'Sí' }, { id: 'b', title: 'si' }]
    expect(issues(flowOf([ask({ input: { kind: 'buttons', options: twins } }), done]))).toEqual([
      'nodes.0.input.options.1.title: duplicate option title "si"',
    ])
  })

  it('rejects placeholders it cannot resolve', () => {
    const found = issues(
      flowOf([
        { type: 'send_message', id: 'hi', text: 'Hi {{name}}, you said {{answers.colour}}', next: 'q' },
        ask(),
        done,
      ]),
    )
    expect(found).toEqual([
      'nodes.0.text: unknown placeholder {{name}}: use {{lead.<field>}} or {{answers.<key>}}',
      'nodes.0.text: no ask node has answerKey "colour"',
    ])
  })

  it('rejects branch conditions on answers no ask collects', () => {
    const branch: NodeInput = { type: 'branch', id: 'b', rules: [{ when: { any: [{ answer: 'typo', exists: true }] }, next: 'done' }], otherwise: 'done' }
    expect(issues(flowOf([ask({ next: 'b' }), branch, done]))).toEqual(['nodes.1.rules.0.when: no ask node has answerKey "typo"'])
  })

  it('rejects a condition with no operator or two', () => {
    const branch = (when: unknown) => ({ type: 'branch', id: 'b', rules: [{ when, next: 'done' }], otherwise: 'done' })
    expect(issues(flowOf([ask({ next: 'b' }), branch({ answer: 'choice' }) as NodeInput, done]))).not.toEqual([])
    expect(issues(flowOf([ask({ next: 'b' }), branch({ answer: 'choice', equals: 'a', exists: true }) as NodeInput, done]))).not.toEqual([])
  })

  it('rejects regular expressions prone to catastrophic backtracking', () => {
    const branch = (matches: string): NodeInput => ({ type: 'branch', id: 'b', rules: [{ when: { answer: 'choice', matches }, next: 'done' }], otherwise: 'done' })
    expect(issues(flowOf([ask({ next: 'b' }), branch('(a+)+$'), done]))).not.toEqual([])
    expect(issues(flowOf([ask({ next: 'b' }), branch('(\\w)\\1'), done]))).not.toEqual([])
    expect(issues(flowOf([ask({ next: 'b' }), branch('[unclosed'), done]))).not.toEqual([])
    expect(issues(flowOf([ask({ next: 'b' }), branch('^implant|braces?$'), done]))).toEqual([])
  })

  it('rejects timers beyond the 24-hour customer service window', () => {
    expect(issues(flowOf([ask({ timeout: { afterSeconds: 13 * 3600, reminderText: 'Hello?', thenNodeId: 'done' } }), done]))).toEqual([
      'nodes.0.timeout.afterSeconds: reminder and timeout must both fall within the 24-hour customer service window',
    ])
    expect(issues(flowOf([{ type: 'wait', id: 'w', seconds: 86_401, next: 'done' }, done]))).not.toEqual([])
  })

  it('rejects a timeout that neither reminds nor moves on', () => {
    expect(issues(flowOf([ask({ timeout: { afterSeconds: 60 } }), done]))).toEqual(['nodes.0.timeout: needs reminderText, thenNodeId or both'])
  })

  it('rejects unknown keys, so a typo in a hand-written document is caught', () => {
    expect(issues(flowOf([{ type: 'end', id: 'done', txt: 'Bye' } as unknown as NodeInput]))).not.toEqual([])
  })
})

describe('FlowState', () => {
  it('accepts the JSON shape the interpreter persists', () => {
    const state = {
      flowId: 'f1', flowVersion: 2, currentNodeId: 'q', status: 'waiting_answer', attempts: 1,
      answers: { service: 'implants', age: 30 }, timerDueAt: '2025-01-01T11:00:00.000Z', timerKind: 'ask_reminder',
    }
    expect(FlowState.parse(JSON.parse(JSON.stringify(state)))).toEqual(state)
  })
})
