import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startUnleashEmulator, type UnleashEmulator, type UnleashFeature } from '../ops/emulators/unleash.js'
import { SPEC_FEATURES, SPEC_TOGGLE_CASES, SPEC_VARIANT_CASES } from '../test/fixtures/unleash-spec-cases.js'
import { testLogger } from '../test/apps.js'
import { FeatureFlags } from './feature-flags.js'

const TOKEN = 'default:development.unleash-emulator-test-token'
const TENANT = '7a0c2f1e-3b4d-4e5f-8a9b-0c1d2e3f4a5b'
const OTHER_TENANT = '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e'

/** Per tenant: only the tenants listed get the live feed; the catalog default (on) applies where Unleash is silent. */
const PER_TENANT: UnleashFeature = {
  name: 'analytics.live-feed', enabled: true,
  strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100', stickiness: 'default', groupId: 'analytics.live-feed' }, constraints: [{ contextName: 'tenantId', operator: 'IN', values: [TENANT], caseInsensitive: false, inverted: false }] }],
}

describe('feature flags through unleash-client and the Unleash emulator', () => {
  let unleash: UnleashEmulator
  let backupDir: string
  const open: FeatureFlags[] = []
  const flagsFor = async (overrides: Partial<ConstructorParameters<typeof FeatureFlags>[0]> = {}, readyWithinMs = 5_000) => {
    const flags = new FeatureFlags({ url: unleash.apiUrl, token: TOKEN, appName: 'flags-test', refreshIntervalMs: 1000, backupDir, log: testLogger(), ...overrides })
    open.push(flags)
    await flags.ready(readyWithinMs)
    return flags
  }

  beforeAll(async () => {
    unleash = await startUnleashEmulator({ tokens: [TOKEN], features: [...SPEC_FEATURES, PER_TENANT] })
  })
  afterEach(async () => {
    await Promise.all(open.splice(0).map((f) => f.close()))
    unleash.recover()
    unleash.setFeatures([...SPEC_FEATURES, PER_TENANT])
  })
  afterAll(async () => {
    await unleash.stop()
  })
  // Each test its own backup folder: the client's file backup must not carry toggles from one test to the next.
  const freshBackup = async () => { backupDir = await mkdtemp(path.join(tmpdir(), 'unleash-backup-')) }

  it("gives the client specification's results for gradual rollouts by userId and sessionId", async () => {
    await freshBackup()
    const flags = await flagsFor()
    expect(flags.status()).toMatchObject({ configured: true, synchronized: true })
    for (const c of SPEC_TOGGLE_CASES) {
      const got = flags.evaluate(c.toggle, { tenantId: TENANT, leadId: c.context.userId, sessionId: c.context.sessionId })
      expect({ toggle: c.toggle, context: c.context, enabled: got.enabled }).toEqual({ toggle: c.toggle, context: c.context, enabled: c.enabled })
    }
  })

  it("gives the specification's variants (weights, stickiness by userId, overrides, disabled toggles)", async () => {
    await freshBackup()
    const flags = await flagsFor()
    for (const c of SPEC_VARIANT_CASES) {
      const { variant } = flags.evaluate(c.toggle, { tenantId: TENANT, leadId: c.userId })
      expect({ toggle: c.toggle, userId: c.userId, name: variant.name, enabled: variant.enabled, payload: variant.payload?.value })
        .toEqual({ toggle: c.toggle, userId: c.userId, name: c.variant, enabled: c.enabled, payload: c.payload })
    }
  })

  it('gates per tenant through the tenantId context field', async () => {
    await freshBackup()
    const flags = await flagsFor()
    expect(flags.isEnabled('analytics.live-feed', { tenantId: TENANT })).toBe(true)
    expect(flags.isEnabled('analytics.live-feed', { tenantId: OTHER_TENANT })).toBe(false)
    // Not defined in Unleash: the catalog's default, said so.
    expect(flags.evaluate('analytics.posthog-forwarding', { tenantId: OTHER_TENANT })).toMatchObject({ enabled: true, source: 'default' })
  })

  it('follows changes on the next poll, and registers and reports like a real client', async () => {
    await freshBackup()
    const flags = await flagsFor()
    unleash.setFeatures([{ ...PER_TENANT, enabled: false }])
    await expect.poll(() => flags.isEnabled('analytics.live-feed', { tenantId: TENANT }), { timeout: 5_000, interval: 100 }).toBe(false)
    await flags.close()
    expect(unleash.registrations).toContainEqual(expect.objectContaining({ appName: 'flags-test' }))
    expect(unleash.stats().notModified + unleash.stats().fetches).toBeGreaterThan(1)
  })

  it('keeps the last known toggles while Unleash is down, and after a restart reads them from its backup', async () => {
    await freshBackup()
    const first = await flagsFor()
    expect(first.isEnabled('analytics.live-feed', { tenantId: OTHER_TENANT })).toBe(false)
    unleash.fail('down')
    await expect.poll(() => first.status().lastError, { timeout: 8_000, interval: 100 }).not.toBeNull()
    expect(first.isEnabled('analytics.live-feed', { tenantId: OTHER_TENANT })).toBe(false)
    await first.close()
    const restarted = await flagsFor()
    expect(restarted.status().synchronized).toBe(false)
    expect(restarted.evaluate('analytics.live-feed', { tenantId: OTHER_TENANT })).toMatchObject({ enabled: false, source: 'unleash' })
    unleash.fail(503)
    expect(restarted.evaluate('Feature.flexibleRollout.10', { tenantId: TENANT, leadId: '174' }).enabled).toBe(true)
  })

  it('answers from the bootstrap file before Unleash ever answered', async () => {
    await freshBackup()
    const file = path.join(backupDir, 'bootstrap.json')
    await writeFile(file, JSON.stringify({ version: 2, features: [{ ...PER_TENANT, enabled: false }] }))
    unleash.fail('down')
    const flags = await flagsFor({ bootstrapFile: file })
    expect(flags.evaluate('analytics.live-feed', { tenantId: TENANT })).toMatchObject({ enabled: false, source: 'bootstrap' })
    await rm(file)
  })

  it('answers with the defaults when Unleash is not configured, and refused tokens never throw', async () => {
    const none = new FeatureFlags({ appName: 'x', refreshIntervalMs: 1000, log: testLogger() })
    expect(none.status()).toEqual({ configured: false, synchronized: false, toggles: 0, lastError: null })
    expect(none.evaluateAll({ tenantId: TENANT }).every((f) => f.source === 'default' && f.enabled)).toBe(true)
    await freshBackup()
    const refused = await flagsFor({ token: 'wrong-token' }, 300)
    await expect.poll(() => refused.status().lastError, { timeout: 5_000, interval: 50 }).not.toBeNull()
    expect(refused.isEnabled('analytics.live-feed', { tenantId: OTHER_TENANT })).toBe(true)
    expect(refused.status()).toMatchObject({ synchronized: false, lastError: expect.stringMatching(/401/) })
  })
})
