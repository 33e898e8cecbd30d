import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { count, drainJobs } from '../../../../test/whatsapp.js'
import { isDatabaseUnavailable } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { EventInbox, processEvents } from '../../../../domains/analytics/service.js'

const event = (name = 'pricing.viewed') => ({ id: randomUUID(), name, type: 'track' as const, occurredAt: new Date().toISOString(), anonymousId: 'anon-7', properties: { plan: 'pro' }, context: {} })

describe('/v1/analytics/inbox: parked client events', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  let readKey: string
  const parked = event('poison.event')
  const good = event()

  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
    readKey = (await makeApiKey(db.current.sql, tenant, 'read_only')).key
    // A fault analytics.events raises for one event only, so the real processing parks exactly that one.
    await db.current.owner.unsafe(`
      create function test_refuse_poison() returns trigger language plpgsql as $$
      begin if new.name = 'poison.event' then raise exception 'refused for the test'; end if; return new; end $$;
      create trigger refuse_poison before insert on analytics.events for each row execute function test_refuse_poison();`)
    await new EventInbox(db.current.sql).store({ tenantId: tenant.id, source: 'api', events: [good, parked] })
    expect(await processEvents(db.current.sql, tenant.id, [good.id, parked.id], isDatabaseUnavailable)).toEqual({ moved: 1, parked: [parked.id] })
    await db.current.owner.unsafe('drop trigger refuse_poison on analytics.events; drop function test_refuse_poison()')
  })

  const list = (key: string) => app.inject({ method: 'GET', url: '/v1/analytics/inbox', headers: bearer(key) })
  const replay = (key: string, id: string) => app.inject({ method: 'POST', url: `/v1/analytics/inbox/${id}/replay`, headers: bearer(key) })

  it('lists the parked event with its error and without its properties', async () => {
    const res = await list(readKey)
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.data).toEqual([expect.objectContaining({ id: parked.id, name: 'poison.event', attempts: 1, lastError: expect.stringMatching(/refused for the test/) })])
    expect(JSON.stringify(body)).not.toContain('pro')
  })

  it("keeps another tenant's parked events out of sight and out of reach (404), and a read-only key cannot replay (403)", async () => {
    expect((await list(other.adminKey)).json().data).toEqual([])
    expect((await replay(other.adminKey, parked.id)).statusCode).toBe(404)
    expect((await replay(readKey, parked.id)).statusCode).toBe(403)
    expect(await count(db.current, 'analytics.event_inbox', `id = '${parked.id}' and status = 'parked'`)).toBe(1)
  })

  it('replays it once the cause is gone: recorded once, gone from the inbox, audited; a second replay is 404', async () => {
    expect((await replay(tenant.adminKey, good.id)).statusCode).toBe(404)
    const res = await replay(tenant.adminKey, parked.id)
    expect(res.statusCode).toBe(202)
    expect((await replay(tenant.adminKey, parked.id)).statusCode).toBe(404)
    await drainJobs(db.current)
    expect(await count(db.current, 'analytics.events', `event_id = '${parked.id}'`)).toBe(1)
    expect(await count(db.current, 'analytics.event_inbox', `id = '${parked.id}'`)).toBe(0)
    expect(await count(db.current, 'core.audit_log', `action = 'analytics_event.replayed' and target_id = '${parked.id}'`)).toBe(1)
    expect((await list(readKey)).json().data).toEqual([])
  })
})
