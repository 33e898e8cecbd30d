import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant, type Sql } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { eraseSubjectTask } from '../../services/workers/tasks/privacy__erase_subject.js'
import { workerLogger } from '../../services/workers/worker.js'
import { bearer, buildTestApi, buildTestWebhooks, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase, type TestDatabase } from '../../test/db.js'
import { makeTemplate, runJobs } from '../../test/factories/conversations-rows.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import * as f from '../whatsapp/webhook/fixtures.js'

/**
 * The issue's erasure, end to end through the real routes, the real webhook path, the real bot and the real worker
 * task: a person who filled a form, wrote on WhatsApp, talked to the bot, received a template and has a pending job
 * is erased; then a sweep written here, independent of the product's, finds none of their phone, email, wa_id or
 * name in any column of any table, while the other people's rows are as they were.
 */

const FLOW = {
  name: 'erasure bot', trigger: { type: 'first_message' }, startNodeId: 'greet',
  nodes: [
    { type: 'send_message', id: 'greet', text: 'Hi {{lead.name|there}}!', next: 'ask_email' },
    {
      type: 'ask', id: 'ask_email', text: "What's your email?", answerKey: 'email', input: { kind: 'text', validate: 'email' },
      invalidText: 'That is not an email', maxAttempts: 3, onMaxAttempts: 'bye',
      timeout: { afterSeconds: 3600, reminderText: 'Still there?', thenNodeId: 'bye' }, next: 'save_email',
    },
    { type: 'set_field', id: 'save_email', field: 'email', value: '{{answers.email}}', next: 'remind' },
    {
      type: 'ask', id: 'remind', text: 'Anything else?', answerKey: 'more', input: { kind: 'text' }, invalidText: 'Say again?',
      timeout: { afterSeconds: 3600, reminderText: 'Still there?', thenNodeId: 'bye' }, next: 'bye',
    },
    { type: 'end', id: 'bye', text: 'Thanks!' },
  ],
}

interface Person {
  name: string
  email: string
  /** As typed in the form. */
  phoneTyped: string
  waId: string
}

/**
 * The test's own sweep: every column of a text-like type (text, varchar, char, json, jsonb, bytea, arrays of them) in
 * every table of every schema but PostgreSQL's, read as the owner (a superuser: no policy applies). Rows of `exceptTenant`
 * are left out (another tenant holding the same person is that tenant's business). Answers `table.column` per hit.
 */
async function sweep(owner: Sql, needles: string[], exceptTenant: string): Promise<string[]> {
  const columns = await owner<{ schema: string; table: string; column: string; isBytea: boolean; hasTenant: boolean }[]>`
    select n.nspname as schema, c.relname as table, a.attname as column, t.typname = 'bytea' as is_bytea,
           exists (select 1 from pg_attribute x where x.attrelid = c.oid and x.attname = 'tenant_id' and not x.attisdropped) as has_tenant
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      join pg_type t on t.oid = a.atttypid
     where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
       and (t.typname in ('text', 'varchar', 'bpchar', 'json', 'jsonb', 'bytea', 'name') or t.typname in ('_text', '_varchar', '_json', '_jsonb'))`
  expect(columns.length).toBeGreaterThan(50)
  const hits: string[] = []
  for (const c of columns) {
    const value = c.isBytea ? owner`encode(${owner(c.column)}, 'escape')` : owner`${owner(c.column)}::text`
    const [row] = await owner<{ n: number }[]>`
      select count(*)::int as n from ${owner(c.schema)}.${owner(c.table)}
       where ${c.hasTenant ? owner`tenant_id is distinct from ${exceptTenant}::uuid` : owner`true`}
         and lower(${value}) like any(${needles.map((x) => `%${x.toLowerCase()}%`)}::text[])`
    if (row!.n > 0) hits.push(`${c.schema}.${c.table}.${c.column}`)
  }
  return hits
}

