import { randomUUID } from 'node:crypto'
import { makeLeadPartnerRows } from '../../../test/factories/assessment-partners-rows.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../../lib/db.js'
import type { App } from '../../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../../ops/emulators/whatsapp-cloud-api.js'
import { bearer, buildTestWebhooks } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { runJobs } from '../../../test/factories/conversations-rows.js'
import { makeForm } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../test/factories/whatsapp.js'
import { postDelivery } from '../../../test/whatsapp.js'
import { createFlow } from '../../conversations/service.js'
import * as f from '../../whatsapp/webhook/fixtures.js'
import type { FormView } from '../forms/views.js'
import { LEAD_REFERENCES, type LeadReference } from './lead-references.js'
import { leadColumnsToMove, moveHistoryAndRecordMerge } from './queries.js'
import { mergeLeadsManually } from './service.js'
import type { ExperimentView } from '../../experiments/schemas.js'
import { assign } from '../../experiments/service.js'
import { makeExperiment } from '../../../test/factories/experiments-rows.js'
import { completeSessionOf, makeAssessment } from '../../../test/factories/assessments-rows.js'

/**
 * One person, two leads, both talking to the bot: Ana wrote from her personal number (lead S) and from her work
 * number (lead M), to two of the clinic's numbers, and filled the form from each. The clinic merges M into S. Every
 * row the catalog says to move follows her to S, and her conversations carry on where they stood.
 */
