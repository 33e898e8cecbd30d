import { runOnce } from 'graphile-worker'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { workerLogger } from '../../services/workers/worker.js'
import { buildTestWebhooks, testConfig, testLogger } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import type { FlowDocumentInput } from './flows/schema.js'
import { botQueueName } from './queries.js'
import { queueTimerEvent, runConversation } from './runtime.js'
import { RUN_BOT_TASK } from './schemas.js'
import { addFlowVersion, createFlow, handOverConversation, publishFlow, releaseConversation } from './service.js'

describe('the bot runtime, driven by inbound WhatsApp messages', () => {
  const db = useTestDatabase()
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let number: TestNumber
  const who = () => ({ tenantId: tenant.id, actor: 'test' })

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
  })

  let senderSeq = 0
  const newLead = () => `55119${String(70_000_000 + ++senderSeq * 1013).padStart(8, '0')}`
  const scope = () => ({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId })
  const deliver = async (...messages: f.RawMessage[]) => {
    const res = await postDelivery(webhooks, f.delivery({ ...scope(), messages }))
    expect(res.statusCode).toBe(200)
  }
  const jobs = () => runJobs(db.current, wa.url)
  const say = async (from: string, body: string, at?: Date) => {
    await deliver(f.textMessage({ from, body, ...(at ? { timestamp: at } : {}) }))
    await jobs()
  }
  const asTenant = <T>(fn: Parameters<typeof withTenant<T>>[2]) => withTenant(db.current.sql, tenant.id, fn)
  /** What the bot said to this lead, in order: text bodies, and interactive bodies with their options. */
  const botSaid = (waId: string) =>
    asTenant((tx) => tx<{ type: string; content: any }[]>`
      select m.type, m.content from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id
       where s.wa_id = ${waId} and s.source = 'bot' order by s.seq`).then((rows) =>
      rows.map((r) => (r.type === 'text' ? r.content.body : `${r.content.body.text} [${(r.content.action.buttons?.map((b: any) => b.reply.title) ?? r.content.action.sections[0].rows.map((x: any) => x.title)).join('|')}]`)))
  const conversationOf = (waId: string) =>
    asTenant((tx) => tx<Record<string, any>[]>`
      select c.*, l.status as lead_status, l.tags, l.fields, l.email, l.opted_out_at
        from conversations.conversations c join marketing.leads l on l.id = c.lead_id where c.wa_id = ${waId}`.then((r) => r[0]!))
  const publish = (document: FlowDocumentInput) => createFlow(db.current.sql, who(), { document, publish: true })

  it('advances exactly once per message and in order, with 50 messages arriving at once and runners racing', async () => {
    await publish({
      name: 'counting', trigger: { type: 'keyword', keywords: ['count'] }, startNodeId: 'ask',
      nodes: [
        { type: 'ask', id: 'ask', text: 'Say a number', invalidText: 'Sorry?', answerKey: 'n', input: { kind: 'text' }, next: 'echo' },
        { type: 'send_message', id: 'echo', text: 'got {{answers.n}}', next: 'ask' },
      ],
    })
    const lead = newLead()
    const t0 = Date.now() - 120_000
    await say(lead, 'count', new Date(t0))
    const messages = Array.from({ length: 50 }, (_, i) => f.textMessage({ from: lead, body: String(i + 1), timestamp: new Date(t0 + (i + 1) * 1000) }))
    // Each in its own delivery, all at once, in a shuffled order; and each delivered twice.
    const shuffled = [...messages].sort(() => Math.random() - 0.5)
    await Promise.all(shuffled.flatMap((m) => [deliver(m), deliver(m)]))
    const { id } = await conversationOf(lead)
    await Promise.all([jobs(), jobs(), runConversation({ sql: db.current.sql }, tenant.id, id), runConversation({ sql: db.current.sql }, tenant.id, id)])
    await jobs()

    const said = (await botSaid(lead)).filter((s) => s.startsWith('got '))
    expect(said).toEqual(messages.map((_, i) => `got ${i + 1}`))
    const events = await asTenant((tx) => tx<{ status: string; n: number }[]>`
      select status, count(*)::int as n from conversations.events where conversation_id = ${id} group by status`)
    expect(events).toEqual([{ status: 'applied', n: 51 }])
    const conversation = await conversationOf(lead)
    expect(conversation.inboundCount).toBe(51)
    expect(conversation.state).toMatchObject({ status: 'waiting_answer', answers: { n: '50' } })
    // A retried job finds nothing left to do.
    expect(await runConversation({ sql: db.current.sql }, tenant.id, id)).toBe(0)
    // The replies reach the emulator in the same order. 101 messages to one person in a burst is beyond Meta's pair
    // rate (a burst of 45, then one every 6 s), so the rest wait for their slots.
    const delivered = wa.sent.filter((m) => m.to === lead && m.type === 'text').map((m) => (m.body.text as { body: string }).body)
    expect(delivered.length).toBeGreaterThanOrEqual(40)
    expect(delivered.length).toBeLessThanOrEqual(46)
    const repliesInOrder = (await botSaid(lead)).slice(0, delivered.length)
    expect(delivered).toEqual(repliesInOrder)
  })

  it("queues the inbound hook's bot jobs in their conversations' shared queues, as enqueueRunBot does", async () => {
    await publish({ name: 'queues', trigger: { type: 'keyword', keywords: ['queue'] }, startNodeId: 'hi', nodes: [{ type: 'end', id: 'hi', text: 'queued' }] })
    const leads = [newLead(), newLead(), newLead()]
    await deliver(...leads.map((from) => f.textMessage({ from, body: 'queue' })))
    // Only the delivery processing (which calls the hook), so the bot jobs wait to be looked at.
    const all = buildTaskList({ config: testConfig({ GRAPH_API_BASE_URL: wa.url }), sql: db.current.sql, log: testLogger() })
    const inbound = Object.fromEntries(Object.entries(all).filter(([name]) => name.startsWith('whatsapp__process_deliver')))
    await runOnce({ connectionString: db.current.runtimeUrl, taskList: inbound, logger: workerLogger(testLogger()) })
    const botJobs = await db.current.owner<{ conversationId: string; queueName: string }[]>`
      select j.payload->>'conversationId' as conversation_id, q.queue_name
        from graphile_worker._private_jobs j
        join graphile_worker._private_tasks t on t.id = j.task_id
        left join graphile_worker._private_job_queues q on q.id = j.job_queue_id
       where t.identifier = ${RUN_BOT_TASK}`
    const ids = await Promise.all(leads.map(async (l) => (await conversationOf(l)).id as string))
    expect(botJobs.map((j) => j.conversationId).sort()).toEqual([...ids].sort())
    for (const j of botJobs) expect(j.queueName).toBe(botQueueName(j.conversationId))
    await jobs()
    for (const l of leads) expect(await botSaid(l)).toEqual(['queued'])
  })

  it('opts the lead out on STOP, ends the run and says nothing more', async () => {
    await publish({
      name: 'stop test', trigger: { type: 'keyword', keywords: ['optin'] }, startNodeId: 'ask',
      nodes: [
        { type: 'ask', id: 'ask', text: 'Your email?', invalidText: 'Sorry?', answerKey: 'email', input: { kind: 'text', validate: 'email' }, next: 'bye' },
        { type: 'end', id: 'bye', text: 'thanks' },
      ],
    })
    const lead = newLead()
    await say(lead, 'optin')
    await say(lead, 'Stop!')
    const conversation = await conversationOf(lead)
    expect(conversation.optedOutAt).toBeInstanceOf(Date)
    expect(conversation.state.status).toBe('ended')
    await say(lead, 'ana@example.com')
    expect(await botSaid(lead)).toEqual(['Your email?'])
    const [interaction] = await asTenant((tx) => tx`select type, actor from marketing.lead_interactions where lead_id = ${conversation.leadId} and type = 'opt_out'`)
    expect(interaction).toMatchObject({ type: 'opt_out', actor: 'lead' })
    // "stop the pain" is a sentence, not an opt-out.
    const other = newLead()
    await say(other, 'optin')
    await say(other, 'stop the pain please')
    expect((await conversationOf(other)).optedOutAt).toBeNull()
  })

  it('hands over to a person, stays silent until released, then resumes the flow', async () => {
    await publish({
      name: 'handover', trigger: { type: 'keyword', keywords: ['help'] }, startNodeId: 'ask',
      nodes: [
        { type: 'ask', id: 'ask', text: 'Bot or person?', invalidText: 'Sorry?', answerKey: 'who', input: { kind: 'buttons', options: [{ id: 'bot', title: 'Bot' }, { id: 'person', title: 'Person' }] }, next: 'route' },
        { type: 'branch', id: 'route', rules: [{ when: { answer: 'who', equals: 'person' }, next: 'human' }], otherwise: 'bye' },
        { type: 'handover', id: 'human', text: 'Passing you to a person.', note: 'wants a person', next: 'after' },
        { type: 'send_message', id: 'after', text: 'The bot is back.', next: 'bye' },
        { type: 'end', id: 'bye', text: 'Bye!' },
      ],
    })
    const lead = newLead()
    await say(lead, 'help')
    await deliver(f.interactiveButtonReply({ from: lead, replyId: 'person', title: 'Person' }))
    await jobs()
    let conversation = await conversationOf(lead)
    expect(conversation).toMatchObject({ handedOverBy: 'bot', handoverNote: 'wants a person' })
    expect(conversation.handedOverAt).toBeInstanceOf(Date)
    await say(lead, 'hello? is anyone there')
    await say(lead, 'help')
    expect(await botSaid(lead)).toEqual(['Bot or person? [Bot|Person]', 'Passing you to a person.'])

    await releaseConversation(db.current.sql, who(), conversation.id, 'r1')
    await jobs()
    conversation = await conversationOf(lead)
    expect(conversation.handedOverAt).toBeNull()
    expect(conversation.state.status).toBe('ended')
    expect(await botSaid(lead)).toEqual(['Bot or person? [Bot|Person]', 'Passing you to a person.', 'The bot is back.', 'Bye!'])
  })

  it('pauses the bot when a person takes over through the API, and picks the question up again on release', async () => {
    const lead = newLead()
    await say(lead, 'help')
    const { id } = await conversationOf(lead)
    await handOverConversation(db.current.sql, who(), id, 'taking this one')
    await deliver(f.interactiveButtonReply({ from: lead, replyId: 'bot', title: 'Bot' }))
    await jobs()
    expect(await botSaid(lead)).toEqual(['Bot or person? [Bot|Person]'])
    await releaseConversation(db.current.sql, who(), id, 'r2')
    await jobs()
    expect((await conversationOf(lead)).state.status).toBe('waiting_answer')
    await deliver(f.interactiveButtonReply({ from: lead, replyId: 'bot', title: 'Bot' }))
    await jobs()
    expect(await botSaid(lead)).toEqual(['Bot or person? [Bot|Person]', 'Bye!'])
  })

  it('keeps conversations in progress on their flow version when a new version is published', async () => {
    const v1: FlowDocumentInput = {
      name: 'versioned', trigger: { type: 'keyword', keywords: ['book'] }, startNodeId: 'ask',
      nodes: [
        { type: 'ask', id: 'ask', text: 'v1: which day?', invalidText: 'Sorry?', answerKey: 'day', input: { kind: 'text' }, next: 'bye' },
        { type: 'end', id: 'bye', text: 'v1: booked for {{answers.day}}' },
      ],
    }
    const { flow } = await publish(v1)
    const early = newLead()
    await say(early, 'book')

    // v2 renames and rewires the nodes the early lead's run is still using.
    const v2: FlowDocumentInput = {
      name: 'versioned', trigger: { type: 'keyword', keywords: ['book'] }, startNodeId: 'when',
      nodes: [
        { type: 'ask', id: 'when', text: 'v2: which day and time?', invalidText: 'Sorry?', answerKey: 'slot', input: { kind: 'text' }, next: 'done' },
        { type: 'end', id: 'done', text: 'v2: booked for {{answers.slot}}' },
      ],
    }
    await addFlowVersion(db.current.sql, who(), flow.id, { document: v2, publish: true })
    const late = newLead()
    await say(late, 'book')
    await say(early, 'Monday')
    await say(late, 'Tuesday 10:00')

    expect(await botSaid(early)).toEqual(['v1: which day?', 'v1: booked for Monday'])
    expect(await botSaid(late)).toEqual(['v2: which day and time?', 'v2: booked for Tuesday 10:00'])
    expect((await conversationOf(early)).flowVersion).toBe(1)
    expect((await conversationOf(late)).flowVersion).toBe(2)

    // Unpublished: nothing new starts; published again: it does.
    await publishFlow(db.current.sql, who(), flow.id, null)
    const none = newLead()
    await say(none, 'book')
    expect(await botSaid(none)).toEqual([])
  })

  it('starts flows on the first message, a keyword, or a click-to-WhatsApp ad, the most specific first', async () => {
    await publish({ name: 'welcome', trigger: { type: 'first_message' }, startNodeId: 'hi', nodes: [{ type: 'end', id: 'hi', text: 'Welcome!' }] })
    await publish({ name: 'ad', trigger: { type: 'referral', sourceIds: ['ad-42'] }, startNodeId: 'hi', nodes: [{ type: 'end', id: 'hi', text: 'Thanks for clicking our ad' }] })
    const fromAd = newLead()
    await deliver(f.withReferral(f.textMessage({ from: fromAd, body: 'Hi' }), { source_id: 'ad-42' }))
    await jobs()
    expect(await botSaid(fromAd)).toEqual(['Thanks for clicking our ad'])

    const plain = newLead()
    await say(plain, 'Hi')
    await say(plain, 'Hi again')
    expect(await botSaid(plain)).toEqual(['Welcome!'])
    await say(plain, 'BOOK please')
    expect(await botSaid(plain)).toEqual(['Welcome!'])
  })

  it('sends the reminder when an ask times out, and ignores a timer that is no longer pending', async () => {
    await publish({
      name: 'reminder', trigger: { type: 'keyword', keywords: ['remind'] }, startNodeId: 'ask',
      nodes: [
        { type: 'ask', id: 'ask', text: 'Pick a day', invalidText: 'Sorry?', answerKey: 'day', input: { kind: 'text' }, timeout: { afterSeconds: 600, reminderText: 'Still there?' }, next: 'bye' },
        { type: 'end', id: 'bye', text: 'ok' },
      ],
    })
    const lead = newLead()
    await say(lead, 'remind')
    const conversation = await conversationOf(lead)
    const [job] = await db.current.owner<{ runAt: Date }[]>`select run_at from graphile_worker.jobs where key = ${`flow-timer:${conversation.id}`}`
    expect(job!.runAt.toISOString()).toBe(conversation.state.timerDueAt)

    const timer = { tenantId: tenant.id, conversationId: conversation.id, dueAt: conversation.state.timerDueAt, kind: 'ask_reminder' as const }
    await queueTimerEvent(db.current.sql, timer)
    await queueTimerEvent(db.current.sql, timer)
    await jobs()
    expect(await botSaid(lead)).toEqual(['Pick a day', 'Still there?'])
    await queueTimerEvent(db.current.sql, { ...timer, dueAt: new Date(Date.now() + 1000).toISOString() })
    await jobs()
    expect(await botSaid(lead)).toEqual(['Pick a day', 'Still there?'])
  })
})
