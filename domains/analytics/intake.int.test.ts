import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { isDatabaseUnavailable } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { count } from '../../test/whatsapp.js'
import type { IntakeEvent } from './schemas.js'
import { EventInbox, processEvents } from './service.js'

const event = (overrides: Partial<IntakeEvent> = {}): IntakeEvent => ({
  id: randomUUID(), name: 'pricing.viewed', type: 'page', occurredAt: new Date().toISOString(), anonymousId: 'anon-1', properties: {}, context: {}, ...overrides,
})

describe('the event inbox and analytics__process_events', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })

  it('counts an id that concurrent requests of one tenant carry once, for the request whose flush stored it; another tenant has its own', async () => {
    const inbox = new EventInbox(db.current.sql)
    const shared = event()
    const results = await Promise.all([
      inbox.store({ tenantId: tenant.id, source: 'api', events: [shared, event()] }),
      inbox.store({ tenantId: tenant.id, source: 'api', events: [shared] }),
      inbox.store({ tenantId: other.id, source: 'site', events: [shared] }),
    ])
    // The shared id is stored once for the tenant and counted for exactly one of its two requests: the first in a
    // flush, or, when the two went in the two flushes in flight, the one whose flush took the key first.
    const [first, second, third] = results
    expect([first, second]).toContainEqual(expect.objectContaining({ duplicates: 1 }))
    expect(first!.accepted + second!.accepted).toBe(2)
    expect(first!.duplicates + second!.duplicates).toBe(1)
    expect(third).toEqual({ accepted: 1, duplicates: 0 })
    expect(await count(db.current, 'analytics.events', `event_id = '${shared.id}'`)).toBe(2)
    expect(await count(db.current, 'analytics.event_inbox', `id = '${shared.id}'`)).toBe(0)
  })

  it('records a request PostgreSQL refuses through the inbox, parking only the offender, while the requests committed with it are recorded directly', async () => {
    await db.current.owner.unsafe(`
      create function test_refuse_toxic() returns trigger language plpgsql as $$
      begin if new.name = 'toxic.event' then raise exception 'refused for the test'; end if; return new; end $$;
      create trigger refuse_toxic before insert on analytics.events for each row execute function test_refuse_toxic();`)
    try {
      const inbox = new EventInbox(db.current.sql)
      const neighbour = [event(), event()]
      const good = event()
      const toxic = event({ name: 'toxic.event' })
      // Concurrent requests share a flush; the refused statement is retried request by request.
      const results = await Promise.all([
        inbox.store({ tenantId: tenant.id, source: 'api', events: neighbour }),
        inbox.store({ tenantId: tenant.id, source: 'api', events: [good, toxic] }),
      ])
      expect(results).toEqual([{ accepted: 2, duplicates: 0 }, { accepted: 2, duplicates: 0 }])
      expect(await count(db.current, 'analytics.events', `event_id in ('${neighbour[0]!.id}', '${neighbour[1]!.id}')`)).toBe(2)
      // The refused request waits in the inbox, durable, with its job; processing moves the good one and parks the other.
      expect(await count(db.current, 'analytics.event_inbox', `id in ('${good.id}', '${toxic.id}') and status = 'received'`)).toBe(2)
      expect(await processEvents(db.current.sql, tenant.id, [good.id, toxic.id], isDatabaseUnavailable)).toEqual({ moved: 1, parked: [toxic.id] })
      expect(await count(db.current, 'analytics.events', `event_id = '${good.id}'`)).toBe(1)
      // Sent again, an id waiting in the inbox or already recorded is a duplicate.
      expect(await inbox.store({ tenantId: tenant.id, source: 'api', events: [good, neighbour[0]!, toxic] })).toEqual({ accepted: 0, duplicates: 3 })
    } finally {
      await db.current.owner.unsafe('drop trigger refuse_toxic on analytics.events; drop function test_refuse_toxic()')
    }
  })

  it('retries a failing event alone and parks it with its error; the rest of its batch is moved', async () => {
    // A value analytics.events refuses (as a future constraint could): the real statement fails for that row only.
    await db.current.owner.unsafe(`
      create function test_refuse_poison() returns trigger language plpgsql as $$
      begin if new.name = 'poison.event' then raise exception 'refused for the test'; end if; return new; end $$;
      create trigger refuse_poison before insert on analytics.events for each row execute function test_refuse_poison();`)
    const inbox = new EventInbox(db.current.sql)
    const good = [event(), event()]
    const poison = event({ name: 'poison.event' })
    await inbox.store({ tenantId: tenant.id, source: 'api', events: [good[0]!, poison, good[1]!] })
    const result = await processEvents(db.current.sql, tenant.id, [good[0]!.id, poison.id, good[1]!.id], isDatabaseUnavailable)
    expect(result).toEqual({ moved: 2, parked: [poison.id] })
    expect(await count(db.current, 'analytics.events', `event_id in ('${good[0]!.id}', '${good[1]!.id}')`)).toBe(2)
    const [parked] = await db.current.owner<{ status: string; attempts: number; lastError: string }[]>`
      select status, attempts, last_error from analytics.event_inbox where id = ${poison.id}`
    expect(parked).toMatchObject({ status: 'parked', attempts: 1, lastError: expect.stringMatching(/refused for the test/) })
    // A replay neither moves the parked event nor adds the others again.
    expect(await processEvents(db.current.sql, tenant.id, [good[0]!.id, poison.id, good[1]!.id], isDatabaseUnavailable)).toEqual({ moved: 0, parked: [] })
    await db.current.owner.unsafe('drop trigger refuse_poison on analytics.events; drop function test_refuse_poison()')
  })
})
