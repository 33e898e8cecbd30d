import rateLimit from '@fastify/rate-limit'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { LinkView, SaveStepBody, SessionView, StartSessionBody, StepParam } from '../../../../domains/onboarding/schemas.js'
import { onboardingSettingsOf, rotateLink, saveStep, startSession, viewSession, type OnboardingDeps } from '../../../../domains/onboarding/service.js'
import { graphClientFor } from '../../../../domains/whatsapp/outbound/graph.js'
import type { WebhooksDeps } from '../../app.js'

const TokenParams = z.object({ token: z.string().min(1).max(200) })

/**
 * Business onboarding, public: sign up, then resume with the token of the link (in the path; access logs redact it)
 * from any device. Every answer is the session's view: steps, what is missing, progress, what to do next.
 */
export default async function onboardingRoutes(app: App, deps: WebhooksDeps & { secrets: NonNullable<WebhooksDeps['secrets']> }) {
  const { config } = deps
  const onboarding: OnboardingDeps = { sql: deps.sql, secrets: deps.secrets, graph: graphClientFor(config), settings: onboardingSettingsOf(config) }
  await app.register(rateLimit, { global: false, redis: deps.redis ?? undefined, nameSpace: 'wa-onboarding-rl:', skipOnError: true })
  const signups = app.createRateLimit({ max: config.ONBOARDING_SIGNUP_LIMIT_PER_IP_PER_HOUR, timeWindow: 3_600_000, keyGenerator: (req) => `signup:${req.ip}` })
  // Token guesses are hopeless (256 bits), but each costs a lookup: bounded per IP like any page.
  const perIp = app.createRateLimit({ max: config.ONBOARDING_RATE_LIMIT_PER_IP_PER_MINUTE, timeWindow: 60_000, keyGenerator: (req) => `session:${req.ip}` })
  const limited = async (limit: typeof perIp, req: Parameters<typeof perIp>[0], what: string) => {
    const state = await limit(req)
    if (!state.isAllowed && state.isExceeded) {
      const retry = String(Math.max(1, state.ttlInSeconds))
      throw new AppError('RATE_LIMITED', `too many ${what}; retry in ${retry} s`, { headers: { 'retry-after': retry } })
    }
  }

  app.post('/sessions', {
    config: { access: 'public' },
    schema: {
      tags: ['onboarding'],
      summary: 'Start onboarding a business: a session and its resume link (shown once; the token is stored only as a hash).',
      body: StartSessionBody,
      response: { 201: z.object({ session: SessionView, link: LinkView }) },
    },
  }, async (req, reply) => {
    await limited(signups, req, 'sign-ups from this address')
    // The honeypot: a person never sees the field; filled, the request is refused and nothing is created.
    if (req.body.website) {
      throw new AppError('BAD_REQUEST', 'invalid body.website', { details: [{ in: 'body', path: 'website', message: 'leave this field empty' }] })
    }
    const started = await startSession(onboarding, { origin: 'signup', businessName: req.body.businessName, contactEmail: req.body.contactEmail, createdBy: 'signup' })
    return reply.code(201).send(started)
  })

  app.get('/sessions/:token', {
    config: { access: 'public' },
    schema: { tags: ['onboarding'], summary: 'Resume: the steps with their status, the fields still missing, the progress and what to do next.', params: TokenParams, response: { 200: SessionView } },
  }, async (req) => {
    await limited(perIp, req, 'requests')
    return viewSession(onboarding, req.params.token)
  })

  app.patch('/sessions/:token/steps/:step', {
    config: { access: 'public' },
    schema: {
      tags: ['onboarding'],
      summary: "Save a step's fields (partially is fine). With every required field, the step's work runs and it completes; go_live answers the first admin API key, once.",
      params: TokenParams.extend({ step: StepParam }),
      body: SaveStepBody,
      response: { 200: z.object({ session: SessionView, apiKey: z.object({ id: z.uuid(), key: z.string(), prefix: z.string() }).optional() }) },
    },
  }, async (req) => {
    await limited(perIp, req, 'requests')
    return saveStep(onboarding, req.params.token, req.params.step, req.body.fields)
  })

  app.post('/sessions/:token/link', {
    config: { access: 'public' },
    schema: { tags: ['onboarding'], summary: 'A new resume link; the current one stops working at once.', params: TokenParams, response: { 201: LinkView } },
  }, async (req, reply) => {
    await limited(perIp, req, 'requests')
    return reply.code(201).send(await rotateLink(onboarding, { token: req.params.token }))
  })
}
