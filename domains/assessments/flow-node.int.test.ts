import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../../ops/emulators/whatsapp-cloud-api.js'
import { buildTestWebhooks } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { HEALTHY_ANSWERS, makeAssessment } from '../../test/factories/assessments-rows.js'
import { runJobs } from '../../test/factories/conversations-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../test/factories/whatsapp.js'
import { postDelivery } from '../../test/whatsapp.js'
import { createFlow } from '../conversations/service.js'
import * as f from '../whatsapp/webhook/fixtures.js'
import type { AssessmentDetail } from './service.js'

/**
 * The `assessment` bot node end to end: Meta's signed webhooks in, the worker's jobs, the Graph emulator out. The
 * lead answers with the buttons and list rows the bot sent (or types where it asked to), and the result must be the
 * web path's result for the same answers.
 */
describe('the assessment node in a running bot', () => {
  const db = useTestDatabase()
  let webhooks: App
  let wa: WhatsAppEmulator
  let tenant: TestTenant
  let number: TestNumber
  let assessment: AssessmentDetail

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql)
    number = await makePhoneNumber(db.current.sql, tenant)
    assessment = await makeAssessment(db.current.sql, tenant, { key: 'health_check' })
    await createFlow(db.current.sql, { tenantId: tenant.id, actor: 'test' }, {
      publish: true,
      document: {
        name: 'health check', trigger: { type: 'keyword', keywords: ['health'] }, startNodeId: 'check',
        nodes: [
          { type: 'assessment', id: 'check', assessmentKey: 'health_check', answerKey: 'band', next: 'route' },
          { type: 'branch', id: 'route', rules: [{ when: { answer: 'band', in: ['good', 'excellent'] }, next: 'well' }], otherwise: 'help' },
          { type: 'end', id: 'well', text: 'Keep it up! ({{answers.band}})' },
          { type: 'handover', id: 'help', text: 'A coach will message you here.', note: 'assessment result: {{answers.band}}' },
        ],
      },
    })
    webhooks = await buildTestWebhooks(db.current)
    wa = await startWhatsAppEmulator({ autoStatuses: false })
  })
  afterAll(async () => {
    await wa?.stop()
    await webhooks?.close()
  })

  const send = async (message: f.RawMessage) => {
    const res = await postDelivery(webhooks, f.delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [message] }))
    expect(res.statusCode).toBe(200)
    await runJobs(db.current, wa.url)
  }
  const say = (from: string, body: string) => send(f.textMessage({ from, body }))
  const lastBotMessage = async (waId: string) => (await db.current.owner<{ content: Record<string, any> }[]>`
    select m.content from whatsapp.outbound_sends s join whatsapp.messages m on m.id = s.message_id where s.wa_id = ${waId} order by s.seq desc limit 1`)[0]!.content
  const session = async (waId: string) => (await db.current.owner<{ id: string; currentQuestionId: string | null; status: string; pausedAt: Date | null; channel: string }[]>`
    select s.id, s.current_question_id, s.status, s.paused_at, s.channel from assessments.sessions s join marketing.leads l on l.id = s.lead_id
     where l.wa_id = ${waId} order by s.started_at desc limit 1`)[0]

  /** Replies to the bot's last message the way a person would, to give `value`. */
  async function reply(waId: string, value: unknown) {
    for (let turns = 0; turns < 5; turns++) {
      const m = await lastBotMessage(waId)
      const ids = new Set([typeof value === 'boolean' ? `opt:${value ? 'yes' : 'no'}` : typeof value === 'number' ? `scale:${value}` : `opt:${String(value)}`])
      // Stored as the message part of the Graph body: { body, … } for text, { type, body: { text }, action } for interactive.
      if (m.type === 'button') {
        const b = m.action.buttons.find((x: { reply: { id: string } }) => ids.has(x.reply.id))
        return send(f.interactiveButtonReply({ from: waId, replyId: b.reply.id, title: b.reply.title }))
      }
      if (m.type === 'list') {
        const rows = m.action.sections[0].rows as { id: string; title: string }[]
        const row = rows.find((x) => ids.has(x.id)) ?? rows.find((x) => x.id === 'more')!
        await send(f.interactiveListReply({ from: waId, replyId: row.id, title: row.title }))
        if (row.id !== 'more') return
        continue
      }
      // A typed prompt: multiple choice by the numbers it listed, numbers with a decimal comma as people write them.
      const text = m.body as string
      if (Array.isArray(value) && value.length === 0) return say(waId, 'none')
      if (Array.isArray(value)) {
        const numbers = value.map((v) => text.split('\n').find((l) => l.endsWith(`. ${labelOf(v)}`))!.split('.')[0])
        return say(waId, numbers.join(', '))
      }
      return say(waId, typeof value === 'number' ? String(value).replace('.', ',') : String(value))
    }
    throw new Error('no way to answer')
  }
  const labelOf = (optionId: string) => (assessment.versions[0]!.questions as { options?: { id: string; label: string }[] }[]).flatMap((x) => x.options ?? []).find((o) => o.id === optionId)!.label

  async function takeOnWhatsApp(waId: string, answers: Record<string, unknown>) {
    await say(waId, 'health')
    for (let guard = 0; guard < 40; guard++) {
      const s = (await session(waId))!
      if (s.status === 'completed') return s
      if (s.currentQuestionId === null) await say(waId, '41')
      else await reply(waId, answers[s.currentQuestionId] ?? 'skip')
    }
    throw new Error('did not complete')
  }

  async function takeOnWeb(answers: Record<string, unknown>) {
    const start = await webhooks.inject({ method: 'POST', url: `/assessments/${assessment.publicKey}/sessions`, payload: { demographics: { age: 41 } } })
    const { token } = start.json()
    let state = start.json().state
    while (state.question) state = (await webhooks.inject({ method: 'POST', url: `/assessments/sessions/${token}/answers`, payload: { questionId: state.question.id, value: answers[state.question.id] ?? null } })).json()
    return state
  }

  const resultOf = async (sessionId: string) => (await db.current.owner<{ totalScore: number; categoryScores: unknown; formulaValues: unknown; band: string; recommendations: unknown; rubricVersion: number }[]>`
    select total_score::float8 as total_score, category_scores, formula_values, band, recommendations, rubric_version from assessments.results where session_id = ${sessionId}`)[0]

  it.each([
    ['a healthy lead', HEALTHY_ANSWERS],
    ['a stressed smoker', { ...HEALTHY_ANSWERS, smoker: true, cigarettes: 25, stress: 9, mood: 'low', sleep_hours: 'lt5', activities: [], exercise_days: 'd0', weight_kg: 101.5 }],
  ])('gives %s on WhatsApp exactly the result the web gives for the same answers', async (_name, answers) => {
    const waId = `5511987650${Math.floor(Math.random() * 9000 + 1000)}`
    const s = await takeOnWhatsApp(waId, answers)
    expect(s.channel).toBe('whatsapp')
    const web = await takeOnWeb(answers)
    expect(web.status).toBe('completed')
    const [onWhatsApp, onWeb] = [await resultOf(s.id), await resultOf(web.sessionId)]
    expect(onWhatsApp).toEqual(onWeb)
    // The result went out as a message, and the flow went on past the node with the band.
    const said = await db.current.owner<{ body: string | null }[]>`
      select m.content ->> 'body' as body from whatsapp.outbound_sends o join whatsapp.messages m on m.id = o.message_id where o.wa_id = ${waId} order by o.seq`
    const texts = said.map((r) => r.body ?? '')
    expect(texts.some((t) => t.includes(`Your score: *${onWeb!.totalScore}*`))).toBe(true)
    const good = ['good', 'excellent'].includes(onWeb!.band)
    expect(texts.at(-1)).toBe(good ? `Keep it up! (${onWeb!.band})` : 'A coach will message you here.')
  })

  it('re-asks after an invalid answer, goes back, pauses and continues later in the same conversation', async () => {
    const waId = '5511987651234'
    await say(waId, 'health')
    expect((await session(waId))!.currentQuestionId).toBe('sleep_hours')
    await say(waId, 'twelve hours please')
    expect((await lastBotMessage(waId)).type).toBe('list')
    expect((await session(waId))!.currentQuestionId).toBe('sleep_hours')
    await reply(waId, 'h7_8')
    await reply(waId, 4)
    expect((await session(waId))!.currentQuestionId).toBe('exercise_days')
    await say(waId, 'back')
    expect((await session(waId))!.currentQuestionId).toBe('sleep_quality')
    await say(waId, 'pause')
    expect((await session(waId))!.pausedAt).not.toBeNull()
    expect((await lastBotMessage(waId)).body).toContain('Paused')
    // Later: any message picks up where it stopped, at the same question.
    await say(waId, 'hi again')
    const s = (await session(waId))!
    expect(s).toMatchObject({ pausedAt: null, currentQuestionId: 'sleep_quality', status: 'in_progress' })
    expect((await lastBotMessage(waId)).body.text).toContain('How rested')
    // One session for the conversation throughout.
    expect((await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions s join marketing.leads l on l.id = s.lead_id where l.wa_id = ${waId}`)[0]!.n).toBe(1)
  })
})
