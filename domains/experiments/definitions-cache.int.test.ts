import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSql, type Sql, withTenant } from '../../lib/db.js'
import { testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { ExperimentDefinitions } from './definitions-cache.js'
import { assign, pauseExperiment, startExperiment, startNewPhase, stopExperiment } from './service.js'

/** Polls until `check` holds (a NOTIFY is asynchronous); fails after `ms`. A generous bound, not a timing assertion. */
async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * The assign route's in-process definitions (two API processes on one database: each its own pool, cache and LISTEN).
 * A change made through one process applies there at once and in the other when its NOTIFY arrives.
 */
describe('experiment definitions held in process', () => {
  const db = useTestDatabase()
  const procs: { sql: Sql; defs: ExperimentDefinitions }[] = []
  let tenant: TestTenant
  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const sql = createSql(db.current.runtimeUrl, { max: 3, quiet: true })
      const defs = new ExperimentDefinitions(sql, testLogger(), { ttlMs: 120_000 })
      await defs.start()
      procs.push({ sql, defs })
    }
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(async () => {
    for (const p of procs) {
      await p.defs.close()
      await p.sql.end({ timeout: 5 })
    }
  })

  const newLead = () => withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id)).then((l) => l.id)
  const assignVia = async (i: number, key: string) =>
    (await assign(procs[i]!.sql, tenant.id, { leadId: await newLead(), attributes: {}, source: 'api' }, procs[i]!.defs)).find((a) => a.experimentKey === key) ?? null
  const who = () => ({ tenantId: tenant.id, actor: 'test', requestId: null })

  it('assigns with what it holds until a change reaches it: at once in the process that made it, on NOTIFY in the other', async () => {
    const e = await makeExperiment(procs[0]!.sql, tenant, { key: 'held' })
    // Each process loads the tenant's experiments on its first assignment.
    expect(await assignVia(0, 'held')).toMatchObject({ isNew: true, phase: 1 })
    expect(await assignVia(1, 'held')).toMatchObject({ isNew: true, phase: 1 })

    // Behind the triggers' back: only a process answering from memory still assigns a paused experiment.
    await db.current.owner.begin(async (tx) => {
      await tx`set local session_replication_role = replica`
      await tx`update experiments.experiments set status = 'paused' where id = ${e.id}`
    })
    expect(await assignVia(1, 'held')).toMatchObject({ isNew: true })
    await db.current.owner`update experiments.experiments set status = 'running' where id = ${e.id}`

    await pauseExperiment(procs[0]!.sql, who(), e.id)
    expect(await assignVia(0, 'held')).toBeNull()
    await eventually(async () => (await assignVia(1, 'held')) === null)

    await startExperiment(procs[0]!.sql, who(), e.id)
    expect(await assignVia(0, 'held')).toMatchObject({ isNew: true })
    await eventually(async () => (await assignVia(1, 'held')) !== null)

    // A new phase (new weights) is what both assign with next.
    await startNewPhase(procs[0]!.sql, who(), e.id, { variations: [{ key: 'control', weight: 0.5 }, { key: 'treatment', weight: 0.5 }] })
    expect(await assignVia(0, 'held')).toMatchObject({ phase: 2 })
    await eventually(async () => (await assignVia(1, 'held'))?.phase === 2)

    await stopExperiment(procs[1]!.sql, who(), e.id)
    expect(await assignVia(1, 'held')).toBeNull()
    await eventually(async () => (await assignVia(0, 'held')) === null)
  })

  it('serves a stopped experiment\'s stored assignment, and a new experiment is seen once created', async () => {
    const leadId = await newLead()
    const e = await makeExperiment(procs[0]!.sql, tenant, { key: 'kept' })
    const [first] = (await assign(procs[0]!.sql, tenant.id, { leadId, attributes: {}, source: 'api' }, procs[0]!.defs)).filter((a) => a.experimentKey === 'kept')
    expect(first).toMatchObject({ isNew: true })
    await stopExperiment(procs[0]!.sql, who(), e.id)
    const again = (await assign(procs[0]!.sql, tenant.id, { leadId, attributes: {}, source: 'api' }, procs[0]!.defs)).filter((a) => a.experimentKey === 'kept')
    expect(again).toEqual([{ ...first, isNew: false, assignedAt: again[0]!.assignedAt }])
    await eventually(async () => (await assign(procs[1]!.sql, tenant.id, { leadId, attributes: {}, source: 'api' }, procs[1]!.defs))
      .some((a) => a.experimentKey === 'kept' && a.variationKey === first!.variationKey && !a.isNew))
  })

  it('answers concurrent requests for one lead with one stored row per experiment, the first one new (batched reads and writes)', async () => {
    const e = await makeExperiment(procs[0]!.sql, tenant, { key: 'together' })
    const leadId = await newLead()
    const others = await Promise.all(Array.from({ length: 10 }, newLead))
    const answers = await Promise.all([...Array.from({ length: 10 }, () => leadId), ...others].map((id) =>
      assign(procs[0]!.sql, tenant.id, { leadId: id, attributes: {}, source: 'api' }, procs[0]!.defs).then((r) => ({ id, a: r.find((x) => x.experimentKey === 'together')! }))))
    const mine = answers.filter((x) => x.id === leadId).map((x) => x.a)
    expect(new Set(mine.map((a) => a.variationKey)).size).toBe(1)
    expect(mine.filter((a) => a.isNew)).toHaveLength(1)
    expect(answers.filter((x) => x.id !== leadId).every((x) => x.a.isNew)).toBe(true)
    const rows = await db.current.owner<{ leadId: string; variationKey: string }[]>`select lead_id, variation_key from experiments.assignments where experiment_id = ${e.id}`
    expect(rows).toHaveLength(11)
    expect(rows.find((r) => r.leadId === leadId)!.variationKey).toBe(mine[0]!.variationKey)
  })
})
