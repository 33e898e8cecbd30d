import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSql, type Sql, withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeExperiment } from '../../test/factories/experiments-rows.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { assign } from './service.js'

/**
 * The assign hot path runs outside a transaction: experiments.assign_context and experiments.insert_assignments set
 * the tenant themselves, transaction-locally. These prove that this is as safe as withTenant: nothing stays on the
 * pooled connection, and a tenant's call never sees or writes another tenant's rows.
 */
describe('assignment without a transaction (experiments.assign_context)', () => {
  const db = useTestDatabase()
  let one: Sql
  let a: TestTenant
  let b: TestTenant
  beforeAll(async () => {
    // One connection, so the next statement surely runs where the assignment ran.
    one = createSql(db.current.runtimeUrl, { max: 1 })
    a = await makeTenant(db.current.sql)
    b = await makeTenant(db.current.sql)
  })
  afterAll(() => one.end())

  it('leaves no tenant on the connection after assigning (read and insert)', async () => {
    await makeExperiment(db.current.sql, a, { key: 'no-leak' })
    const lead = await withTenant(db.current.sql, a.id, (tx) => makeLead(tx, a.id))
    const [first] = await assign(one, a.id, { leadId: lead.id, attributes: {}, source: 'api' })
    expect(first).toMatchObject({ experimentKey: 'no-leak', isNew: true })
    const [setting] = await one<{ tenant: string | null }[]>`select nullif(current_setting('app.tenant_id', true), '') as tenant`
    expect(setting!.tenant).toBeNull()
    // With no tenant set, the connection sees nothing.
    const [row] = await one<{ n: number }[]>`select count(*)::int as n from experiments.assignments`
    expect(row!.n).toBe(0)
    // Stored: the second call reads it back.
    const [again] = await assign(one, a.id, { leadId: lead.id, attributes: {}, source: 'api' })
    expect(again).toMatchObject({ experimentKey: 'no-leak', isNew: false, variationKey: first!.variationKey })
  })

  it("answers another tenant's lead as unknown (404) and writes nothing for it", async () => {
    await makeExperiment(db.current.sql, b, { key: 'other-tenant' })
    const lead = await withTenant(db.current.sql, a.id, (tx) => makeLead(tx, a.id))
    await expect(assign(one, b.id, { leadId: lead.id, attributes: {}, source: 'api' })).rejects.toMatchObject({ code: 'NOT_FOUND' })
    const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where lead_id = ${lead.id}`
    expect(row!.n).toBe(0)
    // A visitor id is per tenant: B's visitor with A's visitor's id gets B's experiments only.
    await assign(one, a.id, { anonymousId: 'shared-visitor-id', attributes: {}, source: 'site' })
    const forB = await assign(one, b.id, { anonymousId: 'shared-visitor-id', attributes: {}, source: 'site' })
    expect(forB.every((x) => x.experimentKey === 'other-tenant')).toBe(true)
  })

  it("cannot attach an assignment to another tenant's experiment by naming it (foreign keys ignore row-level security)", async () => {
    const theirs = await makeExperiment(db.current.sql, b, { key: 'theirs' })
    const inserted = await one`select * from experiments.insert_assignments(${a.id}::uuid, ${one.json([{ experiment_id: theirs.id, phase: 1, unit_id: 'x', lead_id: null, anonymous_id: 'x', variation_key: 'control', variation_index: 0, source: 'api' }] as never)}::jsonb)`
    expect(inserted).toHaveLength(0)
    const [row] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where experiment_id = ${theirs.id}`
    expect(row!.n).toBe(0)
  })
})
