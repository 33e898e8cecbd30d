import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../../lib/db.js'
import type { App } from '../../../../lib/http/create-server.js'
import { bucketUnit } from '../../../../domains/experiments/hashing.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeLead } from '../../../../test/factories/marketing-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

const twoArms = [{ key: 'control', weight: 0.5 }, { key: 'treatment', weight: 0.5 }]

describe('experiments API', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let other: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    other = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, key = tenant.adminKey) =>
    app.inject({ method, url: `/v1/experiments${url}`, headers: bearer(key), ...(payload === undefined ? {} : { payload: payload as object }) })
  const create = (body: Record<string, unknown>, key = tenant.adminKey) =>
    call('POST', '', { name: 'Greeting', variations: twoArms, ...body }, key)
  const lead = (t: TestTenant = tenant, overrides: Parameters<typeof makeLead>[2] = {}) => withTenant(db.current.sql, t.id, (tx) => makeLead(tx, t.id, overrides))
  const countRows = async (tenantId: string) => (await db.current.owner<{ n: number }[]>`
    select (select count(*) from experiments.experiments where tenant_id = ${tenantId}) + (select count(*) from experiments.assignments where tenant_id = ${tenantId}) as n`)[0]!.n

  it('creates a draft with the key as its seed, starts it (phase 1), pauses, resumes and stops it, auditing each step', async () => {
    const res = await create({ key: 'greeting-v1', hypothesis: 'A warmer greeting qualifies more leads', goals: [{ event: 'lead.qualified', windowHours: 72 }] })
    expect(res.statusCode).toBe(201)
    const e = res.json()
    expect(e).toMatchObject({ key: 'greeting-v1', seed: 'greeting-v1', status: 'draft', unit: 'lead', hashVersion: 2, coverage: 1, phase: 0, startedAt: null })
    expect((await call('POST', `/${e.id}/start`)).json()).toMatchObject({ status: 'running', phase: 1, startedAt: expect.any(String) })
    expect((await call('POST', `/${e.id}/start`)).json()).toMatchObject({ status: 'running', phase: 1 })
    expect((await call('POST', `/${e.id}/pause`)).json()).toMatchObject({ status: 'paused' })
    expect((await call('POST', `/${e.id}/start`)).json()).toMatchObject({ status: 'running', phase: 1 })
    expect((await call('POST', `/${e.id}/stop`)).json()).toMatchObject({ status: 'stopped', stoppedAt: expect.any(String) })
    const detail = (await call('GET', `/${e.id}`)).json()
    expect(detail.phases).toEqual([{ phase: 1, variations: twoArms, coverage: 1, startedAt: expect.any(String), endedAt: expect.any(String) }])
    const audit = await db.current.owner<{ action: string }[]>`select action from core.audit_log where target_id = ${e.id} order by id`
    expect(audit.map((a) => a.action)).toEqual(['experiment.created', 'experiment.started', 'experiment.paused', 'experiment.started', 'experiment.stopped'])
    expect((await call('GET', '?status=stopped')).json().data.map((x: { id: string }) => x.id)).toContain(e.id)
  })

  it('refuses to edit a running experiment\'s variations in place (409) and starts a new phase for them instead', async () => {
    const e = (await create({ key: 'phased' })).json()
    expect((await call('PATCH', `/${e.id}`, { variations: [{ key: 'a', weight: 0.3 }, { key: 'b', weight: 0.7 }] })).statusCode).toBe(200)
    await call('POST', `/${e.id}/start`)
    const l = await lead()
    const first = (await call('POST', '/assign', { leadId: l.id })).json().assignments.find((a: { experimentKey: string }) => a.experimentKey === 'phased')
    expect(first).toMatchObject({ phase: 1, isNew: true })

    for (const patch of [{ variations: twoArms }, { coverage: 0.5 }, { seed: 'other' }, { namespace: { id: 'ns', start: 0, end: 0.5 } }]) {
      const res = await call('PATCH', `/${e.id}`, patch)
      expect(res.statusCode, JSON.stringify(patch)).toBe(409)
      expect(res.json().error.code).toBe('CONFLICT')
    }
    expect((await call('PATCH', `/${e.id}`, { name: 'Renamed', targeting: { attribute: 'country', op: 'eq', value: 'BR' } })).statusCode).toBe(200)

    const next = await call('POST', `/${e.id}/phases`, { variations: [{ key: 'a', weight: 0.1 }, { key: 'b', weight: 0.9 }] })
    expect(next.statusCode).toBe(201)
    expect(next.json()).toMatchObject({ phase: 2, variations: [{ key: 'a', weight: 0.1 }, { key: 'b', weight: 0.9 }] })
    // A new phase assigns afresh (targeting applies again: this lead is not in BR).
    const again = await call('POST', '/assign', { leadId: l.id, attributes: { country: 'BR' } })
    expect(again.json().assignments.find((a: { experimentKey: string }) => a.experimentKey === 'phased')).toMatchObject({ phase: 2, isNew: true })
    const phases = (await call('GET', `/${e.id}`)).json().phases
    expect(phases.map((p: { phase: number; endedAt: string | null }) => [p.phase, p.endedAt === null])).toEqual([[1, false], [2, true]])
  })

  it('assigns a lead to every running experiment it qualifies for, as GrowthBook would, in one stored row each, and the first assignment wins', async () => {
    const t = await makeTenant(db.current.sql)
    const keys: string[] = []
    const ids: Record<string, string> = {}
    for (const [key, extra] of [
      ['open', {}],
      ['br-only', { targeting: { attribute: 'country', op: 'eq', value: 'BR' } }],
      ['mx-only', { targeting: { attribute: 'country', op: 'eq', value: 'MX' } }],
      ['vip-and-new', { targeting: { and: [{ attribute: 'tags', op: 'eq', value: 'vip' }, { attribute: 'status', op: 'eq', value: 'new' }] } }],
      ['nobody', { coverage: 0 }],
      ['three-way', { variations: [{ key: 'a', weight: 0.2, value: 'Hi!' }, { key: 'b', weight: 0.3, value: 'Hello!' }, { key: 'c', weight: 0.5, value: 'Hey!' }] }],
      ['visitors', { unit: 'anonymous' }],
    ] as const) {
      const e = (await create({ key, ...extra }, t.adminKey)).json()
      ids[key] = e.id
      await call('POST', `/${e.id}/start`, undefined, t.adminKey)
      keys.push(key)
    }
    await create({ key: 'still-draft' }, t.adminKey)
    const l = await lead(t, { tags: ['vip'] })
    const res = await call('POST', '/assign', { leadId: l.id, attributes: { country: 'BR' } }, t.adminKey)
    expect(res.statusCode).toBe(200)
    const got = res.json().assignments as { experimentKey: string; variationKey: string; variationIndex: number; isNew: boolean; value?: string }[]
    expect(got.map((a) => a.experimentKey)).toEqual(['br-only', 'open', 'three-way', 'vip-and-new'])
    expect(got.every((a) => a.isNew)).toBe(true)
    // The variation is GrowthBook's for (seed = key, id = lead id).
    for (const a of got) {
      const weights = a.experimentKey === 'three-way' ? [0.2, 0.3, 0.5] : [0.5, 0.5]
      expect(a.variationIndex).toBe(bucketUnit({ seed: a.experimentKey, hashVersion: 2, coverage: 1, weights, namespace: null }, l.id))
    }
    expect(got.find((a) => a.experimentKey === 'three-way')!.value).toBe(['Hi!', 'Hello!', 'Hey!'][got.find((a) => a.experimentKey === 'three-way')!.variationIndex])

    // Targeting changes, pausing and stopping do not take a stored assignment away; nothing new is assigned meanwhile.
    await call('PATCH', `/${ids['br-only']}`, { targeting: { attribute: 'country', op: 'eq', value: 'AR' } }, t.adminKey)
    await call('POST', `/${ids['open']}/pause`, undefined, t.adminKey)
    await call('POST', `/${ids['three-way']}/stop`, undefined, t.adminKey)
    const again = (await call('POST', '/assign', { leadId: l.id, attributes: {} }, t.adminKey)).json().assignments
    expect(again.map((a: { experimentKey: string; variationKey: string; isNew: boolean }) => [a.experimentKey, a.variationKey, a.isNew]))
      .toEqual(got.map((a) => [a.experimentKey, a.variationKey, false]))
    const fresh = await lead(t)
    const forFresh = (await call('POST', '/assign', { leadId: fresh.id, attributes: { country: 'BR' } }, t.adminKey)).json().assignments
    expect(forFresh.map((a: { experimentKey: string }) => a.experimentKey)).toEqual([])
    const [rows] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from experiments.assignments where tenant_id = ${t.id}`
    expect(rows!.n).toBe(4)
  })

  it('keeps namespaced experiments mutually exclusive', async () => {
    const t = await makeTenant(db.current.sql)
    for (const [key, start, end] of [['left', 0, 0.5], ['right', 0.5, 1]] as const) {
      const e = (await create({ key, namespace: { id: 'checkout', start, end } }, t.adminKey)).json()
      await call('POST', `/${e.id}/start`, undefined, t.adminKey)
    }
    const counts = { left: 0, right: 0, both: 0 }
    for (let i = 0; i < 40; i++) {
      const l = await lead(t)
      const keys = (await call('POST', '/assign', { leadId: l.id }, t.adminKey)).json().assignments.map((a: { experimentKey: string }) => a.experimentKey)
      if (keys.length === 2) counts.both++
      else if (keys[0] === 'left') counts.left++
      else if (keys[0] === 'right') counts.right++
    }
    expect(counts.both).toBe(0)
    expect(counts.left + counts.right).toBe(40)
    expect(counts.left).toBeGreaterThan(0)
    expect(counts.right).toBeGreaterThan(0)
  })

  it.each<[string, Record<string, unknown>]>([
    ['weights that do not sum to 1', { variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.6 }] }],
    ['weights just outside ±0.01', { variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.489 }] }],
    ['a negative weight', { variations: [{ key: 'a', weight: -0.5 }, { key: 'b', weight: 1.5 }] }],
    ['one variation', { variations: [{ key: 'a', weight: 1 }] }],
    ['no variations', { variations: [] }],
    ['a repeated variation key', { variations: [{ key: 'a', weight: 0.5 }, { key: 'a', weight: 0.5 }] }],
    ['coverage above 1', { coverage: 1.2 }],
    ['coverage below 0', { coverage: -0.1 }],
    ['an unknown hash version', { hashVersion: 3 }],
    ['an unknown operator', { targeting: { attribute: 'country', op: 'like', value: 'B%' } }],
    ['an unknown attribute', { targeting: { attribute: 'phone', op: 'exists', value: true } }],
    ['a namespace whose start is not below its end', { namespace: { id: 'ns', start: 0.5, end: 0.5 } }],
    ['a goal that is not an event name', { goals: [{ event: 'Qualified!', windowHours: 24 }] }],
    ['a bad key', { key: 'Has Spaces' }],
  ])('refuses %s with 400 and stores nothing', async (_, body) => {
    const before = await countRows(other.id)
    const res = await create({ key: 'bad-input', ...body }, other.adminKey)
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: expect.any(Array) })
    expect(await countRows(other.id)).toBe(before)
  })

  it.each<[string, () => Promise<{ statusCode: number }>, number]>([
    ['a repeated key', async () => { await create({ key: 'dup' }); return create({ key: 'dup' }) }, 409],
    ['weights within ±0.01 of 1', () => create({ key: 'nearly', variations: [{ key: 'a', weight: 0.5 }, { key: 'b', weight: 0.495 }] }), 201],
    ['an unknown experiment', () => call('GET', '/00000000-0000-4000-8000-000000000000'), 404],
    ['a malformed experiment id', () => call('GET', '/not-a-uuid'), 400],
    ['stopping a draft', async () => call('POST', `/${(await create({ key: 'draft-stop' })).json().id}/stop`), 409],
    ['a new phase for a draft', async () => call('POST', `/${(await create({ key: 'draft-phase' })).json().id}/phases`, { variations: twoArms }), 409],
    ['restarting a stopped experiment', async () => {
      const e = (await create({ key: 'restart' })).json()
      await call('POST', `/${e.id}/start`)
      await call('POST', `/${e.id}/stop`)
      return call('POST', `/${e.id}/start`)
    }, 409],
    ['deleting a running experiment', async () => {
      const e = (await create({ key: 'del-running' })).json()
      await call('POST', `/${e.id}/start`)
      return call('DELETE', `/${e.id}`)
    }, 409],
    ['deleting a draft', async () => call('DELETE', `/${(await create({ key: 'del-draft' })).json().id}`), 204],
    ['assigning an unknown lead', () => call('POST', '/assign', { leadId: '00000000-0000-4000-8000-000000000000' }), 404],
    ['assigning without a unit', () => call('POST', '/assign', { attributes: { country: 'BR' } }), 400],
    ['assigning with a malformed lead id', () => call('POST', '/assign', { leadId: 'x' }), 400],
  ])('answers %s with the status the issue names', async (_, run, status) => {
    expect((await run()).statusCode).toBe(status)
  })

  describe('security', () => {
    it('lets a read-only key read but not create, change or assign', async () => {
      const readOnly = await makeApiKey(db.current.sql, tenant, 'read_only')
      const e = (await create({ key: 'ro' })).json()
      expect((await call('GET', `/${e.id}`, undefined, readOnly.key)).statusCode).toBe(200)
      expect((await create({ key: 'ro-2' }, readOnly.key)).statusCode).toBe(403)
      expect((await call('POST', `/${e.id}/start`, undefined, readOnly.key)).statusCode).toBe(403)
      expect((await call('POST', '/assign', { anonymousId: 'v1' }, readOnly.key)).statusCode).toBe(403)
    })

    it("shows another tenant nothing of this tenant's experiments and lets it change none, nor assign this tenant's leads", async () => {
      const e = (await create({ key: 'private' })).json()
      await call('POST', `/${e.id}/start`)
      const l = await lead()
      for (const [method, url, body] of [
        ['GET', `/${e.id}`], ['PATCH', `/${e.id}`, { name: 'stolen' }], ['POST', `/${e.id}/pause`], ['POST', `/${e.id}/stop`],
        ['POST', `/${e.id}/phases`, { variations: twoArms }], ['DELETE', `/${e.id}`], ['GET', `/${e.id}/conflicts`],
      ] as const) {
        expect((await call(method, url, body, other.adminKey)).statusCode, `${method} ${url}`).toBe(404)
      }
      expect((await call('GET', '', undefined, other.adminKey)).json().data.map((x: { key: string }) => x.key)).not.toContain('private')
      expect((await call('POST', '/assign', { leadId: l.id }, other.adminKey)).statusCode).toBe(404)
      // Other's visitor with the same anonymous id gets nothing of this tenant's experiments.
      expect((await call('POST', '/assign', { anonymousId: l.id }, other.adminKey)).json().assignments).toEqual([])
      expect((await call('GET', `/${e.id}`)).json()).toMatchObject({ name: 'Greeting', status: 'running' })
      expect((await call('GET', `/${e.id}`, undefined, 'wak_nope')).statusCode).toBe(401)
    })
  })
})
