import { describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import { useTestDatabase } from '../../test/db.js'
import { testConfig } from '../../test/apps.js'
import { registerPhoneNumber } from '../whatsapp/numbers.js'
import { onboardingFunnel } from './funnel.js'
import { runInactivityBatch, saveStep, sessionById, startSession, type OnboardingDeps } from './service.js'

const secrets = SecretBox.fromConfig(testConfig().SECRETS_KEY)
const BUSINESS = { businessName: 'Clinic', country: 'BR', timezone: 'America/Sao_Paulo', industry: 'dental', contactEmail: 'o@clinic.example', contactPhone: '+5511999990000' }

describe('onboarding: steps completed elsewhere, and the funnel of three journeys', () => {
  const db = useTestDatabase()
  // The inactivity batch at a later time, for one session only (the others of the file are not due then anyway).
  const idleAt = (sessionId: string, inMs: number) => runInactivityBatch(deps(), { now: new Date(Date.now() + inMs), only: [sessionId] })
  const deps = (): OnboardingDeps => ({ sql: db.current.sql, secrets, graph: null, settings: { tokenTtlMs: 86_400_000, nudgeAfterMs: 1_800_000, abandonAfterMs: 7_200_000, publicUrl: 'https://onboard.example' } })

  it('advances whatsapp_connect when the number is registered through the API, in the same transaction', async () => {
    const { session, link } = await startSession(deps(), { origin: 'signup', createdBy: 'test' })
    const info = await saveStep(deps(), link.token, 'business_info', BUSINESS)
    const tenantId = info.session.tenantId!
    await registerPhoneNumber(db.current.sql, secrets, tenantId, 'api_key:test', { phoneNumberId: '301000000000001', wabaId: '401000000000001', displayPhoneNumber: '+55 11 0000-0001', accessToken: 'EAA-api-registered-token-000000', app: { mode: 'platform' } })
    const view = await sessionById(deps(), session.sessionId)
    expect(view!.currentStep).toBe('bot_setup')
    expect(view!.steps[1]!.status).toBe('completed')
    const [activity] = await db.current.owner`select kind, detail from onboarding.step_activities where session_id = ${session.sessionId} and step = 'whatsapp_connect'`
    expect(activity).toEqual({ kind: 'completed', detail: { by: 'number_registered' } })
  })

  it('counts started, reached, completed, drop-off and abandonment for completed, in-progress and abandoned journeys', async () => {
    const from = new Date(Date.now() - 60_000)
    // Journey 1 (above): through whatsapp_connect, in progress at bot_setup.
    // Journey 2: abandoned at business_info after 2 h idle, never resumed.
    const abandoned = await startSession(deps(), { origin: 'setup_link', businessName: 'Gone', createdBy: 'operator' })
    expect(await idleAt(abandoned.session.sessionId, 7_300_000)).toMatchObject({ claimed: 1, abandoned: 1 })
    // Journey 3: abandoned after business_info, then resumed and still going.
    const resumed = await startSession(deps(), { origin: 'signup', createdBy: 'test' })
    await saveStep(deps(), resumed.link.token, 'business_info', { ...BUSINESS, businessName: 'Back Again' })
    expect(await idleAt(resumed.session.sessionId, 1_900_000)).toMatchObject({ claimed: 1, nudged: 1 })
    expect(await idleAt(resumed.session.sessionId, 7_300_000)).toMatchObject({ claimed: 1, abandoned: 1 })
    await saveStep(deps(), resumed.link.token, 'whatsapp_connect', { appMode: 'platform' })

    const funnel = await onboardingFunnel(db.current.sql, from, new Date(Date.now() + 1000))
    expect(funnel).toMatchObject({ started: 3, completed: 0, inProgress: 2, abandoned: 1 })
    // Two of three were ever abandoned; one of those came back.
    expect(funnel.abandonmentRate).toBeCloseTo(2 / 3, 4)
    expect(funnel.resumeRate).toBe(0.5)
    const byStep = Object.fromEntries(funnel.steps.map((s) => [s.step, s]))
    expect(byStep.business_info).toMatchObject({ reached: 3, completed: 2, dropOff: 1, abandonedHere: 1 })
    expect(byStep.whatsapp_connect).toMatchObject({ reached: 2, completed: 1, dropOff: 1, abandonedHere: 0 })
    expect(byStep.bot_setup).toMatchObject({ reached: 1, completed: 0 })
    expect(byStep.test_message).toMatchObject({ reached: 0, completed: 0, medianSeconds: null })
  })
})
