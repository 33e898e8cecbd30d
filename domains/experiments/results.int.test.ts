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
import { chanceToBeatControl, sampleRatioMismatch, twoProportionTest, welchTTest } from './statistics.js'

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

  it("compares mean goals (a property summed per unit, events counted per unit) with Welch's t-test, zeros included", async () => {
    const e = await makeExperiment(db.current.sql, tenant, {
      key: 'results-means',
      goals: [{ event: 'order.paid', windowHours: 24, aggregate: 'sum', property: 'amount' }, { event: 'order.paid', windowHours: 24, aggregate: 'count' }],
    })
    const byArm: Record<string, string[]> = { control: [], treatment: [] }
    for (let i = 0; i < 40; i++) {
      const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id))
      const a = (await assign(db.current.sql, tenant.id, { leadId: lead.id, attributes: {}, source: 'api' })).find((x) => x.experimentKey === 'results-means')
      byArm[a!.variationKey]!.push(lead.id)
    }
    const now = Date.now()
    // The i-th lead of an arm pays i % 4 times, 10·(i+1) each (treatment: 15·(i+1)); also one payment too late and one
    // whose amount is not a number, which change nothing.
    const amounts: Record<string, number[]> = { control: [], treatment: [] }
    const counts: Record<string, number[]> = { control: [], treatment: [] }
    const events: { name: string; leadId: string; occurredAt: Date; source: string; properties: Record<string, unknown> }[] = []
    for (const arm of ['control', 'treatment'] as const) {
      byArm[arm]!.forEach((leadId, i) => {
        const times = i % 4
        const each = (arm === 'control' ? 10 : 15) * (i + 1)
        for (let k = 0; k < times; k++) events.push({ name: 'order.paid', leadId, occurredAt: new Date(now + (k + 1) * 60_000), source: 'test', properties: { amount: each } })
        amounts[arm]!.push(times * each)
        counts[arm]!.push(times)
      })
    }
    events.push({ name: 'order.paid', leadId: byArm.control![1]!, occurredAt: new Date(now + 30 * 3600_000), source: 'test', properties: { amount: 1e6 } })
    events.push({ name: 'order.paid', leadId: byArm.control![2]!, occurredAt: new Date(now + 60_000), source: 'test', properties: { amount: 'lots' } })
    counts.control![2]! += 1
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, events))

    const res = await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })
    expect(res.statusCode, res.body).toBe(200)
    const summary = (xs: number[]) => {
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length
      return { units: xs.length, mean, variance: xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1) }
    }
    const [control, treatment] = res.json().variations
    for (const [ord, values] of [[0, amounts], [1, counts]] as const) {
      const a = summary(values.control!)
      const b = summary(values.treatment!)
      const test = welchTTest(a, b)
      expect(control.goals[ord]).toMatchObject({ units: a.units, aggregate: ord === 0 ? 'sum' : 'count' })
      expect(control.goals[ord].mean).toBeCloseTo(a.mean, 9)
      expect(control.goals[ord].stdDev).toBeCloseTo(Math.sqrt(a.variance), 9)
      expect(control.goals[ord].pValue).toBeUndefined()
      const got = treatment.goals[ord]
      expect(got.units).toBe(b.units)
      for (const k of ['mean', 'difference', 't', 'df', 'pValue', 'relativeUplift'] as const) expect(got[k], k).toBeCloseTo(k === 'mean' ? b.mean : test[k]!, 9)
      expect(got.ci95[0]).toBeCloseTo(test.ci95![0], 9)
      expect(got.differenceCi95[1]).toBeCloseTo(test.differenceCi95![1], 9)
    }
    expect(treatment.goals[0].property).toBe('amount')
  })

  it.each([
    [{ event: 'order.paid', aggregate: 'sum' }, 'goals.0.property'],
    [{ event: 'order.paid', aggregate: 'count', property: 'amount' }, 'goals.0.property'],
    [{ event: 'order.paid', aggregate: 'median' }, 'goals.0.aggregate'],
  ])('refuses the mean goal %j (400, nothing stored)', async (goal, path) => {
    const res = await api.inject({
      method: 'POST', url: '/v1/experiments', headers: bearer(tenant.adminKey),
      payload: { key: 'bad-goal', name: 'Bad goal', variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.5 }], goals: [goal] },
    })
    expect(res.statusCode, res.body).toBe(400)
    expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
    const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.experiments where key = 'bad-goal'`
    expect(row!.n).toBe(0)
  })

  it('counts a visitor who never became a lead as one unit, and a visitor and the lead it became as one person', async () => {
    const e = await makeExperiment(db.current.sql, tenant, { key: 'results-visitors', unit: 'anonymous', goals: [{ event: 'lead.qualified', windowHours: 24 }] })
    for (const v of ['rv-1', 'rv-2', 'rv-3']) await assign(db.current.sql, tenant.id, { anonymousId: v, attributes: {}, source: 'site' })
    // rv-3 becomes a lead (an identify call): still one unit, now the lead's.
    const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id))
    await assign(db.current.sql, tenant.id, { leadId: lead.id, anonymousId: 'rv-3', attributes: {}, source: 'api' })
    const r = (await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })).json()
    expect(r.variations.reduce((n: number, v: { units: number }) => n + v.units, 0)).toBe(3)
  })

  it('answers 404 for an unknown experiment or phase, and for another tenant', async () => {
    const e = await makeExperiment(db.current.sql, tenant, { key: 'results-404' })
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results?phase=2`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(other.adminKey) })).statusCode).toBe(404)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results?phase=0`, headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
    expect((await api.inject({ method: 'GET', url: `/v1/experiments/${e.id}/results`, headers: bearer(tenant.adminKey) })).statusCode).toBe(200)
  })
})
