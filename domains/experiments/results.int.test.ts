import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { recordEvents } from '../analytics/service.js'
import { bearer, buildTestApi } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { assign, recordExposures } from './service.js'
import { chanceToBeatControl, sampleRatioMismatch, twoProportionTest } from './statistics.js'

describe('GET /v1/experiments/:id/results', () => {
  const db = useTestDatabase()
  let api: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(() => api.close())

  it('counts units, exposures and conversions within the window per variation, with the statistics of those counts', async () => {
    const e = await makeExperiment(db.current.sql, tenant, { key: 'results', goals: [{ event: 'lead.qualified', windowHours: 24 }] })
    const byArm: Record<string, string[]> = { control: [], treatment: [] }
    for (let i = 0; i < 60; i++) {
      const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id))
      const [a] = await assign(db.current.sql, tenant.id, { leadId: lead.id, attributes: {}, source: 'api' })
      byArm[a!.variationKey]!.push(lead.id)
    }
    // Qualified within the window: every 3rd control lead, every 2nd treatment lead; one more treatment lead too late.
    const now = Date.now()
    const qualified = { control: byArm.control!.filter((_, i) => i % 3 === 0), treatment: byArm.treatment!.filter((_, i) => i % 2 === 0) }
    const late = byArm.treatment!.find((_, i) => i % 2 === 1)!
    await withTenant(db.current.sql, tenant.id, async (tx) => {
      await recordEvents(tx, [...qualified.control, ...qualified.treatment].map((leadId) => ({ name: 'lead.qualified', leadId, occurredAt: new Date(now + 3600_000), source: 'test' })))
      await recordEvents(tx, [{ name: 'lead.qualified', leadId: late, occurredAt: new Date(now + 30 * 3600_000), source: 'test' }])
      // Exposed: the first five of each arm, and one control lead exposed to treatment as well (a multiple exposure).
      await recordExposures(tx, [...byArm.control!.slice(0, 5), ...byArm.treatment!.slice(0, 5)].map((leadId) => ({
        leadId, experimentKey: 'results', variationKey: byArm.control!.includes(leadId) ? 'control' : 'treatment', source: 'flow' as const, at: new Date(),
      })))
    })
    await db.current.owner`
      insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
      values (${tenant.id}, ${e.id}, 1, ${byArm.control![0]!}, ${byArm.control![0]!}, 'treatment', 'template')`

    const res = await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })
    expect(res.statusCode, res.body).toBe(200)
    const r = res.json()
    const control = { units: byArm.control!.length, conversions: qualified.control.length }
    const treatment = { units: byArm.treatment!.length, conversions: qualified.treatment.length }
    const test = twoProportionTest(control, treatment)
    expect(r).toMatchObject({ key: 'results', phase: 1, multipleExposures: 1 })
    expect(r.variations).toEqual([
      { key: 'control', weight: 0.5, units: control.units, exposed: 5, goals: [{ event: 'lead.qualified', windowHours: 24, conversions: control.conversions, rate: control.conversions / control.units }] },
      {
        key: 'treatment', weight: 0.5, units: treatment.units, exposed: 6, goals: [{
          event: 'lead.qualified', windowHours: 24, conversions: treatment.conversions, rate: treatment.conversions / treatment.units,
          relativeUplift: test.relativeUplift, ci95: test.ci95, pValue: test.pValue, chanceToBeatControl: chanceToBeatControl(control, treatment),
        }],
      },
    ])
    const srm = sampleRatioMismatch([control.units, treatment.units], [0.5, 0.5])
    expect(r.srm).toEqual({ chiSquare: srm.chiSquare, pValue: srm.pValue, flagged: srm.flagged })
  })

  it('answers 404 for an unknown experiment or phase, and for another tenant', async () => {
    const e = await makeExperiment(db.current.sql, tenant, { key: 'results-404' })
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results?phase=2`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(other.adminKey) })).statusCode).toBe(404)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results?phase=0`, headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
  })
})
