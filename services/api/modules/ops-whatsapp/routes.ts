import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import { BigintId } from '../../../../lib/pagination.js'
import type { App } from '../../../../lib/http/create-server.js'
import { findUnparseableDelivery, listDeliveries, listQuarantine, listUnparseableDeliveries, replayDelivery } from '../../../../domains/whatsapp/queries.js'
import { DeliveryView, PROCESS_DELIVERY_TASK, QuarantinedItemView, UnparseableDeliveryDetail, UnparseableDeliveryView } from '../../../../domains/whatsapp/schemas.js'
import type { ApiDeps } from '../../app.js'

const Page = z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: BigintId.optional() })

/**
 * Operators: deliveries that failed or were parked, items quarantined (no owner, or outside the app that signed the
 * delivery), signed deliveries that could not be stored as jsonb (kept raw), and replays.
 */
export default async function opsWhatsappRoutes(app: App, deps: ApiDeps) {
  app.get('/deliveries', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'Webhook deliveries, newest first; filter by status (parked ones need an operator).',
      querystring: Page.extend({ status: z.enum(['received', 'processed', 'failed', 'parked']).optional() }),
      response: { 200: z.object({ data: z.array(DeliveryView) }) },
    },
  }, async (req) => ({ data: (await listDeliveries(deps.sql, { status: req.query.status, limit: req.query.limit, beforeId: req.query.before })) as never }))

  app.get('/quarantine', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'Items refused at routing, newest first: unknown phone number or WABA, one not registered under the app that signed the delivery, unsupported fields.',
      querystring: Page.extend({ open: z.enum(['true', 'false']).default('true').transform((v) => v === 'true') }),
      response: { 200: z.object({ data: z.array(QuarantinedItemView) }) },
    },
  }, async (req) => ({ data: (await listQuarantine(deps.sql, { open: req.query.open, limit: req.query.limit, beforeId: req.query.before })) as never }))

  app.get('/unparseable', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'Signed deliveries that can never be stored as jsonb (NUL, lone surrogate, too deep), acknowledged and kept raw; newest first.',
      querystring: Page,
      response: { 200: z.object({ data: z.array(UnparseableDeliveryView) }) },
    },
  }, async (req) => ({ data: (await listUnparseableDeliveries(deps.sql, { limit: req.query.limit, beforeId: req.query.before })) as never }))

  app.get('/unparseable/:id', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'One unparseable delivery with its exact bytes, base64.',
      params: z.object({ id: z.string().regex(/^\d{1,18}$/) }),
      response: { 200: UnparseableDeliveryDetail },
    },
  }, async (req) => {
    const found = await findUnparseableDelivery(deps.sql, req.params.id)
    if (!found) throw new AppError('NOT_FOUND', `unparseable delivery ${req.params.id} not found`)
    return found as never
  })

  app.post('/deliveries/:deliveryId/replay', {
    config: { access: 'operator' },
    schema: {
      tags: ['operations'],
      summary: 'Process a delivery again (after registering its number, or fixing what parked it). Idempotent.',
      // Within bigint: a longer number would fail the database's cast (a 500) instead of being the caller's 400.
      params: z.object({ deliveryId: BigintId }),
      response: { 202: z.object({ deliveryId: z.string(), queued: z.literal(true) }) },
    },
  }, async (req, reply) => {
    const queued = await deps.sql.begin((tx) => replayDelivery(tx, req.params.deliveryId, PROCESS_DELIVERY_TASK))
    if (!queued) throw new AppError('NOT_FOUND', `delivery ${req.params.deliveryId} not found`)
    return reply.code(202).send({ deliveryId: req.params.deliveryId, queued: true as const })
  })
}
