import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { startWorker, type WorkerHandle } from '../../services/workers/worker.js'
import { buildTestWebhooks, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant } from '../../test/factories/tenants.js'
import { keyHash } from '../privacy/suppression.js'
import { registerPhoneNumber } from '../whatsapp/numbers.js'
import { onboardingSettingsOf, saveStep, sendWhatsAppNudge, startSession, type OnboardingDeps } from './service.js'

const PLATFORM_NUMBER = '100000000000902'
const TOKEN = 'EAAG-platform-number-token-0123456789'
const BUSINESS = { country: 'PT', timezone: 'Europe/Lisbon', industry: 'dental', contactEmail: 'owner@clinic.example' }

/**
 * The WhatsApp side of a nudge, end to end: sessions started over HTTP, the real worker (the inactivity batch, the
 * nudge job, the platform tenant's outbox and sender) and Meta's Graph API on the emulator, which knows the approved
 * template and refuses others as Meta does.
 */
describe('onboarding nudges on WhatsApp, from the platform number', () => {
  const db = useTestDatabase()
  let webhooks: App
  let wa: WhatsAppEmulator
  let worker: WorkerHandle
  let base: string
  let platformTenantId: string
  const secrets = SecretBox.fromConfig(testConfig().SECRETS_KEY)
  const settings = { ONBOARDING_NUDGE_AFTER: '1s', ONBOARDING_ABANDON_AFTER: '60s' }

  beforeAll(async () => {
    wa = await startWhatsAppEmulator({ accessTokens: [TOKEN], autoStatuses: false, templates: [{ name: 'onboarding_reminder', language: 'en', bodyParameters: 2 }] })
    const platform = await makeTenant(db.current.sql, { name: 'Platform' })
    platformTenantId = platform.id
    const number = await registerPhoneNumber(db.current.sql, secrets, platform.id, 'test', { phoneNumberId: PLATFORM_NUMBER, wabaId: '200000000000902', displayPhoneNumber: '+1 555 000 0902', accessToken: TOKEN, app: { mode: 'platform' } })
    await db.current.owner`
      insert into whatsapp.templates (tenant_id, business_account_id, name, language, category, status, components)
      select ${platform.id}, business_account_id, 'onboarding_reminder', 'en', 'UTILITY', 'APPROVED',
             '[{"type":"BODY","text":"Hi! The WhatsApp setup of {{1}} is waiting for you: {{2}}"}]'
        from whatsapp.phone_numbers where id = ${number.id}`
    webhooks = await buildTestWebhooks(db.current, settings)
    base = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    worker = await startWorker({
      config: testConfig({ ...settings, GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '100', PLATFORM_TENANT_ID: platform.id, PLATFORM_PHONE_NUMBER_ID: PLATFORM_NUMBER }),
      log: testLogger(), connectionString: db.current.runtimeUrl,
    })
  })
  afterAll(async () => {
    await worker?.stop()
    await webhooks?.close()
    await wa?.stop()
  })

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    return { status: res.status, json: (await res.json()) as any }
  }
  /** A session whose business_info is complete (so its tenant exists) with this contact phone. */
  const startWithPhone = async (businessName: string, contactPhone: string) => {
    const started = await call('POST', '/onboarding/sessions', {})
    const token = started.json.link.token as string
    const saved = await call('PATCH', `/onboarding/sessions/${token}/steps/business_info`, { fields: { ...BUSINESS, businessName, contactPhone } })
    expect(saved.status).toBe(200)
    return { id: started.json.session.sessionId as string, token, tenantId: saved.json.session.tenantId as string }
  }
  const outcomes = (sessionId: string) => db.current.owner<{ kind: string; detail: Record<string, unknown> }[]>`
    select kind, detail from onboarding.step_activities where session_id = ${sessionId} and kind like 'whatsapp_%' order by id`
  const waitForOutcome = async (sessionId: string) => {
    await expect.poll(async () => (await outcomes(sessionId)).length, { timeout: 10_000, interval: 50 }).toBe(1)
    return (await outcomes(sessionId))[0]!
  }

  it('sends the approved template with the business name and a working resume link, once, recorded as an activity and an event', async () => {
    const s = await startWithPhone('Clínica Sorriso', '+351910000101')
    const sent = await wa.waitForSent((m) => m.waId === '351910000101', 10_000)
    expect(sent.phoneNumberId).toBe(PLATFORM_NUMBER)
    const template = sent.body.template as { name: string; language: { code: string }; components: Array<{ type: string; parameters: Array<{ text: string }> }> }
    expect(template.name).toBe('onboarding_reminder')
    expect(template.language.code).toBe('en')
    const [name, link] = template.components[0]!.parameters.map((p) => p.text)
    expect(name).toBe('Clínica Sorriso')
    const nudgeToken = /#token=(obt_[A-Za-z0-9_-]{43})$/.exec(link!)![1]!
    expect(nudgeToken).not.toBe(s.token)
    // The link in the message resumes the same session, and the business's own link still works.
    expect((await call('GET', `/onboarding/sessions/${nudgeToken}`)).json.sessionId).toBe(s.id)
    expect((await call('GET', `/onboarding/sessions/${s.token}`)).status).toBe(200)
    const outcome = await waitForOutcome(s.id)
    expect(outcome.kind).toBe('whatsapp_nudged')
    const [message] = await db.current.owner<{ tenantId: string; waId: string; wamid: string | null }[]>`
      select tenant_id, wa_id, wamid from whatsapp.messages where id = ${outcome.detail.messageId as string}`
    expect(message).toMatchObject({ tenantId: platformTenantId, waId: '351910000101' })
    await expect.poll(async () => (await db.current.owner`select wamid from whatsapp.messages where id = ${outcome.detail.messageId as string}`)[0]!.wamid, { timeout: 5_000 }).toBe(sent.wamid)
    await expect.poll(async () => (await db.current.owner`
      select count(*)::int as n from analytics.events where tenant_id = ${s.tenantId} and name = 'onboarding.whatsapp_nudged'`)[0]!.n, { timeout: 5_000 }).toBe(1)

    // The job again (a retry after a crash): nothing more is queued or sent.
    const deps: OnboardingDeps = { sql: db.current.sql, secrets, graph: null, settings: onboardingSettingsOf(testConfig(settings)) }
    const again = await sendWhatsAppNudge(deps, { tenantId: platformTenantId, phoneNumberId: PLATFORM_NUMBER, template: 'onboarding_reminder', language: 'en' }, s.id, String(outcome.detail.nudge))
    expect(again.outcome).toBe('already')
    await sleep(300)
    expect(wa.sent.filter((m) => m.waId === '351910000101')).toHaveLength(1)
    expect(await outcomes(s.id)).toHaveLength(1)

    // A new link replaces both: the message's link stops working like the old one.
    const rotated = await call('POST', `/onboarding/sessions/${s.token}/link`)
    expect(rotated.status).toBe(201)
    expect((await call('GET', `/onboarding/sessions/${nudgeToken}`)).status).toBe(404)
    expect((await call('GET', `/onboarding/sessions/${rotated.json.token}`)).json.sessionId).toBe(s.id)
  })

  it('reminds the same contact at most once per 24 hours, however many sessions it has', async () => {
    const first = await startWithPhone('Padaria Central', '+351910000102')
    await wa.waitForSent((m) => m.waId === '351910000102', 10_000)
    expect((await waitForOutcome(first.id)).kind).toBe('whatsapp_nudged')
    const second = await startWithPhone('Padaria Central (2)', '+351910000102')
    expect(await waitForOutcome(second.id)).toMatchObject({ kind: 'whatsapp_nudge_skipped', detail: { reason: 'sent_within_window' } })
    expect(wa.sent.filter((m) => m.waId === '351910000102')).toHaveLength(1)
  })

  it('respects an opt-out and a suppression on the platform tenant, recording why nothing was sent', async () => {
    await db.current.owner`
      insert into marketing.leads (tenant_id, wa_id, phone_e164, phone_key, opted_out_at)
      values (${platformTenantId}, '351910000103', '+351910000103', '351910000103', now())`
    await db.current.owner`insert into privacy.suppressions (tenant_id, key_kind, key_hash) values (${platformTenantId}, 'wa_id', ${keyHash('wa_id', '351910000104')})`
    const optedOut = await startWithPhone('Loja A', '+351910000103')
    const suppressed = await startWithPhone('Loja B', '+351910000104')
    expect(await waitForOutcome(optedOut.id)).toMatchObject({ kind: 'whatsapp_nudge_skipped', detail: { reason: 'opted_out' } })
    expect(await waitForOutcome(suppressed.id)).toMatchObject({ kind: 'whatsapp_nudge_skipped', detail: { reason: 'suppressed' } })
    expect(wa.sent.filter((m) => m.waId === '351910000103' || m.waId === '351910000104')).toHaveLength(0)
  })

  it('skips with a recorded reason, not an error, when the platform has no number configured or the business came back', async () => {
    // Sessions the worker will not nudge (due in 30 min); their nudge is written as the batch writes it.
    const deps: OnboardingDeps = { sql: db.current.sql, secrets, graph: null, settings: onboardingSettingsOf(testConfig({ ONBOARDING_NUDGE_AFTER: '30m', ONBOARDING_ABANDON_AFTER: '2h' })) }
    const quiet = async (businessName: string, contactPhone: string, nudgedBeforeLastActivity: boolean) => {
      const { session, link } = await startSession(deps, { origin: 'signup', createdBy: 'test' })
      await saveStep(deps, link.token, 'business_info', { ...BUSINESS, businessName, contactPhone })
      const [nudge] = await db.current.owner<{ id: string }[]>`
        insert into onboarding.step_activities (session_id, tenant_id, step, kind, created_at)
        select id, tenant_id, 'whatsapp_connect', 'nudged', ${nudgedBeforeLastActivity ? db.current.owner`last_activity_at - interval '1 minute'` : db.current.owner`clock_timestamp()`}
          from onboarding.sessions where id = ${session.sessionId}
        returning id::text`
      return { id: session.sessionId, nudgeId: nudge!.id }
    }
    const none = await quiet('Sem Número', '+351910000105', false)
    expect(await sendWhatsAppNudge(deps, null, none.id, none.nudgeId)).toEqual({ outcome: 'skipped', reason: 'no_platform_number' })
    expect(await sendWhatsAppNudge(deps, null, none.id, none.nudgeId)).toEqual({ outcome: 'already' })
    expect(await outcomes(none.id)).toMatchObject([{ kind: 'whatsapp_nudge_skipped', detail: { reason: 'no_platform_number', nudge: Number(none.nudgeId) } }])

    const platform = { tenantId: platformTenantId, phoneNumberId: PLATFORM_NUMBER, template: 'onboarding_reminder', language: 'en' }
    const back = await quiet('De Volta', '+351910000106', true)
    expect(await sendWhatsAppNudge(deps, platform, back.id, back.nudgeId)).toEqual({ outcome: 'skipped', reason: 'resumed_before_sending' })
    const noTemplate = await quiet('Outra Língua', '+351910000107', false)
    expect(await sendWhatsAppNudge(deps, { ...platform, language: 'pt_PT' }, noTemplate.id, noTemplate.nudgeId)).toEqual({ outcome: 'skipped', reason: 'template_not_found' })
    expect(wa.sent.filter((m) => ['351910000105', '351910000106', '351910000107'].includes(m.waId))).toHaveLength(0)
  })
})
