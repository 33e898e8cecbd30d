import rateLimit from '@fastify/rate-limit'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { SessionStateView, StartWebSessionBody } from '../../../../domains/assessments/schemas.js'
import { visitorIdFromCookie } from '../../../../domains/assessments/partners/cookies.js'
import { startLinkWebSession } from '../../../../domains/assessments/partners/links.js'
import type { WebhooksDeps } from '../../app.js'

const CodeParams = z.object({ code: z.string().min(1).max(100) })

/**
 * POST /assessments/links/<code>/sessions: start a web session through a partner link (the session names the link and
 * partner; the visitor cookie set by /l/<code> ties it to the click). Then the session continues on the engine's
 * routes (/assessments/sessions/<token>/…). An unknown or inactive code is a 404, counted.
 */
export default async function linkSessionRoutes(app: App, deps: WebhooksDeps) {
  const { config } = deps
  await app.register(rateLimit, { global: false, redis: deps.redis ?? undefined, nameSpace: 'wa-link-sessions-rl:', skipOnError: true })
  // The same budget per address as the engine's own starts.
  const starts = app.createRateLimit({ max: config.ASSESSMENTS_STARTS_PER_IP_PER_HOUR, timeWindow: 3_600_000, keyGenerator: (req) => `start:${req.ip}` })

  app.post('/:code/sessions', {
    config: { access: 'public' },
    schema: {
      tags: ['assessment partners'],
      summary: 'Start a session through a partner link. The resume token is shown once.',
      params: CodeParams, body: StartWebSessionBody, response: { 201: z.object({ token: z.string(), state: SessionStateView }) },
    },
  }, async (req, reply) => {
    const state = await starts(req)
    if (!state.isAllowed && state.isExceeded) {
      const retry = String(Math.max(1, state.ttlInSeconds))
      throw new AppError('RATE_LIMITED', `too many sessions started from this address; retry in ${retry} s`, { headers: { 'retry-after': retry } })
    }
    const started = await startLinkWebSession(deps.sql, req.params.code, req.body, {
      ip: req.ip, userAgent: req.headers['user-agent'], visitorId: visitorIdFromCookie(req.headers.cookie),
    })
    return reply.code(201).send(started)
  })
}
