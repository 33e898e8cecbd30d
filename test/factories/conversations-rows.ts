import { randomInt } from 'node:crypto'
import { runOnce } from 'graphile-worker'
import { withTenant, type Sql } from '../../lib/db.js'
import { createFlow } from '../../domains/conversations/service.js'
import { textBody } from '../../domains/whatsapp/graph/bodies.js'
import { queueOutbound } from '../../domains/whatsapp/outbound/service.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { workerLogger } from '../../services/workers/worker.js'
import { testConfig, testLogger } from '../apps.js'
import type { TestDatabase } from '../db.js'
import type { TestTenant } from './tenants.js'
import { makePhoneNumber, type TestNumber } from './whatsapp.js'

export interface TestLead {
  id: string
  waId: string
}

let leadSeq = 0
/** A WhatsApp lead (wa_id = phone digits), optionally with an open or closed 24-hour window on `number`. */
export async function makeWhatsAppLead(
  sql: Sql,
  tenant: TestTenant,
  overrides: { waId?: string; name?: string; number?: TestNumber; lastInboundAt?: Date; optedOutAt?: Date } = {},
): Promise<TestLead> {
  const waId = overrides.waId ?? `5511${String(900_000_000 + randomInt(99_999_999) + ++leadSeq).slice(0, 9)}`
  return withTenant(sql, tenant.id, async (tx) => {
    const [lead] = await tx<{ id: string }[]>`
      insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, name, source, opted_out_at)
      values (${tenant.id}, ${`+${waId}`}, ${`+${waId}`}, ${waId}, ${overrides.name ?? null}, 'whatsapp', ${overrides.optedOutAt ?? null})
      returning id`
    if (overrides.number && overrides.lastInboundAt) {
      await tx`
        insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at)
        values (${tenant.id}, ${overrides.number.id}, ${waId}, ${lead!.id}, ${overrides.lastInboundAt})`
    }
    return { id: lead!.id, waId }
  })
}

/** An approved template in the number's business account, as Meta's status webhook leaves it. */
export async function makeTemplate(
  sql: Sql,
  tenant: TestTenant,
  number: TestNumber,
  overrides: { name?: string; language?: string; category?: string; status?: string; components?: unknown } = {},
) {
  return withTenant(sql, tenant.id, async (tx) => {
    const [t] = await tx<{ id: string; name: string; language: string }[]>`
      insert into whatsapp.templates (tenant_id, business_account_id, meta_template_id, name, language, category, status, components)
      select ${tenant.id}, business_account_id, ${`tpl-${randomInt(1e9)}`}, ${overrides.name ?? 'appointment_reminder'}, ${overrides.language ?? 'en_US'},
             ${overrides.category ?? 'UTILITY'}, ${overrides.status ?? 'APPROVED'},
             ${tx.json((overrides.components ?? [
               { type: 'HEADER', format: 'TEXT', text: 'Your visit' },
               { type: 'BODY', text: 'Hi {{1}}, see you on {{2}}.' },
               { type: 'BUTTONS', buttons: [{ type: 'QUICK_REPLY', text: 'Confirm' }, { type: 'URL', text: 'Reschedule', url: 'https://clinic.example/r/{{1}}' }] },
             ]) as never)}
        from whatsapp.phone_numbers where id = ${number.id}
      returning id, name, language`
    return t!
  })
}

/** One row in each table of migration 0004 (the outbox, rate limits, flows, versions, conversations, events). */
export async function populateConversationsRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const number = await makePhoneNumber(sql, tenant)
  const lead = await makeWhatsAppLead(sql, tenant, { number, lastInboundAt: new Date() })
  const { flow } = await createFlow(sql, { tenantId: tenant.id, actor: 'test' }, {
    document: { name: 'rows', trigger: { type: 'first_message' }, startNodeId: 'bye', nodes: [{ type: 'end', id: 'bye', text: 'bye' }] },
    publish: true,
  })
  await withTenant(sql, tenant.id, async (tx) => {
    await queueOutbound(tx, { tenantId: tenant.id, phoneId: number.id, leadId: lead.id, waId: lead.waId, body: textBody({ to: lead.waId, text: 'hello' }), source: 'api', requestedBy: 'test' })
    await tx`insert into whatsapp.send_rate_limits (tenant_id, key, tat) values (${tenant.id}, ${`number:${number.id}`}, now())`
    const [conversation] = await tx<{ id: string }[]>`
      insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id, flow_id, flow_version)
      values (${tenant.id}, ${lead.id}, ${number.id}, ${lead.waId}, ${flow.id}, 1) returning id`
    await tx`
      insert into conversations.events (tenant_id, conversation_id, kind, dedupe_key, payload, occurred_at)
      values (${tenant.id}, ${conversation!.id}, 'release', 'rows', '{}', now())`
  })
}

/**
 * Runs every due job as the worker would (graphile-worker's runOnce), with the Graph API pointed at `graphUrl`
 * (an emulator), until nothing runnable is left.
 */
export async function runJobs(db: TestDatabase, graphUrl: string, overrides: Record<string, string> = {}): Promise<void> {
  const log = testLogger()
  await runOnce({
    connectionString: db.runtimeUrl,
    taskList: buildTaskList({ config: testConfig({ GRAPH_API_BASE_URL: graphUrl, ...overrides }), sql: db.sql, log }),
    logger: workerLogger(log),
    concurrency: 8,
  })
}
