import rateLimit from '@fastify/rate-limit'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { VISITOR_COOKIE, visitorCookie, visitorIdFromCookie } from '../../../../domains/assessments/partners/cookies.js'
import { visitLink } from '../../../../domains/assessments/partners/links.js'
import type { WebhooksDeps } from '../../app.js'

const CodeParams = z.object({ code: z.string().min(1).max(100) })
const VisitQuery = z.object({ to: z.enum(['web', 'whatsapp']).optional() })

/**
 * GET /l/<code>: a partner link's visit. The click (with the visitor cookie, a truncated address and its keyed hash,
 * the user agent and referrer) and the visitor's attribution commit before the 302; an unknown or inactive code is a
 * 404 in the product's JSON shape, counted (partner_link_visits_total; an inactive link's visit is also stored).
 */
export default async function partnerLinkRoutes(app: App, deps: WebhooksDeps) {
  const { config } = deps
  await app.register(rateLimit, { global: false, redis: deps.redis ?? undefined, nameSpace: 'wa-links-rl:', skipOnError: true })
  const perIp = app.createRateLimit({ max: config.LINK_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => `ip:${req.ip}` })
  app.addHook('onRequest', async (req) => {
    const state = await perIp(req)
    if (!state.isAllowed && state.isExceeded) {
      const retry = String(Math.max(1, state.ttlInSeconds))
      throw new AppError('RATE_LIMITED', `too many link visits; retry in ${retry} s`, { headers: { 'retry-after': retry } })
    }
  })

  app.get('/:code', {
    config: { access: 'public' },
    schema: {
      tags: ['assessment partners'],
      summary: "A partner link: records the click and redirects (302) to the assessment's web start or to a wa.me chat carrying ref:<code>.",
      params: CodeParams,
      querystring: VisitQuery,
    },
  }, async (req, reply) => {
    const visit = await visitLink(deps.sql, config, req.params.code, {
      ip: req.ip, userAgent: req.headers['user-agent'], referrer: req.headers.referer, to: req.query.to,
      visitorId: visitorIdFromCookie(req.headers.cookie),
    })
    return reply
      .header('set-cookie', visitorCookie(visit.visitorId, config.LINK_VISITOR_COOKIE_DAYS, req.protocol === 'https'))
      // Every visit must reach us to be counted: no cache may answer it.
      .header('cache-control', 'no-store')
      .header('referrer-policy', 'no-referrer')
      .redirect(visit.location, 302)
  })
}

export { VISITOR_COOKIE }
