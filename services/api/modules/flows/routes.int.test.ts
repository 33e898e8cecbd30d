import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { demoQualificationFlow } from '../../../../domains/conversations/flows/demo-qualification-flow.js'
import { bearer, buildTestApi } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'

describe('/v1/flows', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
  })
  afterAll(() => app.close())

  const call = (method: 'GET' | 'POST', url: string, payload?: unknown, key = tenant.adminKey) =>
    app.inject({ method, url, headers: bearer(key), ...(payload !== undefined ? { payload: payload as object } : {}) })
  const renamed = (name: string) => ({ ...demoQualificationFlow, name })

  it('creates, versions and publishes a flow; versions never change', async () => {
    const created = await call('POST', '/v1/flows', { document: demoQualificationFlow })
    expect(created.statusCode).toBe(201)
    const { flow, version } = created.json()
    expect(flow).toMatchObject({ name: demoQualificationFlow.name, latestVersion: 1, publishedVersion: null, trigger: { type: 'first_message' } })
    expect(version).toMatchObject({ version: 1, published: false, document: demoQualificationFlow })

    const v2 = await call('POST', `/v1/flows/${flow.id}/versions`, { document: renamed('Qualification v2') })
    expect(v2.json()).toMatchObject({ flow: { latestVersion: 2, publishedVersion: null, name: 'Qualification v2' }, version: { version: 2 } })
    const published = await call('POST', `/v1/flows/${flow.id}/versions/2/publish`)
    expect(published.json()).toMatchObject({ publishedVersion: 2, publishedAt: expect.any(String) })
    const back = await call('POST', `/v1/flows/${flow.id}/versions/1/publish`)
    expect(back.json().publishedVersion).toBe(1)

    const versions = await call('GET', `/v1/flows/${flow.id}/versions`)
    expect(versions.json().data.map((v: { version: number; published: boolean }) => [v.version, v.published])).toEqual([[2, false], [1, true]])
    expect((await call('GET', `/v1/flows/${flow.id}/versions/1`)).json().document).toEqual(demoQualificationFlow)
    expect((await call('POST', `/v1/flows/${flow.id}/unpublish`)).json().publishedVersion).toBeNull()
    expect((await call('GET', '/v1/flows')).json().data.map((f: { id: string }) => f.id)).toContain(flow.id)
    const audit = await db.current.owner`select action from core.audit_log where tenant_id = ${tenant.id} and target_id = ${flow.id} order by id`
    expect(audit.map((a) => a.action)).toEqual(['flow.created', 'flow.version_created', 'flow.published', 'flow.published', 'flow.unpublished'])
  })

  describe('errors', () => {
    it('refuses an invalid document with every problem and its path', async () => {
      const shape = await call('POST', '/v1/flows', { document: { ...demoQualificationFlow, nodes: [...demoQualificationFlow.nodes, { type: 'teleport', id: 'x' }] } })
      expect(shape.statusCode).toBe(400)
      expect(shape.json().error.details.map((d: { path: string }) => d.path)).toEqual([`document.nodes.${demoQualificationFlow.nodes.length}.type`])
      const wiring = await call('POST', '/v1/flows', { document: { ...demoQualificationFlow, startNodeId: 'nowhere' } })
      expect(wiring.statusCode).toBe(400)
      expect(wiring.json().error.details.map((d: { path: string }) => d.path)).toContain('document.startNodeId')
      expect(wiring.json().error.message).toMatch(/no node "nowhere"/)
    })

    it.each([
      ['a flow that does not exist', 'POST', '/v1/flows/00000000-0000-4000-8000-00000000dead/versions/1/publish', 404],
      ['a version that does not exist', 'GET', 'EXISTING/versions/9', 404],
      ['a version beyond the latest', 'POST', 'EXISTING/versions/9/publish', 404],
      ['a malformed id', 'GET', '/v1/flows/not-a-uuid', 400],
    ] as const)('answers %s with %d', async (_name, method, url, status) => {
      const { flow } = (await call('POST', '/v1/flows', { document: demoQualificationFlow })).json()
      expect((await call(method, url.replace('EXISTING', `/v1/flows/${flow.id}`))).statusCode).toBe(status)
    })

    it('lets a read-only key read flows but not change them', async () => {
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await call('POST', '/v1/flows', { document: demoQualificationFlow }, reader.key)).statusCode).toBe(403)
      expect((await call('GET', '/v1/flows', undefined, reader.key)).statusCode).toBe(200)
    })
  })

  it("keeps another tenant away from this tenant's flows", async () => {
    const { flow } = (await call('POST', '/v1/flows', { document: demoQualificationFlow })).json()
    const intruder = await makeTenant(db.current.sql)
    expect((await call('GET', `/v1/flows/${flow.id}`, undefined, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('POST', `/v1/flows/${flow.id}/versions`, { document: demoQualificationFlow }, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('POST', `/v1/flows/${flow.id}/versions/1/publish`, undefined, intruder.adminKey)).statusCode).toBe(404)
    expect((await call('GET', '/v1/flows', undefined, intruder.adminKey)).json().data).toEqual([])
  })
})