/** Rows per table that belong to a lead (for "the other leads' rows are untouched"). */
async function footprint(owner: Sql, leadId: string) {
  const [row] = await owner<Record<string, number>[]>`
    select (select count(*)::int from marketing.leads where id = ${leadId}) as leads,
           (select count(*)::int from marketing.lead_interactions where lead_id = ${leadId}) as interactions,
           (select count(*)::int from marketing.form_submissions where lead_id = ${leadId}) as submissions,
           (select count(*)::int from marketing.consents where lead_id = ${leadId}) as consents,
           (select count(*)::int from analytics.events where lead_id = ${leadId}) as events,
           (select count(*)::int from whatsapp.messages where lead_id = ${leadId}) as messages,
           (select count(*)::int from conversations.conversations where lead_id = ${leadId}) as conversations,
           (select md5(string_agg(l::text, '')) from marketing.leads l where id = ${leadId}) as lead_row`
  return row!
}

async function makeBotFlow(api: App, tenant: TestTenant) {
  const res = await api.inject({ method: 'POST', url: '/v1/flows', headers: bearer(tenant.adminKey), payload: { document: FLOW, publish: true } })
  expect(res.statusCode, res.body).toBe(201)
}

async function makeConsentForm(api: App, tenant: TestTenant) {
  const res = await api.inject({
    method: 'POST', url: '/v1/forms', headers: bearer(tenant.adminKey),
    payload: {
      name: 'Book a visit',
      fields: [
        { name: 'name', label: 'Name', type: 'text', required: true },
        { name: 'email', label: 'Email', type: 'email' },
        { name: 'phone', label: 'WhatsApp', type: 'phone' },
        { name: 'notes', label: 'Anything else', type: 'text' },
      ],
      allowedOrigins: ['https://clinic.example'],
      consent: { required: false, text: 'Contact me on WhatsApp', policyVersion: 'v1' },
    },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as { id: string; submitPath: string }
}

/** A person's whole life with the tenant, through the product's doors. */
async function live(ctx: { api: App; webhooks: App; db: TestDatabase; wa: WhatsAppEmulator; tenant: TestTenant; number: TestNumber; form: { submitPath: string } }, p: Person) {
  const { api, webhooks, db, wa, tenant, number } = ctx
  const submitted = await webhooks.inject({
    method: 'POST', url: ctx.form.submitPath, headers: { origin: 'https://clinic.example', 'user-agent': `Browser of ${p.name}` },
    payload: { name: p.name, email: p.email, phone: p.phoneTyped, notes: `Call me, ${p.name}`, consent: true, started_at: Date.now() - 20_000 },
  })
  expect(submitted.statusCode).toBe(201)
  await runJobs(db, wa.url)

  const say = async (body: string) => {
    const res = await postDelivery(webhooks, f.delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, displayPhoneNumber: number.displayPhoneNumber,
      contacts: [{ waId: p.waId, name: p.name }], messages: [f.textMessage({ from: p.waId, body })],
    }))
    expect(res.statusCode).toBe(200)
    await runJobs(db, wa.url)
  }
  await say(`Hello, this is ${p.name}`)
  await say(p.email.toUpperCase())

  const [lead] = await db.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and lower(email) = ${p.email.toLowerCase()}`
  const sendTemplate = () => api.inject({
    method: 'POST', url: '/v1/messages', headers: bearer(tenant.adminKey),
    payload: { type: 'template', leadId: lead!.id, template: { name: 'visit_reminder', language: 'en_US', components: [{ type: 'body', parameters: [{ type: 'text', text: p.name }, { type: 'text', text: 'Monday' }] }] } },
  })
  expect((await sendTemplate()).statusCode).toBe(202)
  await runJobs(db, wa.url)
  // A status for a message we never stored (Meta sent it, our row is gone or never was): kept to apply later.
  expect((await postDelivery(webhooks, f.delivery({
    phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, statuses: [f.statusUpdate({ id: f.newWamid(), status: 'delivered', recipientId: p.waId })],
  }))).statusCode).toBe(200)
  await runJobs(db, wa.url)
  // One more template, queued but not sent: a pending job and an open send when the erasure comes.
  expect((await sendTemplate()).statusCode).toBe(202)
  return lead!.id
}

describe('erasing a person everywhere, with a receipt and a verification pass', () => {
  const db = useTestDatabase()
  let api: App
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let other: TestTenant
  let number: TestNumber
  let form: { id: string; submitPath: string }

  const zelda: Person = { name: 'Zelda Quarkfeather', email: 'Zelda.Q@Example.org', phoneTyped: '(11) 98765-4321', waId: '5511987654321' }
  const otto: Person = { name: 'Otto Brennwald', email: 'otto.b@example.org', phoneTyped: '(21) 99876-5432', waId: '5521998765432' }

  beforeAll(async () => {
    api = await buildTestApi(db.current)
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    other = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    number = await makePhoneNumber(db.current.sql, tenant)
    await makeTemplate(db.current.sql, tenant, number, { name: 'visit_reminder', components: [{ type: 'BODY', text: 'Hi {{1}}, see you on {{2}}.' }] })
    await makeBotFlow(api, tenant)
    form = await makeConsentForm(api, tenant)
  })
  afterAll(async () => {
    await api?.close()
    await webhooks?.close()
    await wa?.stop()
  })

  it('leaves no trace of the person in any column of any table, and leaves everyone else as they were', async () => {
    const ctx = { api, webhooks, db: db.current, wa, tenant, number, form }
    const ottoId = await live(ctx, otto)
    await runJobs(db.current, wa.url)
    const zeldaId = await live(ctx, zelda)
    // The same person is also a lead of another tenant: that is the other tenant's data, and it stays.
    const elsewhere = await withTenant(db.current.sql, other.id, (tx) => makeLead(tx, other.id, { email: 'zelda.q@example.org', phoneE164: '+5511987654321', name: zelda.name }))

    // She really is everywhere before: the sweep finds her (so the sweep can fail).
    const needles = [zelda.waId, '11987654321', 'zelda.q@example.org', zelda.name]
    const before = await sweep(db.current.owner, needles, other.id)
    for (const where of ['marketing.leads.email', 'whatsapp.webhook_deliveries.payload', 'whatsapp.messages.content', 'whatsapp.outbound_sends.body',
      'conversations.conversations.state', 'marketing.form_submissions.answers', 'whatsapp.service_windows.wa_id', 'whatsapp.message_statuses.recipient_id']) expect(before).toContain(where)
    const pendingJobs = await db.current.owner<{ n: number }[]>`select count(*)::int as n from graphile_worker._private_jobs where payload::text like '%' || ${zeldaId} || '%' or payload->>'messageId' in (select id::text from whatsapp.messages where lead_id = ${zeldaId})
          or payload->>'conversationId' in (select id::text from conversations.conversations where lead_id = ${zeldaId})`
    expect(pendingJobs[0]!.n).toBeGreaterThan(0)
    const ottoBefore = await footprint(db.current.owner, ottoId)
    const [eventsBefore] = await db.current.owner<{ n: number; mine: number }[]>`select count(*)::int as n, count(*) filter (where lead_id = ${zeldaId})::int as mine from analytics.events where tenant_id = ${tenant.id}`

    const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { phone: '+55 11 98765-4321' } })
    expect(posted.statusCode).toBe(202)
    expect(posted.json()).toMatchObject({ id: expect.any(String), status: 'pending', receipt: null })
    const id = posted.json().id
    // The erasure job first (as if it were next in the queue), then everything else that is due.
    await runOnly(db.current, 'privacy__erase_subject')
    await runJobs(db.current, wa.url)

    const done = await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${id}`, headers: bearer(tenant.adminKey) })
    expect(done.statusCode).toBe(200)
    const view = done.json()
    expect(view).toMatchObject({ status: 'completed', error: null })
    const receipt = view.receipt
    expect(receipt).toMatchObject({ tenantId: tenant.id, subjectKind: 'phone', subjectHash: view.subjectHash, verifiedAt: expect.any(String), suppressedKeys: 3 })
    const line = (table: string) => receipt.tables.find((t: { table: string }) => t.table === table) ?? { deleted: 0, anonymised: 0 }
    expect(line('marketing.leads')).toMatchObject({ deleted: 1 })
    expect(line('marketing.form_submissions')).toMatchObject({ deleted: 1 })
    expect(line('marketing.consents')).toMatchObject({ deleted: 1 })
    expect(line('conversations.conversations')).toMatchObject({ deleted: 1 })
    expect(line('analytics.events')).toMatchObject({ deleted: 0, anonymised: eventsBefore!.mine })
    expect(line('whatsapp.webhook_deliveries').deleted).toBe(3)
    expect(line('whatsapp.message_statuses').deleted).toBeGreaterThanOrEqual(1)
    expect(line('whatsapp.outbound_sends').deleted).toBeGreaterThanOrEqual(2)
    expect(line('whatsapp.messages').deleted).toBeGreaterThanOrEqual(5)
    expect(line('conversations.events').deleted).toBeGreaterThanOrEqual(2)
    expect(line('graphile_worker.jobs').deleted).toBeGreaterThanOrEqual(1)
    expect(line('whatsapp.service_windows').deleted).toBe(1)
    // The receipt names tables and counts, never her.
    expect(JSON.stringify(view).toLowerCase()).not.toMatch(/zelda|11987654321|quarkfeather/)

    // The independent sweep: nothing of her anywhere (the audit log and the job queue included).
    expect(await sweep(db.current.owner, [...needles, 'quarkfeather', '+5511987654321'], other.id)).toEqual([])

    // Everyone else is as they were: Otto's rows, the other tenant's Zelda, and the event counts (anonymised, not deleted).
    expect(await footprint(db.current.owner, ottoId)).toEqual(ottoBefore)
    expect(await footprint(db.current.owner, elsewhere.id)).toMatchObject({ leads: 1 })
    const [eventsAfter] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where tenant_id = ${tenant.id}`
    expect(eventsAfter!.n).toBe(eventsBefore!.n)
    // Her pending send never went out.
    expect(wa.sent.filter((m) => m.to === zelda.waId && m.type === 'template')).toHaveLength(1)

    // Audited with the acting key, the request id and the subject hash: nothing else about her.
    const audit = await db.current.owner<{ action: string; actor: string; requestId: string | null; details: { subjectHash?: string } }[]>`
      select action, actor, request_id, details from core.audit_log where tenant_id = ${tenant.id} and action like 'privacy.%' order by id`
    expect(audit.map((a) => a.action)).toEqual(['privacy.erasure_requested', 'privacy.suppressions_added', 'privacy.erasure_completed'])
    expect(audit.every((a) => a.actor === `api_key:${tenant.adminKeyId}` && a.details.subjectHash === view.subjectHash && a.requestId)).toBe(true)

    // Asking again for the same person answers the first request and its receipt.
    const again = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { phone: '11987654321' } })
    expect(again.statusCode).toBe(202)
    expect(again.json()).toEqual(view)
  })

  it('waits for deliveries about the person that are not processed yet, then erases what they created', async () => {
    const ctx = { api, webhooks, db: db.current, wa, tenant, number, form }
    const p: Person = { name: 'Ivo Hollanderberg', email: 'ivo.h@example.org', phoneTyped: '(31) 98888-7777', waId: '5531988887777' }
    await live(ctx, p)
    // A message of his arrives and is acknowledged, but not processed before the erasure job runs.
    expect((await postDelivery(webhooks, f.delivery({
      phoneNumberId: number.phoneNumberId, wabaId: number.wabaId, contacts: [{ waId: p.waId, name: p.name }], messages: [f.textMessage({ from: p.waId, body: 'one more thing' })],
    }))).statusCode).toBe(200)
    const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { email: p.email } })
    const id = posted.json().id

    // Only the erasure job runs: it finds the unprocessed delivery and holds (throws, to be retried).
    await runOnly(db.current, 'privacy__erase_subject')
    const held = await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${id}`, headers: bearer(tenant.adminKey) })
    expect(held.json()).toMatchObject({ status: 'running', receipt: null })
    const [job] = await db.current.owner<{ lastError: string }[]>`select last_error from graphile_worker.jobs where task_identifier = 'privacy__erase_subject'`
    expect(job!.lastError).toMatch(/not processed yet/)

    // The delivery is processed (a new message and its bot event), then the retried erasure takes it all.
    await runOnly(db.current, ['whatsapp__process_deliveries', 'whatsapp__process_delivery', 'conversations__run_bot'])
    await db.current.owner`update graphile_worker._private_jobs set run_at = now() where task_id = (select id from graphile_worker._private_tasks where identifier = 'privacy__erase_subject')`
    await runOnly(db.current, 'privacy__erase_subject')
    const done = (await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${id}`, headers: bearer(tenant.adminKey) })).json()
    expect(done.status, JSON.stringify(done)).toBe('completed')
    expect(await sweep(db.current.owner, [p.waId, '31988887777', p.email, p.name], other.id)).toEqual([])
  })

  describe('a job that dies mid-way', () => {
    for (const stopAfter of ['resolve', 'whatsapp.messages:lead_id', 'marketing.leads:id']) {
      it(`resumes after dying once "${stopAfter}" committed: the same receipt, nothing doubled`, async () => {
        const waId = `55119${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`
        const p: Person = { name: `Resume ${stopAfter}`, email: `resume-${waId}@example.org`, phoneTyped: `+${waId}`, waId }
        const ctx = { api, webhooks, db: db.current, wa, tenant, number, form }
        const leadId = await live(ctx, p)
        await runJobs(db.current, wa.url) // her second template goes out too: nothing pending to race with
        const mine = await footprint(db.current.owner, leadId)
        const [counts] = await db.current.owner<{ statuses: number; sends: number; events: number }[]>`
          select (select count(*)::int from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id where m.lead_id = ${leadId}) as sends,
                 (select count(*)::int from conversations.events e join conversations.conversations c on c.id = e.conversation_id where c.lead_id = ${leadId}) as events,
                 0 as statuses`
        const posted = await api.inject({ method: 'POST', url: '/v1/privacy/erasure-requests', headers: bearer(tenant.adminKey), payload: { leadId } })
        const id = posted.json().id

        // The real task, with a hook that kills it right after the step commits.
        await runOnly(db.current, 'privacy__erase_subject', (step) => {
          if (step === stopAfter) throw new Error(`killed after ${step}`)
        })
        const [mid] = await db.current.owner<{ status: string; stepsDone: string[] }[]>`select status, steps_done from privacy.erasure_requests where id = ${id}`
        expect(mid).toMatchObject({ status: 'running' })
        expect(mid!.stepsDone.at(-1)).toBe(stopAfter)

        // Run again, to the end.
        await db.current.owner`update graphile_worker._private_jobs set run_at = now()`
        await runOnly(db.current, 'privacy__erase_subject')
        const view = (await api.inject({ method: 'GET', url: `/v1/privacy/erasure-requests/${id}`, headers: bearer(tenant.adminKey) })).json()
        expect(view.status, view.error).toBe('completed')
        const line = (table: string) => view.receipt.tables.find((t: { table: string }) => t.table === table) ?? { deleted: 0, anonymised: 0 }
        expect(line('marketing.leads').deleted).toBe(1)
        expect(line('marketing.lead_interactions').deleted).toBe(mine.interactions)
        expect(line('marketing.form_submissions').deleted).toBe(mine.submissions)
        expect(line('whatsapp.messages').deleted).toBe(mine.messages)
        expect(line('whatsapp.outbound_sends').deleted).toBe(counts!.sends)
        expect(line('conversations.events').deleted).toBe(counts!.events)
        expect(line('analytics.events').anonymised).toBe(mine.events)
        const [steps] = await db.current.owner<{ stepsDone: string[] }[]>`select steps_done from privacy.erasure_requests where id = ${id}`
        expect(new Set(steps!.stepsDone).size).toBe(steps!.stepsDone.length)
        expect(await sweep(db.current.owner, [p.waId, p.email.toLowerCase(), p.name.toLowerCase()], other.id)).toEqual([])
      })
    }
  })
})

/** Runs the due jobs of the given tasks only, as the worker would, optionally with the erasure's step hook. */
async function runOnly(db: TestDatabase, tasks: string | string[], afterStep?: (step: string) => void) {
  const log = testLogger()
  const deps = { config: testConfig(), sql: db.sql, log }
  const all = buildTaskList(deps)
  const names = typeof tasks === 'string' ? [tasks] : tasks
  await runOnce({
    connectionString: db.runtimeUrl,
    taskList: Object.fromEntries(names.map((task) => [task, task === 'privacy__erase_subject' ? eraseSubjectTask(deps, { afterStep }) : all[task]!])),
    logger: workerLogger(log),
    concurrency: 1,
  })
}
