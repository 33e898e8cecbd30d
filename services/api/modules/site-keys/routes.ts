import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { CreateSiteKeyBody, SiteKeyView } from '../../../../domains/analytics/schemas.js'
import { archiveSiteKey, createSiteKey, listSiteKeys } from '../../../../domains/analytics/service.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const SiteKeyParams = z.object({ siteKeyId: z.uuid() })

/** Site keys: the public credential a tenant's website sends events with (POST /v1/events on the ingestion service). */
export default async function siteKeyRoutes(app: App, deps: ApiDeps) {

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['analytics'],
      summary: 'Create a site key for a website: events sent with it are accepted only from allowedOrigins.',
      body: CreateSiteKeyBody,
      response: { 201: SiteKeyView },
    },
  }, async (req, reply) => reply.code(201).send(await createSiteKey(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags: ['analytics'],
      summary: "This tenant's site keys, newest first.",
      querystring: z.object({ includeArchived: z.enum(['true', 'false']).default('false').transform((v) => v === 'true') }),
      response: { 200: z.object({ data: z.array(SiteKeyView) }) },
    },
  }, async (req) => ({ data: await listSiteKeys(deps.sql, tenantOf(req).tenantId, req.query.includeArchived) }))

  app.delete('/:siteKeyId', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['analytics'],
      summary: 'Archive a site key: within 30 s its events answer 410. Archiving twice is harmless.',
      params: SiteKeyParams,
      response: { 200: SiteKeyView },
    },
  }, async (req) => {
    const key = await archiveSiteKey(deps.sql, actorOf(req), req.params.siteKeyId)
    if (!key) throw new AppError('NOT_FOUND', `site key ${req.params.siteKeyId} not found`)
    return key
  })
}
