import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeForm } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { count, drainJobs } from '../../../test/whatsapp.js'
import { processSubmissions } from './process-submissions.js'
import { storeInboxBatches } from './queries.js'
import { PROCESS_SUBMISSIONS_TASK } from './schemas.js'
import type { FormView } from './views.js'

describe('form submissions are applied by the worker, exactly once', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let form: FormView
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    tenant = await makeTenant(db.current.sql)
    form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me', policyVersion: 'v1' } })
    // A database-level failure for one submission: the kind of error processing cannot fix by itself.
    await db.current.owner.unsafe(`
      create function public.refuse_poison() returns trigger language plpgsql as $$
      begin raise exception 'poison submission %', new.id; end $$;
      create trigger refuse_poison before insert on marketing.form_submissions for each row
        when (new.answers->>'name' like 'POISON%') execute function public.refuse_poison();`)
  })
  afterAll(() => app.close())

  const post = async (answers: Record<string, unknown>, f: FormView = form) => {
    const res = await app.inject({ method: 'POST', url: `/forms/${f.publicKey}/submissions`, payload: { consent: true, ...answers } })
    expect(res.statusCode, res.body).toBe(201)
    return res.json().submissionId as string
  }
  const inboxRow = async (id: string) =>
    (await db.current.owner<{ status: string; attempts: number; lastError: string | null }[]>`select status, attempts, last_error from marketing.form_submission_inbox where id = ${id}`)[0]
  const effects = async (id: string) => ({
    submissions: await count(db.current, 'marketing.form_submissions', `id = '${id}'`),
    interactions: await count(db.current, 'marketing.lead_interactions', `dedupe_key = 'form:sub:${id}'`),
    events: await count(db.current, 'analytics.events', `dedupe_key = 'form:sub:${id}'`),
    consents: await count(db.current, 'marketing.consents', `submission_id = '${id}'`),
  })

  it('applies a replayed job, or the same submission in two jobs, once', async () => {
    const email = `once${Date.now()}@example.com`
    const id = await post({ name: 'Ana', email })
    await drainJobs(db.current)
    const once = { submissions: 1, interactions: 1, events: 1, consents: 1 }
    expect(await effects(id)).toEqual(once)
    expect(await inboxRow(id)).toBeUndefined()

    // The batch job again (a worker crash after commit, an operator's replay), twice.
    for (let i = 0; i < 2; i++) {
      await db.current.owner`select graphile_worker.add_job(${PROCESS_SUBMISSIONS_TASK}, json_build_object('tenantId', ${tenant.id}::text, 'submissionIds', array[${id}]))`
    }
    await drainJobs(db.current)
    expect(await effects(id)).toEqual(once)
    expect(await count(db.current, 'marketing.leads', `email = '${email}'`)).toBe(1)
  })

  it('commits submissions of several tenants in one flush, each under its own tenant', async () => {
    const other = await makeTenant(db.current.sql)
    const otherForm = await makeForm(db.current.sql, other, { consent: { required: true, text: 'Contact me', policyVersion: 'v1' } })
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => post({ name: `Mixed ${i}`, email: `mixed${i}.${Date.now()}@example.com` }, i % 2 ? otherForm : form)))
    const stored = await db.current.owner<{ id: string; tenantId: string }[]>`select id, tenant_id from marketing.form_submission_inbox where id = any(${ids}::uuid[])`
    expect(stored).toHaveLength(10)
    for (const row of stored) expect(row.tenantId).toBe(ids.indexOf(row.id) % 2 ? other.id : tenant.id)
    await drainJobs(db.current)
    const applied = await db.current.owner<{ id: string; tenantId: string }[]>`select id, tenant_id from marketing.form_submissions where id = any(${ids}::uuid[])`
    expect(applied).toHaveLength(10)
    for (const row of applied) expect(row.tenantId).toBe(ids.indexOf(row.id) % 2 ? other.id : tenant.id)
  })

  it('leaves no tenant set behind in the transaction that stored a batch', async () => {
    const setting = await db.current.sql.begin(async (tx) => {
      await storeInboxBatches(tx, [{
        tenantId: tenant.id,
        rows: [{
          id: randomUUID(), formId: form.id, ip: null, userAgent: null, referer: null, requestId: null, receivedAt: new Date(),
          submission: { lead: { email: null, phoneE164: null, name: 'Nobody', company: null }, answers: {}, customFields: {}, utm: {}, pageUrl: null, referrer: null, fillSeconds: null, consent: null },
        }],
      }])
      return (await tx<{ t: string | null }[]>`select current_setting('app.tenant_id', true) as t`)[0]!.t
    })
    expect(setting ?? '').toBe('')
  })

  it('lets the good submissions of a batch through when one fails', async () => {
    const good = await post({ name: 'Fine', email: `fine${Date.now()}@example.com` })
    const bad = await post({ name: 'POISON one', email: `poison1.${Date.now()}@example.com` })
    const result = await processSubmissions(db.current.sql, tenant.id, [good, bad])
    expect(result.processed).toEqual([good])
    expect(result.failed).toEqual([{ submissionId: bad, error: expect.stringContaining(`poison submission ${bad}`) }])
    expect(await effects(good)).toEqual({ submissions: 1, interactions: 1, events: 1, consents: 1 })
    expect(await effects(bad)).toEqual({ submissions: 0, interactions: 0, events: 0, consents: 0 })
  })

  it('retries a failing submission alone with backoff, then parks it with its error', async () => {
    const id = await post({ name: 'POISON two', email: `poison2.${Date.now()}@example.com` })
    await drainJobs(db.current)
    // Failed in its batch (and alone right after), handed to its own job, which ran once at once; the next waits.
    expect(await inboxRow(id)).toMatchObject({ status: 'failed', attempts: 2 })
    const key = `marketing:submission:${id}`
    const [job] = await db.current.owner<{ attempts: number; runAt: Date }[]>`select attempts, run_at from graphile_worker._private_jobs where key = ${key}`
    expect(job!.attempts).toBe(1)
    expect(job!.runAt.getTime()).toBeGreaterThan(Date.now())

    // Make each later attempt due now instead of waiting e^n seconds, and allow 3 in all.
    await db.current.owner`update graphile_worker._private_jobs set max_attempts = 3 where key = ${key}`
    for (let attempt = 2; attempt <= 3; attempt++) {
      await db.current.owner`update graphile_worker._private_jobs set run_at = now() where key = ${key}`
      await drainJobs(db.current)
    }
    const parked = await inboxRow(id)
    expect(parked).toMatchObject({ status: 'parked', attempts: 4 })
    expect(parked!.lastError).toContain(`poison submission ${id}`)
    expect(await effects(id)).toEqual({ submissions: 0, interactions: 0, events: 0, consents: 0 })
    expect(await count(db.current, 'graphile_worker._private_jobs', `key = '${key}'`)).toBe(0)
  })
})
