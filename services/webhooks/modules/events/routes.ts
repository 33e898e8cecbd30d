import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { validatorCompiler } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { fastIntakeBatch } from '../../../../domains/analytics/intake-fast-path.js'
import { IntakeAccepted, IntakeBatch, MAX_EVENTS_PER_BATCH } from '../../../../domains/analytics/schemas.js'
import { EventInbox, loadSiteKey, type PublicSiteKey, siteOriginAllowed } from '../../../../domains/analytics/service.js'
import { authenticateApiKey } from '../../../../domains/tenancy/service.js'
import type { WebhooksDeps } from '../../app.js'
import { createAuthFailureLimiter, credentialOf } from '../../../../lib/http/auth-failures.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is sending events, settled in onRequest (before the body is read). */
    eventSender: { tenantId: string; source: 'api' | 'site'; siteKey: PublicSiteKey | null } | null
  }
}

const EventsQuery = z.object({ siteKey: z.string().max(100).optional() })

const siteKeyOf = (req: FastifyRequest): string | undefined => {
  const header = req.headers['x-site-key']
  if (typeof header === 'string' && header !== '') return header
  const query = (req.query as { siteKey?: unknown } | undefined)?.siteKey
  return typeof query === 'string' && query !== '' ? query : undefined
}

/**
 * Event intake: `POST /v1/events`, a batch of up to 1,000 events from a tenant's server (`Authorization: Bearer
 * wak_…`, an admin key) or from its website (a public site key, `x-site-key` or `?siteKey=`, from an origin the key
 * lists; CORS per request from that list). The batch is validated whole (a bad event is a 400 naming its index and
 * nothing is stored), then committed to the inbox with its job; 202 only after that commit.
 */
