import { z } from 'zod'
import { withTenant } from '../../../../lib/db.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { recordPurchase, refundPurchase, shopEndpointSecret } from '../../../../domains/assessments/partners/money.js'
import { ShopWebhookBody } from '../../../../domains/assessments/partners/schemas.js'
import { verifyStandardWebhook } from '../../../../domains/onboarding/webhooks.js'
import type { WebhooksDeps } from '../../app.js'

const ShopParams = z.object({ publicKey: z.string().regex(/^shop_[0-9a-f]{32}$/) })
const Received = z.object({
  received: z.literal(true),
  purchaseId: z.uuid(),
  commissionId: z.uuid().nullable(),
  /** The transaction was recorded before (a retry or a replay): nothing changed. */
  duplicate: z.boolean(),
})

/**
 * The tenant's shop reports purchases and refunds: POST /assessments/shop/<publicKey>/events, signed the Standard
 * Webhooks way (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">
 * under the endpoint's whsec_ secret), the timestamp within SHOP_WEBHOOK_TOLERANCE_SECONDS. The signature covers the
 * raw bytes, so this scope parses JSON itself. Handled in the request, in one transaction: a 200 means committed; a
 * repeated transaction id answers 200 with the same purchase and commission.
 */
export default async function shopWebhookRoutes(app: App, deps: WebhooksDeps & { secrets: NonNullable<WebhooksDeps['secrets']> }) {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body))

  app.post('/:publicKey/events', {
    config: { access: 'public' },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['assessment partners'],
      summary: "The shop's signed purchase and refund events (Standard Webhooks signature).",
      params: ShopParams,
      response: { 200: Received },
    },
  }, async (req) => {
    const endpoint = await shopEndpointSecret(deps.sql, deps.secrets, req.params.publicKey)
    if (!endpoint) throw new AppError('NOT_FOUND', 'unknown shop endpoint')
    const raw = req.body as Buffer
    const h = req.headers
    const headers = { id: String(h['webhook-id'] ?? ''), timestamp: String(h['webhook-timestamp'] ?? ''), signature: String(h['webhook-signature'] ?? '') }
    if (!headers.id || !headers.signature || !verifyStandardWebhook(endpoint.secret, headers, raw.toString('utf8'), deps.config.SHOP_WEBHOOK_TOLERANCE_SECONDS)) {
      throw new AppError('UNAUTHORIZED', 'missing or invalid webhook signature')
    }
    let json: unknown
    try {
      json = JSON.parse(raw.toString('utf8'))
    } catch {
      throw new AppError('BAD_REQUEST', 'the body is not JSON')
    }
    const parsed = ShopWebhookBody.safeParse(json)
    if (!parsed.success) {
      throw new AppError('BAD_REQUEST', 'invalid shop event', { details: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) })
    }
    const event = parsed.data
    return withTenant(deps.sql, endpoint.tenantId, async (tx) => {
      if (event.type === 'purchase.completed') {
        const r = await recordPurchase(tx, endpoint.tenantId, event.data, 'webhook')
        return { received: true as const, purchaseId: r.purchase.id, commissionId: r.purchase.commission?.id ?? null, duplicate: !r.created }
      }
      const before = await refundPurchase(tx, endpoint.tenantId, event.data.transactionId, event.data.refundedAt ? new Date(event.data.refundedAt) : new Date(), 'shop')
      return { received: true as const, purchaseId: before.id, commissionId: before.commission?.id ?? null, duplicate: false }
    })
  })
}
