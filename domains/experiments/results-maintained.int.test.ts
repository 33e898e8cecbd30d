import { beforeAll, describe, expect, it } from 'vitest'
import { SecretBox } from '../../lib/crypto.js'
import { withTenant } from '../../lib/db.js'
import { seededRandom } from '../../lib/seeded-random.js'
import { testConfig } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { comparablePhaseCounts, makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { recordEvents } from '../analytics/service.js'
import { mergeLeadsManually } from '../marketing/leads/service.js'
import { requestErasure, runErasure } from '../privacy/erasure.js'
import type { ExperimentView, Goal } from './schemas.js'
import {
  assign, countPhaseFromScratch, experimentResults, maintainResults, patchExperiment, readPhaseTotals, recordExposures, startNewPhase,
} from './service.js'

/**
 * The maintained totals (migration 0050: per-person rows kept by triggers, deltas folded by a task) against counting
 * everything again (countPhase, the results' previous statement), after a randomized mix of what happens to an
 * experiment: concurrent and repeated assignments, events before and after assignment (duplicates, late, out of the
 * window, not a number), exposures (repeated, to the other variation), visitors becoming leads, merges, an erasure, a
 * new phase, folds in between, a goal change and its rebuild.
 */
describe('maintained experiment results', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  const who = () => ({ tenantId: tenant.id, actor: 'test', requestId: null })
  const goals: Goal[] = [
    { event: 'lead.qualified', windowHours: 24 },
    { event: 'order.paid', windowHours: 24, aggregate: 'sum', property: 'amount' },
    { event: 'order.paid', windowHours: 48, aggregate: 'count' },
  ] as Goal[]
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
  })

  /** Every phase of the experiment: maintained and from scratch, equal (and not trivially empty). */
  async function expectExact(e: ExperimentView, label: string) {
    const phases = await db.current.owner<{ phase: number; startedAt: Date }[]>`select phase, started_at from experiments.phases where experiment_id = ${e.id} order by phase`
    const current = await db.current.owner<{ goals: Goal[] }[]>`select goals from experiments.experiments where id = ${e.id}`
    for (const p of phases) {
      const [maintained, scratch] = await withTenant(db.current.sql, tenant.id, async (tx) => [
        comparablePhaseCounts(await readPhaseTotals(tx, e.id, p.phase)),
        comparablePhaseCounts(await countPhaseFromScratch(tx, e.id, p.phase, current[0]!.goals, p.startedAt)),
      ])
      expect(maintained, `${label}, phase ${p.phase}`).toEqual(scratch)
      expect(scratch.length, `${label}: something to count`).toBeGreaterThan(0)
    }
  }

  it('equals counting from scratch after a randomized mix of assignments, events, exposures, identifies, merges, an erasure and a new phase', async () => {
    const random = seededRandom(20261201)
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!
    const e = await makeExperiment(db.current.sql, tenant, { key: 'maintained', goals })
    const visitorsExperiment = await makeExperiment(db.current.sql, tenant, { key: 'maintained-visitors', unit: 'anonymous', goals: [goals[0]!] })
    const leads = await withTenant(db.current.sql, tenant.id, async (tx) => {
      const out: string[] = []
      for (let i = 0; i < 48; i++) out.push((await makeLead(tx, tenant.id)).id)
      return out
    })
    const now = Date.now()
    const at = (hours: number) => new Date(now + hours * 3600_000)
    let eventNo = 0
    const randomEvents = (forLeads: readonly string[], count: number) => Array.from({ length: count }, () => {
      const leadId = pick(forLeads)
      const name = random() < 0.4 ? 'lead.qualified' : random() < 0.8 ? 'order.paid' : 'page.viewed'
      // Before the assignment (never counts), inside the 24 h window, between 24 h and 48 h, or after 48 h.
      const hours = pick([-2, 0.5, 3, 20, 30, 47, 60])
      const amount = random() < 0.15 ? 'lots' : Math.round(random() * 10_000) / 100
      // Some keys repeat: a duplicate of an event already stored adds nothing.
      const dedupeKey = random() < 0.3 ? `dup:${Math.floor(random() * 15)}` : `e:${eventNo++}`
      return { name, leadId, occurredAt: at(hours), source: 'test', properties: { amount }, dedupeKey }
    })

    // Events that came before their lead was assigned (the assignment finds them).
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, randomEvents(leads.slice(0, 24), 40)))
    // Concurrent assignments, some of the same lead twice at once.
    const first = leads.slice(0, 32)
    await Promise.all([...first, ...first.slice(0, 8)].map((leadId) => assign(db.current.sql, tenant.id, { leadId, attributes: {}, source: 'api' })))
    await expectExact(e, 'after assignments')

    // Exposures (repeats, and a few to the variation the lead does not hold: a multiple exposure, as a merge makes).
    const variationOf = async (leadId: string) => (await assign(db.current.sql, tenant.id, { leadId, attributes: {}, source: 'api' })).find((a) => a.experimentKey === 'maintained')?.variationKey
    await withTenant(db.current.sql, tenant.id, async (tx) => {
      const rows = []
      for (let i = 0; i < 30; i++) {
        const leadId = pick(first)
        rows.push({ leadId, experimentKey: 'maintained', variationKey: (await variationOf(leadId))!, source: 'flow' as const, at: new Date() })
      }
      await recordExposures(tx, rows)
    })
    for (const leadId of first.slice(0, 3)) {
      const other = (await variationOf(leadId)) === 'control' ? 'treatment' : 'control'
      await db.current.owner`
        insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
        values (${tenant.id}, ${e.id}, 1, ${leadId}, ${leadId}, ${other}, 'template') on conflict do nothing`
    }
    // Events after the assignment, in several transactions at once, with duplicates and late ones.
    await Promise.all(Array.from({ length: 6 }, () => withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, randomEvents(first, 25)))))
    await expectExact(e, 'after exposures and events')

    // Half the deltas folded, then more of everything, then all folded: the same answer whatever is folded.
    await maintainResults(db.current.sql, { tenantIds: [tenant.id], foldLimit: 3 })
    await expectExact(e, 'after a partial fold')
    await Promise.all(leads.slice(32).map((leadId) => assign(db.current.sql, tenant.id, { leadId, attributes: {}, source: 'api' })))
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, randomEvents(leads, 40)))
    await maintainResults(db.current.sql, { tenantIds: [tenant.id] })
    await expectExact(e, 'after a full fold')

    // Visitors: assigned anonymously, some become leads (identify), with goal events of their leads.
    const visitors = Array.from({ length: 10 }, (_, i) => `mv-${i}`)
    for (const v of visitors) await assign(db.current.sql, tenant.id, { anonymousId: v, attributes: {}, source: 'site' })
    for (const [i, v] of visitors.slice(0, 4).entries()) await assign(db.current.sql, tenant.id, { leadId: leads[40 + i]!, anonymousId: v, attributes: {}, source: 'api' })
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, randomEvents(leads.slice(40, 44), 12)))
    await expectExact(visitorsExperiment, 'visitors after identify')

    // Merges: both leads assigned (the earliest assignment wins), and one lead merged into an unassigned one.
    for (const [survivor, merged] of [[leads[0]!, leads[1]!], [leads[2]!, leads[3]!], [leads[4]!, leads[40]!], [leads[45]!, leads[5]!]] as const) {
      await mergeLeadsManually(db.current.sql, who(), survivor, merged)
    }
    await expectExact(e, 'after merges')
    await expectExact(visitorsExperiment, 'visitors after merges')

    // An erasure of a lead with an assignment, exposures and goal events.
    const subject = leads[6]!
    const deps = { sql: db.current.sql, secrets: SecretBox.fromConfig(testConfig().SECRETS_KEY) }
    const request = await requestErasure(deps, who(), { leadId: subject })
    expect(await runErasure(deps, tenant.id, request.id)).toBe('completed')
    const [left] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.result_units where lead_id = ${subject}`
    expect(left!.n).toBe(0)
    await expectExact(e, 'after an erasure')

    // A new phase: units assigned afresh, the first phase's results unchanged.
    await startNewPhase(db.current.sql, who(), e.id, { variations: [{ key: 'a', weight: 0.3 }, { key: 'b', weight: 0.7 }] })
    await Promise.all(leads.slice(10, 30).map((leadId) => assign(db.current.sql, tenant.id, { leadId, attributes: {}, source: 'api' })))
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, randomEvents(leads.slice(10, 30), 30)))
    await expectExact(e, 'after a new phase')

    // A rebuild from scratch (set-based) leaves the totals as the triggers kept them.
    const totals = async () => withTenant(db.current.sql, tenant.id, async (tx) => [comparablePhaseCounts(await readPhaseTotals(tx, e.id, 1)), comparablePhaseCounts(await readPhaseTotals(tx, e.id, 2))])
    const kept = await totals()
    await withTenant(db.current.sql, tenant.id, (tx) => tx`select experiments.rebuild_result_units(${e.id})`)
    expect(await totals()).toEqual(kept)

    // A goal change: results count from scratch until the task rebuilds, then from the totals again; both exact.
    await patchExperiment(db.current.sql, who(), e.id, { goals: [goals[2]!, { event: 'lead.qualified', windowHours: 2 }] as Goal[] })
    const maintainedFor = async () => (await db.current.owner<{ ok: boolean }[]>`select results_goals = goals as ok from experiments.experiments where id = ${e.id}`)[0]!.ok
    expect(await maintainedFor()).toBe(false)
    const [jobs] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'experiments__maintain_results'`
    expect(jobs!.n).toBe(1)
    const before = await experimentResults(db.current.sql, tenant.id, e.id, 1)
    const result = await maintainResults(db.current.sql, { tenantIds: [tenant.id] })
    expect(result.rebuilt).toBe(1)
    expect(await maintainedFor()).toBe(true)
    await expectExact(e, 'after a goal change and its rebuild')
    expect(await experimentResults(db.current.sql, tenant.id, e.id, 1)).toEqual(before)
  })

  it('keeps a tenant from reading or writing another tenant’s maintained rows', async () => {
    const other = await makeTenant(db.current.sql)
    const counts = (id: string) => withTenant(db.current.sql, id, (tx) => tx<{ units: number; totals: number }[]>`
      select (select count(*) from experiments.result_units)::int as units, (select count(*) from experiments.result_totals)::int as totals`).then((r) => r[0]!)
    const mine = await counts(tenant.id)
    expect(mine.units).toBeGreaterThan(0)
    expect(mine.totals).toBeGreaterThan(0)
    expect(await counts(other.id)).toEqual({ units: 0, totals: 0 })
    const [e] = await db.current.owner<{ id: string }[]>`select id from experiments.experiments where tenant_id = ${tenant.id} limit 1`
    await expect(withTenant(db.current.sql, other.id, (tx) => tx`
      insert into experiments.result_deltas (tenant_id, experiment_id, phase, metric, variation_key, ord, n, total, total_sq)
      values (${tenant.id}, ${e!.id}, 1, 'units', 'control', -1, 1000, 0, 0)`)).rejects.toThrow(/row-level security/)
    const updated = await withTenant(db.current.sql, other.id, (tx) => tx`update experiments.result_totals set n = n + 1000`)
    expect(updated.count).toBe(0)
  })
})
