import { beforeAll, describe, expect, it } from 'vitest'
import { withTenant } from '../../lib/db.js'
import { useTestDatabase } from '../../test/db.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { rollUp } from './rollups.js'
import { recordEvents, type EventRow } from './service.js'

// Day 2026-11-30 in Lisbon (UTC+0 in winter) spans 00:00–24:00 UTC.
const at = (hh: number, mm = 0, ss = 0) => new Date(Date.UTC(2026, 10, 30, hh, mm, ss))
const LATER = new Date('2026-12-05T00:00:00Z')

describe('analytics.metrics: daily KPIs rebuilt from the platform events', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  const leads: string[] = []

  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { timezone: 'Europe/Lisbon' })
    const rows = await db.current.owner<{ id: string }[]>`
      insert into marketing.leads (tenant_id, email, source)
      select ${tenant.id}, 'lead' || g || '@example.com', 'test' from generate_series(1, 4) g returning id`
    leads.push(...rows.map((r) => r.id))
  })

  const record = (rows: EventRow[]) => withTenant(db.current.sql, tenant.id, (tx) => recordEvents(tx, rows))
  const metrics = () =>
    db.current.owner<{ day: string; metric: string; dimension: string; numerator: string; denominator: string | null; value: string | null }[]>`
      select day::text, metric, dimension, numerator::text, denominator::text, value::text from analytics.metrics
       where tenant_id = ${tenant.id} order by day, metric collate "C", dimension collate "C"`

  it('computes leads by source, funnel, WhatsApp, bot, form and onboarding rates, with numerator and denominator', async () => {
    const [l1, l2, l3, l4] = leads as [string, string, string, string]
    const lead = (name: string, leadId: string, hh: number, properties: Record<string, unknown> = {}): EventRow =>
      ({ name, leadId, occurredAt: at(hh), properties, dedupeKey: `${name}:${leadId}` })
    const wa = (name: string, leadId: string | null, when: Date, messageId: string, n = ''): EventRow =>
      ({ name, leadId, occurredAt: when, properties: { messageId }, dedupeKey: `${name}:${messageId}${n}`, source: 'whatsapp' })
    const bot = (name: string, conversationId: string, hh: number): EventRow =>
      ({ name, occurredAt: at(hh), properties: { flowId: 'flow-1', conversationId }, dedupeKey: `${name}:${conversationId}` })
    await record([
      lead('lead.created', l1, 8, { leadSource: 'whatsapp' }), lead('lead.created', l2, 9, { leadSource: 'whatsapp' }),
      lead('lead.created', l3, 9, { leadSource: 'web_form' }), lead('lead.created', l4, 10, { leadSource: 'web_form' }),
      lead('lead.qualified', l1, 11), lead('lead.qualified', l3, 12), lead('lead.converted', l1, 13),
      // l1 writes twice before the reply (the wait starts at the first): 90 s; l2: 30 s; l3 is never answered.
      wa('whatsapp.message_received', l1, at(10, 0, 0), 'in1'), wa('whatsapp.message_received', l1, at(10, 0, 40), 'in2'),
      wa('whatsapp.message_sent', l1, at(10, 1, 30), 'out1'),
      // l1 writes again after our reply: a new wait of 10 min.
      wa('whatsapp.message_received', l1, at(11, 0, 0), 'in3'), wa('whatsapp.message_sent', l1, at(11, 10, 0), 'out2'),
      wa('whatsapp.message_received', l2, at(12, 0, 0), 'in4'), wa('whatsapp.message_sent', l2, at(12, 0, 30), 'out3'),
      wa('whatsapp.message_received', l3, at(13, 0, 0), 'in5'),
      wa('whatsapp.message_sent', l4, at(14), 'out4'),
      wa('whatsapp.message_delivered', l1, at(10, 2), 'out1'), wa('whatsapp.message_delivered', l1, at(11, 11), 'out2'),
      wa('whatsapp.message_delivered', l2, at(12, 1), 'out3'), wa('whatsapp.message_read', l1, at(10, 5), 'out1'),
      bot('bot.conversation_started', 'c1', 8), bot('bot.conversation_started', 'c2', 9), bot('bot.conversation_started', 'c3', 9),
      bot('bot.conversation_started', 'c4', 9), bot('bot.conversation_completed', 'c1', 8), bot('bot.conversation_handed_over', 'c2', 9),
      ...['a', 'b', 'c', 'd'].map((v): EventRow => ({ name: 'form.viewed', anonymousId: `anon-${v}`, occurredAt: at(7), properties: { formId: 'f1' }, dedupeKey: `fv:${v}` })),
      { name: 'form.viewed', anonymousId: 'anon-e', occurredAt: at(7), properties: { formId: 'f2' }, dedupeKey: 'fv:e' },
      { name: 'form.submitted', leadId: l3, occurredAt: at(7, 30), properties: { formId: 'f1' }, dedupeKey: 'fs:1' },
      { name: 'onboarding.started', occurredAt: at(6), dedupeKey: 'ob:1' }, { name: 'onboarding.started', occurredAt: at(6), dedupeKey: 'ob:2' },
      { name: 'onboarding.completed', occurredAt: at(6, 30), dedupeKey: 'ob:1:done' },
    ])
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const day = '2026-11-30'
    const rate = (metric: string, numerator: number, denominator: number, dimension = '') =>
      ({ day, metric, dimension, numerator: String(numerator), denominator: String(denominator), value: (numerator / denominator).toFixed(6) })
    expect(await metrics()).toEqual([
      rate('bot_completion_rate', 1, 4),
      rate('bot_handover_rate', 1, 4),
      { day, metric: 'first_response_median_seconds', dimension: '', numerator: '720', denominator: '3', value: '90' },
      rate('form_conversion_rate', 1, 4, 'f1'),
      rate('form_conversion_rate', 0, 1, 'f2'),
      rate('lead_converted_rate', 1, 2),
      rate('lead_qualified_rate', 2, 4),
      { day, metric: 'leads', dimension: 'web_form', numerator: '2', denominator: null, value: '2' },
      { day, metric: 'leads', dimension: 'whatsapp', numerator: '2', denominator: null, value: '2' },
      rate('onboarding_completion_rate', 1, 2),
      rate('whatsapp_delivery_rate', 3, 4),
      rate('whatsapp_read_rate', 1, 3),
    ])
  })

  it('files a KPI under the tenant day its event happened, and rebuilds the day when a late event arrives', async () => {
    // 23:30 UTC on 30 Nov is 23:30 in Lisbon; a reply at 00:10 on 1 Dec still answers it (40 min), counted on the 30th.
    const l = leads[3]!
    await record([
      { name: 'whatsapp.message_received', leadId: l, occurredAt: at(23, 30), properties: { messageId: 'late-in' }, dedupeKey: 'late-in' },
      { name: 'whatsapp.message_sent', leadId: l, occurredAt: new Date('2026-12-01T00:10:00Z'), properties: { messageId: 'late-out' }, dedupeKey: 'late-out' },
      { name: 'lead.created', leadId: leads[0]!, occurredAt: new Date('2026-12-01T09:00:00Z'), properties: { leadSource: 'api' }, dedupeKey: 'late-lead' },
    ])
    await rollUp(db.current.sql, { now: LATER, tenantId: tenant.id })
    const rows = await metrics()
    expect(rows.find((r) => r.day === '2026-11-30' && r.metric === 'first_response_median_seconds'))
      .toEqual({ day: '2026-11-30', metric: 'first_response_median_seconds', dimension: '', numerator: String(720 + 2400), denominator: '4', value: String((90 + 600) / 2) })
    expect(rows.filter((r) => r.day === '2026-12-01').map((r) => [r.metric, r.dimension, r.numerator])).toEqual([
      ['lead_qualified_rate', '', '0'],
      ['leads', 'api', '1'],
      ['whatsapp_delivery_rate', '', '0'],
    ])
  })
})
