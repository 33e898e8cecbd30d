import type { Tx } from '../../lib/db.js'
import type { NewInboundMessage } from '../whatsapp/process-deliveries.js'
import { recordWhatsAppReferrals } from '../assessments/partners/links.js'
import { botQueueNameSql } from './queries.js'
import { messageEventPayload } from './runtime.js'
import { RUN_BOT_TASK } from './schemas.js'

/**
 * Called by WhatsApp inbound processing, inside the transaction that stored the messages, with the inbound
 * messages that were new (never a replay). Each becomes an event in its conversation's queue (once: the message id
 * is its dedupe key) and each conversation touched gets a bot job, in the same commit (the outbox): a stored message
 * always reaches the bot, and a replayed one never does twice. The bot itself runs in the worker (runtime.ts).
 *
 * Set-based, because it runs inside every inbound batch: three statements for the whole batch, whatever its size.
 */
export async function onNewInboundMessages(tx: Tx, messages: NewInboundMessage[]): Promise<void> {
  const events = messages.flatMap((m, ord) => {
    const message = m.item.message
    const waId = message.from ?? message.fromUserId
    if (!waId || m.item.parseError !== null) return []
    // Reactions and system notices (number changed...) are not something the lead said to the bot.
    if (message.type === 'reaction' || message.type === 'system') return []
    return [{
      ord, tenant_id: m.tenantId, lead_id: m.leadId, phone_id: m.phoneId, wa_id: waId, message_id: m.messageId,
      dedupe_key: `msg:${m.messageId}`, payload: messageEventPayload(message), occurred_at: (message.timestamp ?? new Date()).toISOString(),
    }]
  })
  if (events.length === 0) return
  const input = tx.json(events as never)

  // Conversations: created when missing, never locked when present (`do nothing`: the bot may hold one while it
  // waits for the lead's row, which this transaction holds). Sorted, so concurrent batches insert in one order.
  await tx`
    insert into conversations.conversations (tenant_id, lead_id, phone_number_id, wa_id)
    select distinct on (e.lead_id, e.phone_id) e.tenant_id, e.lead_id, e.phone_id, e.wa_id
      from jsonb_to_recordset(${input}::jsonb) as e(tenant_id uuid, lead_id uuid, phone_id uuid, wa_id text)
     order by e.lead_id, e.phone_id
    on conflict (tenant_id, lead_id, phone_number_id) do nothing`

  // A message carrying a partner link's ref:<code> (the wa.me link's pre-filled text) attributes its lead and
  // conversation to the link, in this commit, before the bot (and its assessment node) sees the message.
  await recordWhatsAppReferrals(tx, events.map((e) => ({
    tenantId: e.tenant_id, leadId: e.lead_id, phoneId: e.phone_id, text: (e.payload as { text?: string }).text, at: e.occurred_at,
  })))

  // Events in arrival order, then one bot job per conversation touched (in its conversation's queue: one runner per lead).
  await tx`
    with e as (
      select x.*, c.id as conversation_id
        from jsonb_to_recordset(${input}::jsonb)
             as x(ord int, tenant_id uuid, lead_id uuid, phone_id uuid, message_id uuid, dedupe_key text, payload jsonb, occurred_at timestamptz)
        join conversations.conversations c on c.lead_id = x.lead_id and c.phone_number_id = x.phone_id
    ), inserted as (
      insert into conversations.events (tenant_id, conversation_id, kind, dedupe_key, message_id, payload, occurred_at)
      select tenant_id, conversation_id, 'message', dedupe_key, message_id, payload, occurred_at from e order by ord
      on conflict (tenant_id, conversation_id, dedupe_key) do nothing
      returning conversation_id, tenant_id
    )
    -- add_jobs inserts them all at once: per-job add_job calls were the bulk of this hook's cost.
    select count(*) from graphile_worker.add_jobs(array(
      select row(${RUN_BOT_TASK}::text, json_build_object('tenantId', t.tenant_id, 'conversationId', t.conversation_id),
                 ${botQueueNameSql(tx, tx`t.conversation_id`)}, null::timestamptz, 10, null::text, null::integer, null::text[])::graphile_worker.job_spec
        from (select distinct tenant_id, conversation_id from inserted order by conversation_id) t))`
}
