import { z } from 'zod'

/**
 * One analytics event as a producer records it. Producers inside the product (WhatsApp ingestion, forms) build
 * these from rows they already validated; the event intake of a later release parses outside input with it.
 */
export const EventRow = z.object({
  /** `<domain>.<what_happened>`, e.g. `whatsapp.message_received`, `form.submitted`. */
  name: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/).max(120),
  leadId: z.uuid().nullable().default(null),
  occurredAt: z.union([z.date(), z.iso.datetime({ offset: true })]),
  properties: z.record(z.string(), z.unknown()).default({}),
  /** The same outside fact recorded twice (a replay, a redelivery) is one event: the key decides, per tenant. */
  dedupeKey: z.string().min(1).max(300).nullable().default(null),
  /** Which part of the product recorded it: `whatsapp`, `web_form`, `bot`, `api`. */
  source: z.string().min(1).max(60).nullable().default(null),
})
export type EventRow = z.input<typeof EventRow>
