import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { onboardingFunnel } from '../../../../domains/onboarding/funnel.js'
import { CreateSetupLinkBody, FunnelView, LinkView, SessionView } from '../../../../domains/onboarding/schemas.js'
import { onboardingSettingsOf, rotateLink, sessionById, startSession, type OnboardingDeps } from '../../../../domains/onboarding/service.js'
import type { ApiDeps } from '../../app.js'

const DAY = 86_400_000

/** Operators: setup links for named businesses, new links for sessions in flight, and the onboarding funnel. */
export default async function opsOnboardingRoutes(app: App, deps: ApiDeps) {
  const onboarding: OnboardingDeps = { sql: deps.sql, secrets: deps.secrets, graph: null, settings: onboardingSettingsOf(deps.config) }

  app.post('/setup-links', {
    config: { access: 'operator' },
    schema: {
      tags: ['onboarding'],
      summary: 'A setup link for a named business: a new onboarding session, prefilled, and its resume link (shown once).',
      body: CreateSetupLinkBody,
      response: { 201: z.object({ session: SessionView, link: LinkView }) },
    },
  }, async (req, reply) => reply.code(201).send(await startSession(onboarding, { origin: 'setup_link', businessName: req.body.businessName, contactEmail: req.body.contactEmail, createdBy: 'operator' })))

  app.get('/sessions/:sessionId', {
    config: { access: 'operator' },
    schema: { tags: ['onboarding'], summary: "A session's progress, by id.", params: z.object({ sessionId: z.uuid() }), response: { 200: SessionView } },
  }, async (req) => {
    const view = await sessionById(onboarding, req.params.sessionId)
    if (!view) throw new AppError('NOT_FOUND', `no onboarding session ${req.params.sessionId}`)
    return view
  })

  app.post('/sessions/:sessionId/link', {
    config: { access: 'operator' },
    schema: { tags: ['onboarding'], summary: "A new resume link for a session; its current link stops working at once.", params: z.object({ sessionId: z.uuid() }), response: { 201: LinkView } },
  }, async (req, reply) => reply.code(201).send(await rotateLink(onboarding, { sessionId: req.params.sessionId })))

  app.get('/funnel', {
    config: { access: 'operator' },
    schema: {
      tags: ['onboarding'],
      summary: 'Sessions started in [from, to): reached, completed and drop-off per step, median time per step, abandonment and resume rates.',
      querystring: z.object({ from: z.coerce.date().optional(), to: z.coerce.date().optional() })
        .refine((q) => !q.from || !q.to || q.from < q.to, { message: 'from must be before to', path: ['from'] }),
      response: { 200: FunnelView },
    },
  }, async (req) => {
    const to = req.query.to ?? new Date()
    const from = req.query.from ?? new Date(to.getTime() - 30 * DAY)
    return onboardingFunnel(deps.sql, from, to)
  })
}
