import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant } from '../../test/factories/tenants.js'
import { count } from '../../test/whatsapp.js'
import { recordEvents } from './service.js'

/**
 * Migration 0042: the tenant of analytics.events and analytics.event_keys is checked per statement, not per row; 0060
 * does the same for analytics.daily_uniques (the rollup's largest table).
 */
describe('event tenants, checked per statement', () => {
  const db = useTestDatabase()

  it('refuses events and dedupe keys naming a tenant that does not exist, as the foreign key did', async () => {
    const ghost = randomUUID()
    await expect(db.current.owner`insert into analytics.events (tenant_id, name, occurred_at) values (${ghost}, 'test.ghost', now())`)
      .rejects.toMatchObject({ code: '23503' })
    await expect(db.current.owner`insert into analytics.event_keys (tenant_id, dedupe_key, occurred_at) values (${ghost}, 'test:ghost', now())`)
      .rejects.toMatchObject({ code: '23503' })
    await expect(db.current.owner`insert into analytics.daily_uniques (tenant_id, day, name, kind, subject) values (${ghost}, current_date, 'test.ghost', 'visitor', 'anon-1')`)
      .rejects.toMatchObject({ code: '23503' })
    // One bad row among good ones fails the statement.
    const tenant = await makeTenant(db.current.sql)
    await expect(db.current.owner`
      insert into analytics.events (tenant_id, name, occurred_at) values (${tenant.id}, 'test.fine', now()), (${ghost}, 'test.ghost', now())`)
      .rejects.toMatchObject({ code: '23503' })
    expect(await count(db.current, 'analytics.events', `name in ('test.fine', 'test.ghost')`)).toBe(0)
  })

  it("records a real tenant's events, and deleting the tenant deletes its events, keys and daily uniques (the old cascade)", async () => {
    const tenant = await makeTenant(db.current.sql)
    const kept = await makeTenant(db.current.sql)
    for (const t of [tenant, kept]) {
      await withTenant(db.current.sql, t.id, (tx) => recordEvents(tx, [{ name: 'test.cascade', occurredAt: new Date(), dedupeKey: `test:cascade:${t.id}` }]))
    }
    expect(await count(db.current, 'analytics.events', `name = 'test.cascade'`)).toBe(2)
    for (const t of [tenant, kept]) {
      await withTenant(db.current.sql, t.id, (tx) => tx`
        insert into analytics.daily_uniques (tenant_id, day, name, kind, subject) values (${t.id}, current_date, 'test.cascade', 'visitor', 'anon-1')`)
    }
    // What an operator's manual delete does (the product archives tenants; their other rows cascade by foreign key).
    await db.current.owner`delete from core.tenants where id = ${tenant.id}`
    expect(await count(db.current, 'analytics.events', `tenant_id = '${tenant.id}'`)).toBe(0)
    expect(await count(db.current, 'analytics.event_keys', `tenant_id = '${tenant.id}'`)).toBe(0)
    expect(await count(db.current, 'analytics.events', `tenant_id = '${kept.id}'`)).toBe(1)
    expect(await count(db.current, 'analytics.event_keys', `tenant_id = '${kept.id}'`)).toBe(1)
    expect(await count(db.current, 'analytics.daily_uniques', `tenant_id = '${tenant.id}'`)).toBe(0)
    expect(await count(db.current, 'analytics.daily_uniques', `tenant_id = '${kept.id}'`)).toBe(1)
  })
})
