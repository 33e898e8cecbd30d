import { describe, expect, it } from 'vitest'
import { lastWords } from './children.js'
import { judge, tally, type Observed, type Outcome, type PhaseReport } from './ledger.js'
import { parseChaosSettings } from './settings.js'
import { ItemFactory } from './traffic.js'

const out = (key: string, status: number | null, poison: string | null = null, channel: Outcome['channel'] = 'whatsapp'): Outcome =>
  ({ channel, key, poison, status, error: status === null ? 'ECONNREFUSED' : null })
const seen = (stored: string[], applied: Record<string, number>): Observed => ({ stored: new Set(stored), applied: new Map(Object.entries(applied)) })
const phase = (tallies: PhaseReport['tallies'], extra: Partial<PhaseReport> = {}): PhaseReport =>
  ({ fault: 'x', title: 't', tallies, processes: [], settled: true, settleMs: 0, neighboursMustPass: false, notes: [], ...extra })

describe('the chaos ledger', () => {
  it('counts an acknowledged item that was never applied as lost, and one applied twice as duplicated', () => {
    const t = tally('whatsapp', [out('a', 200), out('b', 200), out('c', 200)], seen(['a', 'b', 'c'], { a: 1, c: 2 }))
    expect(t).toMatchObject({ sent: 3, acknowledged: 3, stored: 3, processed: 2, lost: 1, duplicated: 1, lostKeys: ['b'] })
    expect(judge(phase([t]))).toEqual([
      'whatsapp: 1 acknowledged item(s) never applied (e.g. b)',
      'whatsapp: 1 item(s) applied more than once',
    ])
  })

  it('does not blame a refused or unanswered item for not being applied, and notes one applied without an answer', () => {
    const t = tally('forms', [out('a', 201, null, 'forms'), out('b', 503, null, 'forms'), out('c', null, null, 'forms')], seen(['a', 'c'], { a: 1, c: 1 }))
    expect(t).toMatchObject({ acknowledged: 1, refused: 1, noAnswer: 1, lost: 0, duplicated: 0, appliedUnacknowledged: 1 })
    expect(judge(phase([t]))).toEqual([])
  })

  it('fails good neighbours of poisoned items that were refused, and poisoned items answered 5xx, only where neighbours must pass', () => {
    const outcomes = [out('g1', 200), out('g2', 500), out('p1', 400, 'nul'), out('p2', 500, 'lone-surrogate')]
    const t = tally('whatsapp', outcomes, seen(['g1'], { g1: 1 }))
    expect(t.poison).toEqual({ sent: 2, statuses: { 400: 1, 500: 1 } })
    expect(judge(phase([t], { neighboursMustPass: true }))).toEqual([
      'whatsapp: 1 good item(s) sent beside poisoned ones were not acknowledged',
      'whatsapp: 1 poisoned item(s) answered 5xx (a sender retries those forever)',
    ])
    expect(judge(phase([t]))).toEqual(['whatsapp: 1 poisoned item(s) answered 5xx (a sender retries those forever)'])
  })

  it('fails a phase where a process crashed on its own, or where nothing was acknowledged at all', () => {
    const t = tally('forms', [out('a', 503, null, 'forms')], seen([], {}))
    const crashed = phase([t], { settled: false, processes: [{ name: 'worker', restarts: 1, crashes: [{ code: 1, signal: null, at: 4200, lastWords: '' }] }] })
    expect(judge(crashed)).toEqual(['forms: nothing was acknowledged, so nothing was proven', 'worker crashed at +4.2 s (exit code 1, signal null)'])
  })

  it('says an unsettled phase lost its items within the recovery timeout', () => {
    const t = tally('whatsapp', [out('a', 200)], seen(['a'], {}))
    expect(judge(phase([t], { settled: false }))).toEqual(['whatsapp: 1 acknowledged item(s) never applied within the recovery timeout (e.g. a)'])
  })
})

describe('the chaos items', () => {
  const items = () => new ItemFactory('r1', 'c', [{ id: 't', phoneNumberId: '1', wabaId: '2', displayNumber: '3', formPublicKey: 'fk' }], 'secret')

  it('gives every item its own key, and poisons one in every N in rotation', () => {
    const f = items()
    const made = Array.from({ length: 12 }, () => f.next('whatsapp', true, 3))
    expect(new Set(made.map((r) => r.key)).size).toBe(12)
    expect(made.map((r) => r.poison)).toEqual([null, null, 'lone-surrogate', null, null, 'malformed-json', null, null, 'not-an-object', null, null, 'nul'])
    expect(made[2]!.body).toContain('\\ud800')
    expect(made[11]!.body).toContain('\\u0000')
    expect(() => JSON.parse(made[5]!.body)).toThrow()
  })

  it('keeps forms good when poisoning is off, with a distinct email per item', () => {
    const f = items()
    const made = Array.from({ length: 5 }, () => f.next('forms', false, 2))
    expect(made.every((r) => r.poison === null)).toBe(true)
    expect(made.map((r) => JSON.parse(r.body).email)).toEqual([1, 2, 3, 4, 5].map((n) => `pc-${n}.r1@chaos.example`))
  })
})

describe('the chaos settings and reports', () => {
  it('reads CHAOS_* knobs, refusing a bad one by name', () => {
    expect(parseChaosSettings({ CHAOS_RECOVERY_TIMEOUT_MS: '5000', CHAOS_FAULTS: 'b', PATH: '/bin' })).toMatchObject({ CHAOS_RECOVERY_TIMEOUT_MS: 5000, CHAOS_FAULTS: 'b', CHAOS_WHATSAPP_RATE: 40 })
    expect(() => parseChaosSettings({ CHAOS_FAULTS: 'a,d' })).toThrow(/CHAOS_FAULTS/)
    expect(() => parseChaosSettings({ CHAOS_WHATSAPP_RATE: '100000' })).toThrow(/CHAOS_WHATSAPP_RATE/)
  })

  it("keeps a crashed process's last words without its info chatter", () => {
    const output = '{"level":30,"msg":"job done"}\n{"level":50,"msg":"boom"}\nTypeError: x\n{"level":20,"msg":"debug"}\n'
    expect(lastWords(output)).toBe('{"level":50,"msg":"boom"}\nTypeError: x')
  })
})
