import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { recordEvents } from './service.js'

describe('recordEvents: the one writer of analytics.events', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant
  let leadId: string
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    const [lead] = await db.current.owner<{ id: string }[]>`
      insert into marketing.leads (tenant_id, email, source) values (${tenant.id}, 'ana@example.com', 'test') returning id`
    leadId = lead!.id
  })

  const eventsOf = (t: TestTenant, prefix: string) =>
    db.current.owner<{ tenantId: string; name: string; leadId: string | null; occurredAt: Date; properties: unknown; dedupeKey: string | null; source: string | null }[]>`
      select tenant_id, name, lead_id, occurred_at, properties, dedupe_key, source from analytics.events
       where tenant_id = ${t.id} and name like ${`${prefix}%`} order by id`

  it('records a batch in one call, with every field of the row, under the transaction\'s tenant', async () => {
    const at = new Date('2026-11-30T10:00:00.000Z')
    const added = await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [
      { name: 'test.batch_one', leadId, occurredAt: at, properties: { plan: 'pro' }, dedupeKey: 'batch:1', source: 'api' },
      { name: 'test.batch_two', occurredAt: '2026-11-30T10:00:01.000Z' },
    ]))
    expect(added).toBe(2)
    expect(await eventsOf(tenant, 'test.batch')).toEqual([
      { tenantId: tenant.id, name: 'test.batch_one', leadId, occurredAt: at, properties: { plan: 'pro' }, dedupeKey: 'batch:1', source: 'api' },
      { tenantId: tenant.id, name: 'test.batch_two', leadId: null, occurredAt: new Date('2026-11-30T10:00:01.000Z'), properties: {}, dedupeKey: null, source: null },
    ])
    expect(await eventsOf(other, 'test.batch')).toEqual([])
  })

  it('adds nothing for a dedupe key already recorded, in a later batch or twice in the same one', async () => {
    const row = { name: 'test.dedupe', occurredAt: new Date(), dedupeKey: 'dedupe:1', properties: { n: 1 } }
    const first = await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [row, { ...row, properties: { n: 2 } }]))
    const again = await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [{ ...row, properties: { n: 3 } }, { ...row, dedupeKey: 'dedupe:2' }]))
    expect([first, again]).toEqual([1, 1])
    expect((await eventsOf(tenant, 'test.dedupe')).map((e) => [e.dedupeKey, e.properties])).toEqual([['dedupe:1', { n: 1 }], ['dedupe:2', { n: 1 }]])
  })

  it('keeps dedupe keys per tenant: the same key in another tenant is another event', async () => {
    const row = { name: 'test.per_tenant', occurredAt: new Date(), dedupeKey: 'shared:1' }
    await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, [row]))
    await withTenant(db.current.sql, other.id, (tx) => recordEvents(tx, [row]))
    expect((await eventsOf(tenant, 'test.per_tenant')).length).toBe(1)
    expect((await eventsOf(other, 'test.per_tenant')).length).toBe(1)
  })

  it('refuses to record outside a tenant, and records nothing for an empty batch', async () => {
    await expect(db.current.sql.begin((tx) => recordEvents(tx, [{ name: 'test.no_tenant', occurredAt: new Date() }]))).rejects.toThrow()
    expect(await withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, []))).toBe(0)
    expect(await db.current.owner`select 1 from analytics.events where name = 'test.no_tenant'`).toHaveLength(0)
  })
})
