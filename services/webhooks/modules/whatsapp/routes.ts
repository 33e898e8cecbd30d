import { z } from 'zod'
import { safeEqual, sha256 } from '../../../../lib/crypto.js'
import { AppError } from '../../../../lib/errors.js'
import { countDeliveryAcknowledged } from '../../../../lib/metrics.js'
import type { App } from '../../../../lib/http/create-server.js'
import { type DeliverySigner, idsInDelivery, OwnAppSecrets, ownSigner } from '../../../../domains/whatsapp/app-secrets.js'
import { unstorableReason } from '../../../../domains/whatsapp/inbox.js'
import { verifyTokenKnown } from '../../../../domains/whatsapp/queries.js'
import { verifyMetaSignature } from '../../../../domains/whatsapp/signature.js'
import type { WebhooksDeps } from '../../app.js'

const HandshakeQuery = z.object({
  'hub.mode': z.string().optional(),
  'hub.verify_token': z.string().max(500).optional(),
  'hub.challenge': z.string().max(500).optional(),
})

// Just enough structure to refuse what is not a WhatsApp delivery; the worker reads the rest leniently.
const Envelope = z.object({
  object: z.literal('whatsapp_business_account'),
  entry: z.array(z.object({ id: z.string(), changes: z.array(z.object({ field: z.string() }).loose()) }).loose()).min(1),
})

const Acknowledged = z.object({
  received: z.literal(true),
  deliveryId: z.string(),
  duplicate: z.boolean(),
  /** The bytes can never be stored as jsonb: acknowledged (so Meta stops retrying) and kept raw for operators. */
  unparseable: z.literal(true).optional(),
})

/**
 * WhatsApp Cloud API webhooks. Meta retries anything that is not a 200 for days, so the rules are: a 200 means the
 * delivery is committed (with the job that will process it); anything we cannot store now is a 503, never a 200;
 * a signed delivery that can never be stored as jsonb is committed as raw bytes and acknowledged, never a 500 loop.
 * Each delivery is stored with the app whose secret verified it: processing lets it reach only that app's numbers.
 */
export default async function whatsappWebhookRoutes(app: App, deps: WebhooksDeps & { inbox: NonNullable<WebhooksDeps['inbox']>; secrets: NonNullable<WebhooksDeps['secrets']> }) {
  const platformSecret = deps.config.META_APP_SECRET
  const platformVerifyToken = deps.config.META_VERIFY_TOKEN
  const ownApps = new OwnAppSecrets(deps.sql, deps.secrets)

  // The signature covers the exact bytes, so this scope keeps the body raw and parses it itself.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: deps.config.WEBHOOK_BODY_LIMIT_BYTES }, (_req, body, done) => done(null, body))

  app.get('/', {
    config: { access: 'public' },
    schema: {
      tags: ['whatsapp'],
      summary: "Meta's subscription handshake: echoes hub.challenge when hub.verify_token is one we issued.",
      querystring: HandshakeQuery,
    },
  }, async (req, reply) => {
    const q = req.query
    const token = q['hub.verify_token']
    const known = !!token && ((platformVerifyToken !== undefined && safeEqual(token, platformVerifyToken)) || (await verifyTokenKnown(deps.sql, sha256(token))))
    if (q['hub.mode'] !== 'subscribe' || !known || q['hub.challenge'] === undefined) {
      throw new AppError('FORBIDDEN', 'verification failed')
    }
    return reply.code(200).type('text/plain; charset=utf-8').send(q['hub.challenge'])
  })

  app.post('/', {
    config: { access: 'public' },
    schema: {
      tags: ['whatsapp'],
      summary: 'Receive a WhatsApp Cloud API delivery (signed with X-Hub-Signature-256).',
      headers: z.object({ 'x-hub-signature-256': z.string().optional() }).loose(),
      response: { 200: Acknowledged },
    },
  }, async (req) => {
    const raw = req.body as unknown
    if (!Buffer.isBuffer(raw)) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'expected an application/json body')
    const signature = req.headers['x-hub-signature-256']
    if (typeof signature !== 'string') throw new AppError('UNAUTHORIZED', 'missing X-Hub-Signature-256')

    const text = raw.toString('utf8')
    let parsed: unknown
    let parseError: string | null = null
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      parseError = (err as Error).message
    }

    let signedBy: DeliverySigner | null = platformSecret !== undefined && verifyMetaSignature(raw, signature, platformSecret) ? 'platform' : null
    if (signedBy === null && parseError === null) {
      // Not the platform app: maybe a tenant's own app. The (still unverified) ids only pick which secrets to try; the
      // delivery is bound to the app whose secret matched, and reaches nothing registered under another app.
      const ids = idsInDelivery(parsed)
      for (const app of await ownApps.forIds(ids.phoneNumberIds, ids.wabaIds)) {
        if (verifyMetaSignature(raw, signature, app.secret)) {
          signedBy = ownSigner(app.appKey)
          break
        }
      }
    }
    if (signedBy === null) throw new AppError('UNAUTHORIZED', 'invalid X-Hub-Signature-256')
    // Signed, so Meta sent it, and Meta retries anything but a 200 for days: a body we can never apply (not JSON, not
    // a WhatsApp envelope, text PostgreSQL cannot hold) is acknowledged and kept as raw bytes for operators instead.
    const envelope = parseError === null ? Envelope.safeParse(parsed) : null
    const unstorable = parseError !== null
      ? `not valid JSON: ${parseError}`.slice(0, 500)
      : !envelope!.success
        ? `not a WhatsApp Business Account delivery: ${envelope!.error.issues.map((i) => `${i.path.join('.') || '$'} ${i.message}`).join('; ')}`.slice(0, 500)
        : unstorableReason(text, parsed)
    const stored = await deps.inbox.store({ raw, text, signedBy, unstorable })
    countDeliveryAcknowledged(stored.duplicate)
    return { received: true as const, ...stored }
  })
}