export default async function eventIntakeRoutes(app: App, deps: WebhooksDeps) {
  const { config } = deps
  app.decorateRequest('eventSender', null)
  await app.register(rateLimit, {
    global: false,
    // Shared by every instance when Redis is configured; per process otherwise. A Redis outage fails open.
    redis: deps.redis ?? undefined,
    nameSpace: 'wa-events-rl:',
    skipOnError: true,
  })
  // req.ip is the socket address unless TRUST_PROXY names the proxies allowed to set X-Forwarded-For.
  const perIp = app.createRateLimit({ max: config.EVENTS_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => `ip:${req.ip}` })
  const failures = createAuthFailureLimiter({ max: config.AUTH_FAILURE_LIMIT_PER_MINUTE, redis: deps.redis, log: deps.log })
  const inbox = new EventInbox(deps.sql, { onError: (err) => deps.log.error({ err }, 'storing events failed') })

  // Before the CORS plugin's hook (registered after this one): the sender, whose site key's allowedOrigins the
  // plugin's per-request options come from.
  app.addHook('onRequest', async (req, reply) => {
    reply.header('vary', 'Origin')
    const publicKey = siteKeyOf(req)
    if (publicKey !== undefined) {
      // A public key is in every page's source: browsers' traffic is limited per IP before any lookup.
      const state = await perIp(req)
      if (!state.isAllowed && state.isExceeded) {
        const retry = String(Math.max(1, state.ttlInSeconds))
        throw new AppError('RATE_LIMITED', `too many event requests; retry in ${retry} s`, { headers: { 'retry-after': retry } })
      }
      const siteKey = await loadSiteKey(deps.sql, publicKey)
      // Server-side too: CORS only stops a browser from reading the answer, not from sending.
      if (!siteOriginAllowed(siteKey, req.headers.origin)) {
        throw new AppError('FORBIDDEN', "this page's origin may not send events with this site key; add it to the key's allowedOrigins")
      }
      req.eventSender = { tenantId: siteKey.tenantId, source: 'site', siteKey }
      return
    }
    // A preflight carries no credentials; without a site key in the URL there is no origin list to answer from.
    if (req.method === 'OPTIONS') throw new AppError('NOT_FOUND', 'a browser sends events with ?siteKey=ws_…')
    // As on the API: the credential read however it is spelled, and an address that keeps presenting wrong keys is
    // answered 429 before any lookup (counters shared through Redis when configured).
    const key = credentialOf(req.headers.authorization)
    const unauthorized = () => new AppError('UNAUTHORIZED', 'send an API key (Authorization: Bearer wak_…) or a site key (x-site-key)')
    if (!key) throw unauthorized()
    const wait = await failures.blockedFor(req.ip)
    if (wait > 0) throw new AppError('RATE_LIMITED', `too many failed authentications from this address; retry in ${wait} s`, { headers: { 'retry-after': String(wait) } })
    // The API's key cache (API_KEY_CACHE_TTL_MS): a batch of events costs no key lookup round trip.
    const principal = deps.apiKeys ? await deps.apiKeys.authenticate(key) : await authenticateApiKey(deps.sql, key)
    if (!principal) {
      await failures.recordFailure(req.ip)
      throw unauthorized()
    }
    if (principal.role !== 'admin') throw new AppError('FORBIDDEN', 'this API key is read-only')
    req.eventSender = { tenantId: principal.tenantId, source: 'api', siteKey: null }
  })
  // Echoes only an origin the key lists (never "*"), and answers preflights itself (204).
  await app.register(cors, {
    delegator: (req, done) => done(null, {
      origin: req.eventSender?.siteKey?.allowedOrigins ?? false,
      methods: 'POST',
      allowedHeaders: 'content-type, x-site-key',
      maxAge: 600,
    }),
  })

  // navigator.sendBeacon (the one way to send on page unload) can only post text/plain without a preflight: the body
  // is the same JSON, parsed by Fastify's own parser (prototype-poisoning checks included), scoped to this route.
  app.addContentTypeParser('text/plain', { parseAs: 'string', bodyLimit: config.EVENTS_BODY_LIMIT_BYTES }, app.getDefaultJsonParser('error', 'error'))

  // The body's common case (every event exactly IntakeEvent's shape) is checked without zod; anything else, valid
  // or not, is zod's, whose errors name each bad event by index. The same value either way (intake-fast-path.ts).
  const zodBody = validatorCompiler({ schema: IntakeBatch } as never) as (data: unknown) => { value?: unknown; error?: unknown }
  app.post('/', {
    config: { access: 'public' },
    validatorCompiler: (route) => {
      if (route.httpPart !== 'body') return validatorCompiler(route as never) as never
      return ((data: unknown) => {
        const value = fastIntakeBatch(data)
        return value === null ? zodBody(data) : { value }
      }) as never
    },
    bodyLimit: config.EVENTS_BODY_LIMIT_BYTES,
    // The count is a size limit (413), not a validation error: checked before the schema.
    preValidation: async (req) => {
      const events = (req.body as { events?: unknown } | null)?.events
      if (Array.isArray(events) && events.length > MAX_EVENTS_PER_BATCH) {
        throw new AppError('PAYLOAD_TOO_LARGE', `at most ${MAX_EVENTS_PER_BATCH} events per request; this one has ${events.length}`)
      }
    },
    schema: {
      tags: ['events'],
      summary: 'Send up to 1,000 analytics events. Stored before the answer (202), moved into the event stream asynchronously; a repeated event id is stored once.',
      querystring: EventsQuery,
      body: IntakeBatch,
      response: { 202: IntakeAccepted },
    },
  }, async (req, reply) => {
    const sender = req.eventSender!
    if (sender.source === 'site') refuseLeadIds(req.body)
    return reply.code(202).send(await inbox.store({ tenantId: sender.tenantId, source: sender.source, events: req.body.events }))
  })
}

/**
 * A site key is public (it is in the page's source): anyone could send events naming any lead. Pages identify
 * visitors with anonymousId only; the link to a lead is made by the product (a form submission, a WhatsApp click).
 */
function refuseLeadIds(body: IntakeBatch): void {
  const details = body.events.flatMap((e, i) => (e.leadId === undefined ? [] : [{ in: 'body', path: `events.${i}.leadId`, message: 'a site key cannot set leadId; send anonymousId' }]))
  if (details.length > 0) throw new AppError('BAD_REQUEST', `invalid ${details.map((d) => `body.${d.path}`).join(', ')}`, { details })
}
