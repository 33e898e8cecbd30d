import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { liveLeadIdOf } from '../../../../domains/marketing/leads/service.js'
import type { ApiDeps } from '../../app.js'
import { tenantOf } from '../../plugins/auth.js'

const FlagsQuery = z.object({
  leadId: z.uuid().optional(),
  sessionId: z.string().min(1).max(200).optional(),
  // Flags Unleash defines beyond the product's catalog (e.g. a tenant's own), comma-separated.
  names: z.string().max(2000).optional()
    .transform((v) => (v ? v.split(',').map((n) => n.trim()).filter((n) => n !== '') : []))
    .pipe(z.array(z.string().regex(/^[\w.:-]{1,100}$/, 'flag names are letters, digits, and . _ : -')).max(50)),
})

const FlagView = z.object({
  name: z.string(),
  enabled: z.boolean(),
  variant: z.object({ name: z.string(), enabled: z.boolean(), payload: z.object({ type: z.string(), value: z.string() }).optional() }),
  source: z.enum(['unleash', 'bootstrap', 'default']),
})

/** Feature flags as they apply to the caller's tenant (and, with leadId, to one of its leads). */
export default async function flagRoutes(app: App, deps: ApiDeps) {
  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['flags'],
      summary: "Every product flag evaluated for this tenant (and lead, when given): enabled, variant, and where the answer came from (Unleash, its bootstrap file, or the product's default).",
      querystring: FlagsQuery,
      response: {
        200: z.object({
          data: z.array(FlagView),
          unleash: z.object({ configured: z.boolean(), synchronized: z.boolean(), toggles: z.number().int(), lastError: z.string().nullable() }),
        }),
      },
    },
  }, async (req) => {
    const { tenantId } = tenantOf(req)
    let leadId: string | undefined
    if (req.query.leadId) {
      leadId = (await liveLeadIdOf(deps.sql, tenantId, req.query.leadId)) ?? undefined
      if (!leadId) throw new AppError('NOT_FOUND', `no lead ${req.query.leadId}`)
    }
    const context = { tenantId, leadId, sessionId: req.query.sessionId, remoteAddress: req.ip }
    return { data: deps.flags.evaluateAll(context, req.query.names), unleash: deps.flags.status() }
  })
}
