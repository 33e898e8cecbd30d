import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { Pseudonyms } from '../../../lib/crypto.js'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import { startPosthogEmulator, type PosthogEmulator } from '../../../ops/emulators/posthog.js'
import { buildTaskList } from '../../../services/workers/tasks/index.js'
import { workerLogger } from '../../../services/workers/worker.js'
import { bearer, buildTestApi, testConfig, testLogger } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { linkAnonymousIds } from '../platform-events.js'
import { recordEvents } from '../service.js'
import { deletePosthogPersonsDue, deletionOptionsFrom } from './deletions.js'
import { distinctIdOf, forwardDue, type ForwardOptions } from './forward.js'

const OPERATOR_KEY = 'phc_operator_project_key'
const OPERATOR_PERSONAL = 'phx_operator_personal_key'
const TENANT_KEY = 'phc_tenant_own_project_key'
const TENANT_PERSONAL = 'phx_tenant_personal_key'

describe("PostHog: a tenant's own project, and an erased person's persons deleted in PostHog (the emulator, over HTTP)", () => {
  const db = useTestDatabase()
  let posthog: PosthogEmulator
  let api: App
  let own: TestTenant
  let shared: TestTenant
  const pseudonyms = Pseudonyms.fromConfig(undefined)
  const config = (extra: Record<string, string> = {}) => testConfig({ POSTHOG_API_KEY: OPERATOR_KEY, POSTHOG_HOST: posthog.url, POSTHOG_ALLOWED_HOSTS: posthog.url, ...extra })

  const forward = (overrides: Partial<ForwardOptions> = {}) => forwardDue(db.current.sql, {
    apiKey: OPERATOR_KEY, host: posthog.url, pseudonyms, batchSize: 100, maxAttempts: 3, retryBaseMs: 60_000, retryMaxMs: 600_000, requestTimeoutMs: 2000, ...overrides,
  }, 30_000)
  const put = (t: TestTenant, payload: Record<string, unknown>) => api.inject({ method: 'PUT', url: '/v1/analytics/posthog', headers: bearer(t.adminKey), payload })
  const deletions = (t: TestTenant) => db.current.owner<{ project: string; distinctId: string; status: string; attempts: number; lastError: string | null }[]>`
    select project, distinct_id, status, attempts, last_error from analytics.posthog_person_deletions where tenant_id = ${t.id} order by project, distinct_id`
  const run = async (task: 'privacy__erase_subject' | 'analytics__delete_posthog_persons', extra: Record<string, string> = {}) => {
    const deps = { config: config(extra), sql: db.current.sql, log: testLogger() }
    await runOnce({ connectionString: db.current.runtimeUrl, taskList: { [task]: buildTaskList(deps)[task]! }, logger: workerLogger(deps.log), concurrency: 1 })
  }

  beforeAll(async () => {
    posthog = await startPosthogEmulator({ apiKeys: [OPERATOR_KEY, TENANT_KEY], personalApiKeys: [OPERATOR_PERSONAL, TENANT_PERSONAL] })
    api = await buildTestApi(db.current, { POSTHOG_API_KEY: OPERATOR_KEY, POSTHOG_HOST: posthog.url, POSTHOG_ALLOWED_HOSTS: posthog.url })
    own = await makeTenant(db.current.sql)
    shared = await makeTenant(db.current.sql)
    expect((await put(shared, { enabled: true })).statusCode).toBe(200)
  })
  afterAll(async () => {
    await api?.close()
    await posthog?.stop()
  })
  beforeEach(() => posthog.reset())

  it("forwards to the tenant's own project with its key, which is sealed and never shown; others go to the operator's", async () => {
    const res = await put(own, { enabled: true, project: { apiKey: TENANT_KEY, host: posthog.url, personalApiKey: TENANT_PERSONAL, projectId: '42' } })
    expect(res.statusCode).toBe(200)
    expect(res.json().project).toEqual({ host: posthog.url, apiKeyHint: 'phc_…_key', projectId: '42', appHost: posthog.url, canDeletePersons: true })
    expect(res.json().configured).toBe(true)
    expect(res.body).not.toContain(TENANT_KEY)
    expect(res.body).not.toContain(TENANT_PERSONAL)
    const [stored] = await db.current.owner<{ row: string }[]>`select to_jsonb(s)::text as row from analytics.posthog_settings s where tenant_id = ${own.id}`
    expect(stored!.row).not.toContain(TENANT_KEY)
    expect(stored!.row).not.toContain(TENANT_PERSONAL)
    const [audit] = await db.current.owner<{ details: string }[]>`
      select details::text from core.audit_log where tenant_id = ${own.id} and action = 'analytics.posthog_settings_changed' order by id desc limit 1`
    expect(audit!.details).not.toContain(TENANT_KEY)

    await withTenant(db.current.sql, own.id, (tx) => recordEvents(tx, [{ name: 'lead.created', occurredAt: new Date() }]))
    await withTenant(db.current.sql, shared.id, (tx) => recordEvents(tx, [{ name: 'lead.created', occurredAt: new Date() }]))
    // Without the operator's key, the tenant with its own project still forwards; the shared one's row waits.
    expect((await forward({ apiKey: null })).sent).toBe(1)
    expect(posthog.events.map((e) => [e.apiKey, e.properties.$groups])).toEqual([[TENANT_KEY, undefined]])
    expect((await forward()).sent).toBe(1)
    expect(posthog.events.map((e) => e.apiKey)).toEqual([TENANT_KEY, OPERATOR_KEY])
    expect(posthog.events[1]!.properties.$groups).toEqual({ tenant: shared.id })
  })

  it('refuses a host outside POSTHOG_ALLOWED_HOSTS, or a personal key without its project id, and changes nothing', async () => {
    const before = (await api.inject({ method: 'GET', url: '/v1/analytics/posthog', headers: bearer(own.adminKey) })).json()
    const cases: [unknown, string][] = [
      [{ apiKey: TENANT_KEY, host: 'http://169.254.169.254' }, 'project.host'],
      [{ apiKey: TENANT_KEY, appHost: 'https://internal.example' }, 'project.appHost'],
      [{ apiKey: TENANT_KEY, personalApiKey: TENANT_PERSONAL }, 'project.projectId'],
      [{ apiKey: 'has a space' }, 'project.apiKey'],
      [{ apiKey: TENANT_KEY, host: `${posthog.url}/some/path` }, 'project.host'],
    ]
    for (const [project, path] of cases) {
      const res = await put(own, { enabled: false, project })
      expect(res.statusCode, JSON.stringify(project)).toBe(400)
      expect(res.json().error.details.map((d: { path: string }) => d.path)).toContain(path)
    }
    const after = (await api.inject({ method: 'GET', url: '/v1/analytics/posthog', headers: bearer(own.adminKey) })).json()
    expect(after).toEqual(before)
  })

  it('erasure deletes the persons of the lead and of its linked visitor in both projects, events included', async () => {
    const subject = await withTenant(db.current.sql, own.id, (tx) => makeLead(tx, own.id, { email: 'erase.me@example.com' }))
    const keep = await withTenant(db.current.sql, own.id, (tx) => makeLead(tx, own.id, { email: 'keep.me@example.com' }))
    await withTenant(db.current.sql, own.id, async (tx) => {
      await recordEvents(tx, [
        { name: 'page.viewed', anonymousId: 'visitor-7', occurredAt: new Date() },
        { name: 'lead.created', leadId: subject.id, occurredAt: new Date() },
        { name: 'lead.created', leadId: keep.id, occurredAt: new Date() },
      ])
      await linkAnonymousIds(tx, [{ anonymousId: 'visitor-7', leadId: subject.id, via: 'form' }])
    })
    await forward()
    const leadDistinct = distinctIdOf(pseudonyms, own.id, { leadId: subject.id, anonymousId: null }).id
    const visitorDistinct = distinctIdOf(pseudonyms, own.id, { leadId: null, anonymousId: 'visitor-7' }).id
    const keepDistinct = distinctIdOf(pseudonyms, own.id, { leadId: keep.id, anonymousId: null }).id
    expect(posthog.events.map((e) => e.distinctId).sort()).toEqual([leadDistinct, visitorDistinct, keepDistinct].sort())

    const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(own.adminKey), payload: { leadId: subject.id } })
    expect(posted.statusCode).toBe(202)
    await run('privacy__erase_subject')
    const receipt = (await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${posted.json().id}`, headers: bearer(own.adminKey) })).json().receipt
    expect(receipt.tables).toContainEqual({ table: 'posthog:persons', deleted: 4, anonymised: 0 })
    expect((await deletions(own)).map((d) => d.status)).toEqual(['pending', 'pending', 'pending', 'pending'])

    // The erasure enqueued the drain; it runs with the operator's personal key configured.
    await run('analytics__delete_posthog_persons', { POSTHOG_PERSONAL_API_KEY: OPERATOR_PERSONAL, POSTHOG_PROJECT_ID: '7' })
    const asked = posthog.deletions.map((d) => ({ projectId: d.projectId, ids: [...d.distinctIds].sort(), deleteEvents: d.deleteEvents })).sort((a, b) => a.projectId.localeCompare(b.projectId))
    const ids = [leadDistinct, visitorDistinct].sort()
    expect(asked).toEqual([{ projectId: '42', ids, deleteEvents: true }, { projectId: '7', ids, deleteEvents: true }])
    expect(posthog.events.map((e) => e.distinctId)).toEqual([keepDistinct])
    expect((await deletions(own)).map((d) => d.status)).toEqual(['requested', 'requested', 'requested', 'requested'])
    const view = (await api.inject({ method: 'GET', url: '/v1/analytics/posthog', headers: bearer(own.adminKey) })).json()
    expect(view.personDeletions).toMatchObject({ pending: 0, requested: 4, manual: 0, parked: 0 })
    // Nothing of the person went over the wire in the deletion requests either.
    expect(posthog.bodies()).not.toContain('erase.me@example.com')
    expect(posthog.bodies()).not.toContain(subject.id)
  })

  it('retries PostHog being down, parks a refused key at once, and lists a project without a personal key as manual', async () => {
    const tenant = await makeTenant(db.current.sql)
    expect((await put(tenant, { enabled: true, project: { apiKey: TENANT_KEY, host: posthog.url } })).statusCode).toBe(200)
    const lead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { email: 'down@example.com' }))
    const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { leadId: lead.id } })
    await run('privacy__erase_subject')
    expect(await deletions(tenant)).toHaveLength(2)

    const options = (extra: Record<string, string>, aheadMs = 0) => deletionOptionsFrom(config(extra), { retryBaseMs: 60_000, now: () => new Date(Date.now() + aheadMs) })
    posthog.failNext(503)
    let r = await deletePosthogPersonsDue(db.current.sql, options({ POSTHOG_PERSONAL_API_KEY: OPERATOR_PERSONAL, POSTHOG_PROJECT_ID: '7' }), 10_000)
    // The tenant's own project has no personal key: manual, with the reason; the operator's answered 503: retried later.
    expect(r).toMatchObject({ manual: 1, failed: 1, parked: 0, requested: 0 })
    let rows = await deletions(tenant)
    expect(rows.find((d) => d.project === 'tenant')).toMatchObject({ status: 'manual', lastError: expect.stringContaining('no personal API key') })
    expect(rows.find((d) => d.project === 'operator')).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringContaining('503') })

    r = await deletePosthogPersonsDue(db.current.sql, options({ POSTHOG_PERSONAL_API_KEY: 'phx_revoked_key', POSTHOG_PROJECT_ID: '7' }, 120_000), 10_000)
    expect(r).toMatchObject({ failed: 1, parked: 1 })
    rows = await deletions(tenant)
    expect(rows.find((d) => d.project === 'operator')).toMatchObject({ status: 'parked', lastError: expect.stringContaining('401') })
    expect(posthog.deletions).toEqual([])
    expect(posted.statusCode).toBe(202)
  })
})
