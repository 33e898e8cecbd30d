import { describe, expect, it } from 'vitest'
import { blockingStep, progressOf, STEP_NAMES, stepsOf, type SessionState } from './steps.js'

const state = (over: Partial<SessionState> = {}): SessionState => ({ stepsVersion: 1, fields: {}, completedSteps: {}, status: 'in_progress', ...over })

describe('onboarding steps and progress', () => {
  it('defines the five steps in order, each with its required fields', () => {
    expect(stepsOf(1).map((s) => s.name)).toEqual([...STEP_NAMES])
    for (const s of stepsOf(1)) for (const f of s.required) expect(Object.keys(s.fields.shape)).toContain(f)
    expect(() => stepsOf(99)).toThrow(/version 99/)
  })

  it('weights progress by required fields, not by step index', () => {
    expect(progressOf(state()).percent).toBe(0)
    // 6 + 4 + 2 + 1 + 1 = 14 units; business_info alone is 6 of them.
    expect(progressOf(state({ completedSteps: { business_info: 't' } })).percent).toBeCloseTo((6 / 14) * 100, 2)
    expect(progressOf(state({ fields: { business_info: { businessName: 'x', country: 'PT' } } })).percent).toBeCloseTo((2 / 14) * 100, 2)
    const all = Object.fromEntries(STEP_NAMES.map((n) => [n, 't']))
    expect(progressOf(state({ completedSteps: all }))).toMatchObject({ percent: 100, currentStep: null })
  })

  it('names the current step, the missing fields and the next thing to do', () => {
    const p = progressOf(state({ completedSteps: { business_info: 't' }, fields: { whatsapp_connect: { wabaId: '12345' } } }))
    expect(p.currentStep).toBe('whatsapp_connect')
    expect(p.steps[1]).toMatchObject({ status: 'current', missing: ['phoneNumberId', 'accessToken', 'appMode'] })
    expect(p.steps[2]!.status).toBe('blocked')
    expect(p.next).toMatch(/phone number ID/)
  })

  it('makes a step wait for the first incomplete one before it', () => {
    expect(blockingStep(state(), 'business_info')).toBeNull()
    expect(blockingStep(state(), 'go_live')).toBe('business_info')
    expect(blockingStep(state({ completedSteps: { business_info: 't', whatsapp_connect: 't' } }), 'go_live')).toBe('bot_setup')
  })

  it('validates fields per step: partial saves, and the limits WhatsApp puts on list rows', () => {
    const bot = stepsOf(1).find((s) => s.name === 'bot_setup')!
    expect(bot.fields.partial().safeParse({ services: ['Implants'] }).success).toBe(true)
    expect(bot.fields.partial().safeParse({ services: ['x'.repeat(25)] }).success).toBe(false)
    expect(bot.fields.partial().safeParse({ services: Array.from({ length: 10 }, (_, i) => `Service ${i}`) }).success).toBe(false)
    const info = stepsOf(1)[0]!
    expect(info.fields.partial().safeParse({ timezone: 'America/Sao_Paulo', country: 'BR', contactPhone: '+5511999990000' }).success).toBe(true)
    expect(info.fields.partial().safeParse({ timezone: 'Nowhere/Land' }).success).toBe(false)
  })
})
