import type { Tx } from '../../lib/db.js'
import type { NewInboundMessage } from '../whatsapp/process-deliveries.js'

/**
 * Called by WhatsApp inbound processing, inside the transaction that stored the messages, with the inbound
 * messages that were new (never a replay). The conversations domain uses it to enqueue bot turns in the same
 * commit (the outbox), so a stored message always reaches the bot and a replayed one never does twice.
 */
export async function onNewInboundMessages(_tx: Tx, _messages: NewInboundMessage[]): Promise<void> {}
