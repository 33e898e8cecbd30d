import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, testLogger } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeLead } from '../../../../test/factories/marketing-rows.js'
import { withTenant } from '../../../../lib/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { FeatureFlags } from '../../../../lib/feature-flags.js'
import type { App } from '../../../../lib/http/create-server.js'
import { startUnleashEmulator, type UnleashEmulator, type UnleashFeature } from '../../../../ops/emulators/unleash.js'

const TOKEN = 'default:development.flags-route-test'

describe('GET /v1/flags', () => {
  const db = useTestDatabase()
  let unleash: UnleashEmulator
  let flags: FeatureFlags
  let app: App
  let plain: App
  let tenant: TestTenant
  let other: TestTenant
  let leadId: string
  let otherLeadId: string
  let FEATURES: UnleashFeature[]

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    leadId = (await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id))).id
    otherLeadId = (await withTenant(db.current.sql, other.id, (tx) => makeLead(tx, other.id))).id
    FEATURES = [
        // Off for one tenant only (constraint on the tenantId context field).
        { name: 'analytics.live-feed', enabled: true, strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100', stickiness: 'default', groupId: 'live' }, constraints: [{ contextName: 'tenantId', operator: 'NOT_IN', values: [other.id] }] }] },
        // On for exactly one lead (per-lead gating by userId).
        { name: 'bot.new-greeting', enabled: true, strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100', stickiness: 'userId', groupId: 'greet' }, constraints: [{ contextName: 'userId', operator: 'IN', values: [leadId] }] }] },
    ]
    unleash = await startUnleashEmulator({ tokens: [TOKEN], features: FEATURES })
    flags = new FeatureFlags({ url: unleash.apiUrl, token: TOKEN, appName: 'flags-route-test', refreshIntervalMs: 1000, backupDir: await mkdtemp(path.join(tmpdir(), 'unleash-backup-')), log: testLogger() })
    await flags.ready(5_000)
    app = await buildTestApi(db.current, {}, { flags })
    plain = await buildTestApi(db.current)
  })
  afterAll(async () => {
    await flags.close()
    await unleash.stop()
  })

  const get = (target: App, key: string, query = '') => target.inject({ method: 'GET', url: `/v1/flags${query}`, headers: bearer(key) })
  const flag = (body: { data: Array<{ name: string; enabled: boolean; source: string }> }, name: string) => body.data.find((f) => f.name === name)

  it("evaluates every catalog flag for the caller's tenant, from Unleash, and says Unleash is synchronized", async () => {
    const res = await get(app, tenant.adminKey)
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.unleash).toMatchObject({ configured: true, synchronized: true, lastError: null })
    expect(flag(body, 'analytics.live-feed')).toMatchObject({ enabled: true, source: 'unleash' })
    expect(flag(body, 'analytics.posthog-forwarding')).toMatchObject({ enabled: true, source: 'default' })
    expect(flag((await get(app, other.adminKey)).json(), 'analytics.live-feed')).toMatchObject({ enabled: false, source: 'unleash' })
  })

  it('evaluates per lead with leadId, and names beyond the catalog with names=', async () => {
    const readKey = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
    const forLead = (await get(app, readKey, `?leadId=${leadId}&names=bot.new-greeting`)).json()
    expect(flag(forLead, 'bot.new-greeting')).toMatchObject({ enabled: true, source: 'unleash' })
    const withoutLead = (await get(app, readKey, '?names=bot.new-greeting')).json()
    expect(flag(withoutLead, 'bot.new-greeting')).toMatchObject({ enabled: false })
  })

  it('turns the live feed off for a tenant the flag excludes (403), before any stream opens', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/analytics/live', headers: bearer(other.adminKey) })
    expect(res.statusCode).toBe(403)
    expect(res.json().error.message).toMatch(/analytics.live-feed/)
  })

  it('lets a tenant the flag excludes opt out of PostHog forwarding but not in (403)', async () => {
    unleash.setFeatures([...FEATURES, { name: 'analytics.posthog-forwarding', enabled: true, strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100', stickiness: 'default', groupId: 'ph' }, constraints: [{ contextName: 'tenantId', operator: 'NOT_IN', values: [other.id] }] }] }])
    await expect.poll(() => flags.isEnabled('analytics.posthog-forwarding', { tenantId: other.id }), { timeout: 5_000, interval: 100 }).toBe(false)
    const put = (key: string, enabled: boolean) => app.inject({ method: 'PUT', url: '/v1/analytics/posthog', headers: bearer(key), payload: { enabled } })
    expect((await put(other.adminKey, true)).statusCode).toBe(403)
    expect((await put(other.adminKey, false)).statusCode).toBe(200)
    expect((await put(tenant.adminKey, true)).statusCode).toBe(200)
    unleash.setFeatures(FEATURES)
  })

  it('answers with the defaults when Unleash is not configured', async () => {
    const body = (await get(plain, tenant.adminKey)).json()
    expect(body.unleash).toEqual({ configured: false, synchronized: false, toggles: 0, lastError: null })
    expect(body.data.every((f: { source: string; enabled: boolean }) => f.source === 'default' && f.enabled)).toBe(true)
  })

  it.each([
    ['a malformed lead id', '?leadId=nope', 400],
    ['a bad flag name', '?names=ok,not%20ok', 400],
    ['too many names', `?names=${Array.from({ length: 51 }, (_, i) => `f${i}`).join(',')}`, 400],
  ])('refuses %s (400)', async (_what, query, status) => {
    const res = await get(app, tenant.adminKey, query)
    expect(res.statusCode).toBe(status)
    expect(res.json().error.code).toBe('BAD_REQUEST')
  })

  it("answers 401 without a key and 404 for another tenant's lead", async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/flags' })).statusCode).toBe(401)
    const res = await get(app, tenant.adminKey, `?leadId=${otherLeadId}`)
    expect(res.statusCode).toBe(404)
  })
})
