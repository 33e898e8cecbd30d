import { z } from 'zod'
import { type Sql, withTenant } from '../../lib/db.js'
import { decodeCursor, encodeCursor, keysetCursor } from '../../lib/pagination.js'
import { findLead } from '../marketing/leads/queries.js'
import { listLeadMessages } from './queries.js'

// The cursor carries the message id type: a forged cursor is a 400 naming `cursor`, never a failed cast.
const MessageCursor = keysetCursor(z.uuid())

/**
 * A lead's WhatsApp messages with their status history, newest first; null when the lead is unknown. It lives here,
 * not in marketing/leads, because the dependency goes one way: whatsapp uses marketing, never the reverse.
 */
export async function listLeadMessagesPage(sql: Sql, tenantId: string, leadId: string, limit: number, cursor?: string) {
  const before = cursor ? decodeCursor(cursor, MessageCursor) : null
  return withTenant(sql, tenantId, async (tx) => {
    if (!(await findLead(tx, leadId))) return null
    const rows = await listLeadMessages(tx, leadId, limit, before ? { occurredAt: before.at, id: before.id } : null)
    const last = rows.at(-1)
    return {
      // The history is built with json_agg, so its times arrive as text.
      data: rows.map((m) => ({ ...m, statusHistory: (m.statusHistory ?? []).map((s) => ({ ...s, occurredAt: new Date(s.occurredAt) })) })),
      nextCursor: rows.length === limit && last ? encodeCursor({ at: last.occurredAt.toISOString(), id: last.id }) : null,
    }
  })
}
