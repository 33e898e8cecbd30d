import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { loadSiteKey, type PublicSiteKey, siteOriginAllowed } from '../../../../domains/analytics/service.js'
import { AssignResult, Attributes } from '../../../../domains/experiments/schemas.js'
import { assign } from '../../../../domains/experiments/service.js'
import type { WebhooksDeps } from '../../app.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The site key a variant request names, settled in onRequest (before CORS answers from its origin list). */
    variantSiteKey: PublicSiteKey | null
  }
}

const VariantsQuery = z.object({ siteKey: z.string().max(100).optional() })
/** A site key is public: a page identifies its visitor by anonymousId only, never by lead id. */
const VariantsBody = z.strictObject({ anonymousId: z.string().min(1).max(200), attributes: Attributes })

const siteKeyOf = (req: FastifyRequest): string | undefined => {
  const header = req.headers['x-site-key']
  if (typeof header === 'string' && header !== '') return header
  const query = (req.query as { siteKey?: unknown } | undefined)?.siteKey
  return typeof query === 'string' && query !== '' ? query : undefined
}

/**
 * The business's website asks which variation a visitor sees: `POST /v1/variants` with the site key (`x-site-key` or
 * `?siteKey=`) from an origin the key lists, CORS per request from that list. The same assignment as the API's
 * /v1/experiments/assign for an anonymous visitor: stored ones first, new ones recorded.
 */
export default async function variantRoutes(app: App, deps: WebhooksDeps) {
  app.decorateRequest('variantSiteKey', null)
  await app.register(rateLimit, { global: false, redis: deps.redis ?? undefined, nameSpace: 'wa-variants-rl:', skipOnError: true })
  // Shares the event intake's per-IP budget size: the same pages send both.
  const perIp = app.createRateLimit({ max: deps.config.EVENTS_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => `ip:${req.ip}` })

  app.addHook('onRequest', async (req, reply) => {
    reply.header('vary', 'Origin')
    const publicKey = siteKeyOf(req)
    if (publicKey === undefined) throw new AppError('UNAUTHORIZED', 'send the site key (x-site-key or ?siteKey=ws_…)')
    const state = await perIp(req)
    if (!state.isAllowed && state.isExceeded) {
      const retry = String(Math.max(1, state.ttlInSeconds))
      throw new AppError('RATE_LIMITED', `too many variant requests; retry in ${retry} s`, { headers: { 'retry-after': retry } })
    }
    const siteKey = await loadSiteKey(deps.sql, publicKey)
    if (!siteOriginAllowed(siteKey, req.headers.origin)) {
      throw new AppError('FORBIDDEN', "this page's origin may not use this site key; add it to the key's allowedOrigins")
    }
    req.variantSiteKey = siteKey
  })
  await app.register(cors, {
    delegator: (req, done) => done(null, {
      origin: req.variantSiteKey?.allowedOrigins ?? false,
      methods: 'POST',
      allowedHeaders: 'content-type, x-site-key',
      maxAge: 600,
    }),
  })

  app.post('/', {
    config: { access: 'public' },
    schema: {
      tags: ['experiments'],
      summary: "The variations a website visitor sees in the tenant's running experiments (unit: anonymous); the first assignment is stored and wins.",
      querystring: VariantsQuery,
      body: VariantsBody,
      response: { 200: AssignResult },
    },
  }, async (req) => ({ assignments: await assign(deps.sql, req.variantSiteKey!.tenantId, { anonymousId: req.body.anonymousId, attributes: req.body.attributes, source: 'site' }, deps.experimentDefinitions) }))
}
