import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../../lib/http/create-server.js'
import { bearer, buildTestApi, buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeForm } from '../../../../test/factories/marketing-rows.js'
import { makeApiKey, makeTenant, type TestTenant } from '../../../../test/factories/tenants.js'
import { count, drainJobs } from '../../../../test/whatsapp.js'
import type { FormView } from '../../../../domains/marketing/forms/views.js'

describe('the form submission inbox: parked submissions are visible and can be replayed', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let tenant: TestTenant
  let form: FormView
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    api = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me', policyVersion: 'v1' } })
    // A failure processing cannot fix by itself, until someone fixes its cause.
    await db.current.owner.unsafe(`
      create function public.refuse_poison() returns trigger language plpgsql as $$ begin raise exception 'poison submission'; end $$;
      create trigger refuse_poison before insert on marketing.form_submissions for each row
        when (new.answers->>'name' like 'POISON%') execute function public.refuse_poison();`)
  })
  afterAll(async () => {
    await webhooks.close()
    await api.close()
  })

  /** Posts a submission that will fail, and runs the worker until it is parked (one attempt allowed alone). */
  async function parkedSubmission(): Promise<string> {
    const res = await webhooks.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload: { name: 'POISON pill', email: `p${Date.now()}@example.com`, consent: true } })
    expect(res.statusCode).toBe(201)
    const id = res.json().submissionId as string
    await drainJobs(db.current)
    await db.current.owner`update graphile_worker._private_jobs set max_attempts = 2, run_at = now() where key = ${`marketing:submission:${id}`}`
    await drainJobs(db.current)
    return id
  }

  it('lists a parked submission with its error, and applies it exactly once after a replay', async () => {
    const id = await parkedSubmission()
    const parked = await api.inject({ method: 'GET', url: '/v1/forms/inbox?status=parked', headers: bearer(tenant.adminKey) })
    expect(parked.statusCode).toBe(200)
    expect(parked.json().data).toEqual([expect.objectContaining({ id, formId: form.id, status: 'parked', lastError: expect.stringContaining('poison submission') })])

    await db.current.owner.unsafe('drop trigger refuse_poison on marketing.form_submissions')
    for (let i = 0; i < 2; i++) {
      const replay = await api.inject({ method: 'POST', url: `/v1/forms/inbox/${id}/replay`, headers: bearer(tenant.adminKey) })
      expect(replay.statusCode).toBe(202)
    }
    await drainJobs(db.current)
    expect(await count(db.current, 'marketing.form_submissions', `id = '${id}'`)).toBe(1)
    expect(await count(db.current, 'marketing.form_submission_inbox', `id = '${id}'`)).toBe(0)
    // Nothing left to replay.
    expect((await api.inject({ method: 'POST', url: `/v1/forms/inbox/${id}/replay`, headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    const audit = await api.inject({ method: 'GET', url: '/v1/audit-log', headers: bearer(tenant.adminKey) })
    expect(audit.json().data.map((e: { action: string }) => e.action)).toContain('form_submission.replayed')
  })

  describe('errors and security', () => {
    it('refuses a bad status filter (400), a read-only key on replay (403), and an unknown id (404)', async () => {
      expect((await api.inject({ method: 'GET', url: '/v1/forms/inbox?status=lost', headers: bearer(tenant.adminKey) })).statusCode).toBe(400)
      const reader = await makeApiKey(db.current.sql, tenant, 'read_only')
      expect((await api.inject({ method: 'POST', url: '/v1/forms/inbox/6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11/replay', headers: bearer(reader.key) })).statusCode).toBe(403)
      expect((await api.inject({ method: 'POST', url: '/v1/forms/inbox/6f1c1a60-4c7d-4c43-9a57-4f7f6a1e0c11/replay', headers: bearer(tenant.adminKey) })).statusCode).toBe(404)
    })

    it("lets another tenant neither see nor replay this tenant's parked submission", async () => {
      await db.current.owner.unsafe(`
        create trigger refuse_poison before insert on marketing.form_submissions for each row
          when (new.answers->>'name' like 'POISON%') execute function public.refuse_poison();`)
      const id = await parkedSubmission()
      const other = await makeTenant(db.current.sql)
      const list = await api.inject({ method: 'GET', url: '/v1/forms/inbox', headers: bearer(other.adminKey) })
      expect(list.json().data.map((e: { id: string }) => e.id)).not.toContain(id)
      expect((await api.inject({ method: 'POST', url: `/v1/forms/inbox/${id}/replay`, headers: bearer(other.adminKey) })).statusCode).toBe(404)
      expect((await db.current.owner<{ status: string }[]>`select status from marketing.form_submission_inbox where id = ${id}`)[0]!.status).toBe('parked')
    })
  })
})