describe('merging two leads that both talk to the bot', () => {
  const db = useTestDatabase()
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let main: TestNumber
  let branch: TestNumber
  let form: FormView
  const personal = '5511987650001'
  const work = '5511987650002'

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    main = await makePhoneNumber(db.current.sql, tenant)
    branch = await makePhoneNumber(db.current.sql, tenant)
    form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me on WhatsApp', policyVersion: 'v1' } })
    webhooks = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    wa = await startWhatsAppEmulator({ autoStatuses: false })
    await createFlow(db.current.sql, { tenantId: tenant.id, actor: 'test' }, {
      publish: true,
      document: {
        name: 'booking', trigger: { type: 'first_message' }, startNodeId: 'ask_name',
        nodes: [
          {
            type: 'ask', id: 'ask_name', text: 'Your name?', invalidText: 'Sorry?', answerKey: 'name', input: { kind: 'text' }, next: 'ask_service',
            timeout: { afterSeconds: 3600, reminderText: 'Still there?' },
          },
          { type: 'ask', id: 'ask_service', text: 'Which service?', invalidText: 'Sorry?', answerKey: 'service', input: { kind: 'text' }, next: 'ask_time' },
          { type: 'ask', id: 'ask_time', text: 'When?', invalidText: 'Sorry?', answerKey: 'time', input: { kind: 'text' }, next: 'bye' },
          { type: 'end', id: 'bye', text: 'See you, {{answers.name}}.' },
        ],
      },
    })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
  })

  const jobs = () => runJobs(db.current, wa.url)
  const say = async (from: string, to: TestNumber, body: string) => {
    const res = await postDelivery(webhooks, f.delivery({ wabaId: to.wabaId, phoneNumberId: to.phoneNumberId, messages: [f.textMessage({ from, body })] }))
    expect(res.statusCode).toBe(200)
    await jobs()
  }
  const submit = async (answers: Record<string, unknown>) => {
    const res = await webhooks.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload: { name: 'Ana Lima', consent: true, ...answers } })
    expect(res.statusCode, res.body).toBe(201)
    await jobs()
    const [row] = await db.current.owner<{ leadId: string }[]>`select lead_id from marketing.form_submissions where id = ${res.json().submissionId}`
    return row!.leadId
  }
  const liveLeadOf = async (waId: string) =>
    (await db.current.owner<{ id: string }[]>`select id from marketing.leads where tenant_id = ${tenant.id} and wa_id = ${waId} and merged_into is null`)[0]!.id
  const conversationsOf = (leadId: string) =>
    db.current.owner<{ id: string; phoneNumberId: string; waId: string; state: any; inboundCount: number }[]>`
      select id, phone_number_id, wa_id, state, inbound_count from conversations.conversations where lead_id = ${leadId} order by phone_number_id`
  const conversationOn = async (leadId: string, number: TestNumber) => (await conversationsOf(leadId)).find((c) => c.phoneNumberId === number.id)
  /** What the bot sent on a business number to a WhatsApp number, in order. */
  const botSaid = (waId: string, number: TestNumber) =>
    withTenant(db.current.sql, tenant.id, (tx) => tx<{ body: string }[]>`
      select m.content ->> 'body' as body from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id
       where s.wa_id = ${waId} and s.phone_number_id = ${number.id} and s.source = 'bot' order by s.seq`).then((r) => r.map((x) => x.body))
  const timerJobs = (conversationId: string) =>
    db.current.owner<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs where key = ${`flow-timer:${conversationId}`}`.then((r) => r[0]!.n)
  /** Rows still holding `leadId` in each table and column the catalog says a merge moves. */
  const rowsOnLead = async (leadId: string) => {
    const o = db.current.owner
    const counts: Record<string, number> = {}
    for (const { table, reach, merge } of LEAD_REFERENCES) {
      if (merge.kind !== 'move' || reach.by !== 'lead') continue
      const [row] = await o<{ n: number }[]>`select count(*)::int as n from ${o(table)} where ${o(reach.column)} = ${leadId}`
      counts[`${table}.${reach.column}`] = row!.n
    }
    return counts
  }

  let s: string
  let m: string
  let earlier: string
  /** M's conversation on the branch number, as it stood before the merge. */
  let branchConversation: { id: string; inboundCount: number }
  let experiment: ExperimentView

  it('has two leads for Ana, each with a conversation mid-flow, messages, events, a submission and a consent', async () => {
    await say(personal, main, 'Oi')
    await say(personal, main, 'Ana')
    s = await liveLeadOf(personal)
    expect(await submit({ email: 'ana@example.com', phone: `+${personal}` })).toBe(s)

    await say(work, branch, 'Oi')
    await say(work, branch, 'Ana Lima')
    await say(work, main, 'Hello?')
    m = await liveLeadOf(work)
    expect(m).not.toBe(s)
    // From the site, whose visitor id the form carries: the visitor is linked to M (analytics.identities).
    expect(await submit({ email: 'ana.lima@work.example', phone: `+${work}`, anonymous_id: 'visitor-ana-work' })).toBe(m)
    // An even older duplicate of M (a web lead without a phone), merged into M before: it must follow M to S.
    earlier = await submit({ email: 'ana.old@example.com' })
    // Each of the three was assigned to an experiment (S first, then the older duplicate, then M); M was exposed and has a template exposure pending.
    experiment = await makeExperiment(db.current.sql, tenant)
    for (const lead of [s, earlier, m]) await assign(db.current.sql, tenant.id, { leadId: lead, attributes: {}, source: 'api' })
    await db.current.owner`
      insert into experiments.exposures (tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, source)
      select tenant_id, experiment_id, phase, unit_id, lead_id, variation_key, 'flow' from experiments.assignments where lead_id = ${m}`
    await db.current.owner`
      insert into experiments.pending_exposures (tenant_id, wamid, experiment_id, phase, unit_id, lead_id, variation_key)
      select tenant_id, 'wamid.merge-test', experiment_id, phase, unit_id, lead_id, variation_key from experiments.assignments where lead_id = ${m}`
    // M took an assessment through a partner's link and bought through it (domains/assessments).
    await withTenant(db.current.sql, tenant.id, (tx) => makeLeadPartnerRows(tx, tenant.id, m))
    await mergeLeadsManually(db.current.sql, { tenantId: tenant.id, actor: 'api_key:test', requestId: null }, m, earlier)
    // M took an assessment (its session names M; the merge moves it).
    await completeSessionOf(db.current.sql, tenant, (await makeAssessment(db.current.sql, tenant)).id, undefined, { leadId: m })

    expect((await conversationOn(s, main))!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'ask_service', answers: { name: 'Ana' } })
    expect((await conversationOn(m, branch))!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'ask_service', answers: { name: 'Ana Lima' } })
    expect((await conversationOn(m, main))!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'ask_name' })
    expect(await timerJobs((await conversationOn(m, main))!.id)).toBe(1)
    // A client event naming M (POST /v1/events): recorded in analytics.events at once, under M.
    const sent = await webhooks.inject({
      method: 'POST', url: '/v1/events', headers: bearer(tenant.adminKey),
      payload: { events: [{ id: randomUUID(), name: 'pricing.viewed', type: 'page', occurredAt: new Date().toISOString(), leadId: m }] },
    })
    expect(sent.statusCode, sent.body).toBe(202)
    // And one waiting in the event inbox (where a request PostgreSQL refused goes, parked there if it fails again): the
    // merge must move it too.
    await db.current.owner`
      insert into analytics.event_inbox (tenant_id, id, name, type, occurred_at, lead_id, source, status, attempts, last_error)
      values (${tenant.id}, ${randomUUID()}, 'pricing.viewed', 'page', now(), ${m}, 'api', 'parked', 1, 'refused for the test')`
    // M has rows in every table the catalog moves, so the check after the merge proves something for each.
    const before = await rowsOnLead(m)
    expect(Object.entries(before).filter(([, n]) => n === 0).map(([k]) => k), 'tables the scenario gives M no rows in').toEqual([])
  })

  it('leaves no row of any catalogued move table on the merged lead', async () => {
    branchConversation = (await conversationOn(m, branch))!
    const mainConversationOfM = (await conversationOn(m, main))!
    await mergeLeadsManually(db.current.sql, { tenantId: tenant.id, actor: 'api_key:test', requestId: null }, s, m)

    expect(Object.entries(await rowsOnLead(m)).filter(([, n]) => n > 0)).toEqual([])
    // Experiments: S keeps its own (the earliest) assignment, asked by either id; each merge recorded the assignment it dropped.
    const unitOf = async (id: string) => (await db.current.owner<{ variationKey: string }[]>`select variation_key from experiments.assignments where unit_id = ${id}`)[0]!.variationKey
    for (const id of [s, m, earlier]) {
      const [a] = await assign(db.current.sql, tenant.id, { leadId: id, attributes: {}, source: 'api' })
      expect(a).toMatchObject({ experimentKey: experiment.key, variationKey: await unitOf(s), isNew: false })
    }
    const conflicts = await db.current.owner`
      select lead_id, merged_lead_id, kept_unit_id, dropped_unit_id, reason from experiments.assignment_conflicts where experiment_id = ${experiment.id} order by id`
    expect(conflicts).toEqual([
      { leadId: s, mergedLeadId: earlier, keptUnitId: earlier, droppedUnitId: m, reason: 'merge' },
      { leadId: s, mergedLeadId: m, keptUnitId: s, droppedUnitId: earlier, reason: 'merge' },
    ])
    const [lead] = await db.current.owner<{ mergedInto: string; waId: string }[]>`select merged_into, wa_id from marketing.leads where id = ${earlier}`
    expect(lead!.mergedInto).toBe(s)
    const [events] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from analytics.events where lead_id = ${s} and name = 'whatsapp.message_received'`
    expect(events!.n).toBe(5)

    // The branch conversation (only M had one there) moved whole: same id, same node, and it now talks to S's number.
    const moved = (await conversationOn(s, branch))!
    expect(moved).toMatchObject({ id: branchConversation.id, waId: personal, state: { currentNodeId: 'ask_service', answers: { name: 'Ana Lima' } } })
    // On the main number both had one: S's continues, M's is ended where it stands and stays with M.
    expect((await conversationOn(s, main))!.state).toMatchObject({ status: 'waiting_answer', currentNodeId: 'ask_service' })
    const ended = await conversationsOf(m)
    expect(ended).toEqual([expect.objectContaining({ id: mainConversationOfM.id, state: expect.objectContaining({ status: 'ended', currentNodeId: null }) })])
    expect(ended[0]!.state.timerDueAt).toBeUndefined()
    // Its reminder would have reached a number that no longer identifies this lead: cancelled with the run.
    expect(await timerJobs(mainConversationOfM.id)).toBe(0)
  })

  it('continues each conversation at its node when Ana writes again, without restarting the flow', async () => {
    const before = branchConversation
    await say(personal, branch, 'Cleaning')
    const after = (await conversationsOf(s)).filter((c) => c.phoneNumberId === branch.id)
    expect(after).toHaveLength(1)
    expect(after[0]).toMatchObject({
      id: before.id, inboundCount: before.inboundCount + 1,
      state: { status: 'waiting_answer', currentNodeId: 'ask_time', answers: { name: 'Ana Lima', service: 'Cleaning' } },
    })
    // The bot's next question went to the number Ana wrote from; it never asked for her name again there.
    expect(await botSaid(personal, branch)).toEqual(['When?'])
    expect(await botSaid(work, branch)).toEqual(['Your name?', 'Which service?'])

    await say(personal, main, 'Implants')
    expect((await conversationOn(s, main))!.state).toMatchObject({ currentNodeId: 'ask_time', answers: { name: 'Ana', service: 'Implants' } })
    expect(await botSaid(personal, main)).toEqual(['Your name?', 'Which service?', 'When?'])
    await say(personal, branch, 'Saturday')
    expect((await conversationOn(s, branch))!.state).toMatchObject({ status: 'ended', answers: { name: 'Ana Lima', service: 'Cleaning', time: 'Saturday' } })
    expect((await botSaid(personal, branch)).at(-1)).toBe('See you, Ana Lima.')
    // The merged lead's ended conversation heard nothing more and has nothing pending.
    const [pending] = await db.current.owner<{ n: number }[]>`
      select count(*)::int as n from conversations.events e join conversations.conversations c on c.id = e.conversation_id
       where c.lead_id = ${m} and e.status = 'pending'`
    expect(pending!.n).toBe(0)
  })

  it('keeps a WhatsApp conversation going when a form shows its lead is an older web lead', async () => {
    const phone = '5511987650003'
    const web = await submit({ email: 'bruno@example.com' })
    await say(phone, main, 'Oi')
    await say(phone, main, 'Bruno')
    const whatsapp = await liveLeadOf(phone)
    const conversation = (await conversationOn(whatsapp, main))!
    expect(conversation.state).toMatchObject({ currentNodeId: 'ask_service' })

    // The same person fills the form with both: the older web lead survives and takes the WhatsApp number.
    expect(await submit({ email: 'bruno@example.com', phone: `+${phone}` })).toBe(web)
    expect(await liveLeadOf(phone)).toBe(web)
    expect(Object.entries(await rowsOnLead(whatsapp)).filter(([, n]) => n > 0)).toEqual([])

    await say(phone, main, 'Whitening')
    expect(await conversationsOf(web)).toEqual([expect.objectContaining({
      id: conversation.id, state: expect.objectContaining({ currentNodeId: 'ask_time', answers: { name: 'Bruno', service: 'Whitening' } }),
    })])
    expect(await botSaid(phone, main)).toEqual(['Your name?', 'Which service?', 'When?'])
  })

  it('moves a newly catalogued table, every lead column of it, without a change to the merge code', async () => {
    const o = db.current.owner
    await o`
      create table marketing.merge_probe (
        id bigint generated always as identity primary key,
        tenant_id uuid not null,
        lead_id uuid references marketing.leads (id) on delete cascade,
        referred_by uuid references marketing.leads (id) on delete set null
      )`
    await o`grant select, insert, update on marketing.merge_probe to app_user`
    try {
      const a = await submit({ email: 'probe-a@example.com' })
      const b = await submit({ email: 'probe-b@example.com' })
      const other = await submit({ email: 'probe-c@example.com' })
      await o`
        insert into marketing.merge_probe (tenant_id, lead_id, referred_by)
        values (${tenant.id}, ${b}, null), (${tenant.id}, ${other}, ${b}), (${tenant.id}, ${b}, ${b}), (${tenant.id}, ${other}, ${a})`
      const probe = (column: string): LeadReference => ({
        table: 'marketing.merge_probe', reach: { by: 'lead', column }, personal: [], merge: { kind: 'move' }, erase: { kind: 'delete' },
      })
      const moves = leadColumnsToMove([...LEAD_REFERENCES, probe('lead_id'), probe('referred_by')])
      expect(moves.find((mv) => mv.table === 'marketing.merge_probe')).toEqual({ table: 'marketing.merge_probe', columns: ['lead_id', 'referred_by'] })
      const moved = await withTenant(db.current.sql, tenant.id, (tx) => moveHistoryAndRecordMerge(tx, {
        tenantId: tenant.id, survivorId: a, mergedId: b, reason: 'manual', matchedOn: {}, snapshot: {}, actor: 'test', requestId: null,
      }, moves))
      expect(moved).toContainEqual({ table: 'marketing.merge_probe', moved: 3 })
      const rows = await o<{ leadId: string; referredBy: string | null }[]>`select lead_id, referred_by from marketing.merge_probe order by id`
      expect(rows).toEqual([
        { leadId: a, referredBy: null }, { leadId: other, referredBy: a }, { leadId: a, referredBy: a }, { leadId: other, referredBy: a },
      ])
    } finally {
      await o`drop table marketing.merge_probe`
    }
  })
})
