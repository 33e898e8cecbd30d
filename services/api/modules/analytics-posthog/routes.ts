import { PosthogSettingsView, PutPosthogSettingsBody, RequeueParkedResult } from '../../../../domains/analytics/posthog/schemas.js'
import { getPosthogSettings, putPosthogSettings, requeueParkedPosthog } from '../../../../domains/analytics/posthog/settings.js'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

/** PostHog forwarding: a tenant opts in and chooses which properties leave (domains/analytics/posthog). */
export default async function posthogRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: "Whether this tenant's events are forwarded to PostHog, the properties sent, and the outbox (pending, parked, last error).",
      response: { 200: PosthogSettingsView },
    },
  }, async (req) => getPosthogSettings(deps.sql, deps.config, tenantOf(req).tenantId))

  app.put('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['analytics'],
      summary: 'Opt in or out of PostHog forwarding and set the property allow-list (null: the default). Opting out drops what is still waiting. Audited.',
      body: PutPosthogSettingsBody,
      response: { 200: PosthogSettingsView },
    },
  }, async (req) => {
    // A feature flag (lib/feature-flags.ts): the operator can hold a tenant back from opting in. Opting out is always allowed.
    if (req.body.enabled && !deps.flags.isEnabled('analytics.posthog-forwarding', { tenantId: tenantOf(req).tenantId, remoteAddress: req.ip })) {
      throw new AppError('FORBIDDEN', 'PostHog forwarding is not available for this workspace (feature flag analytics.posthog-forwarding)')
    }
    return putPosthogSettings(deps.sql, deps.config, actorOf(req), req.body)
  })

  app.post('/requeue-parked', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['analytics'],
      summary: 'Send parked events again (their attempts start over). Audited.',
      response: { 200: RequeueParkedResult },
    },
  }, async (req) => ({ requeued: await requeueParkedPosthog(deps.sql, actorOf(req)) }))
}
