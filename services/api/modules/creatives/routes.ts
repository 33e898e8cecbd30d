import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { AddAssetBody, AssetView, CreateCreativeBody, CreativeVersionView, CreativeView, PatchCreativeBody } from '../../../../domains/campaigns/schemas.js'
import * as catalog from '../../../../domains/campaigns/catalog.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'
import { expectedVersion, withVersion } from '../campaigns/routes.js'

const CreativeParams = z.object({ creativeId: z.uuid() })
const CreativeDetail = CreativeView.extend({ assets: z.array(AssetView) })

/** Creatives (format, size, elements), every save a new version, with their assets. */
export default async function creativeRoutes(app: App, deps: ApiDeps) {
  const tags = ['creatives']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create a creative (version 1), optionally of a campaign.', body: CreateCreativeBody, response: { 201: CreativeView } },
  }, async (req, reply) => withVersion(reply.code(201), await catalog.createCreative(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Creatives, newest first.', querystring: z.object({ campaignId: z.uuid().optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }), response: { 200: z.object({ data: z.array(CreativeView) }) } },
  }, async (req) => catalog.listCreatives(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/:creativeId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One creative (its current version) with its assets.', params: CreativeParams, response: { 200: CreativeDetail } },
  }, async (req, reply) => withVersion(reply, (await catalog.getCreative(deps.sql, tenantOf(req).tenantId, req.params.creativeId)) ?? notFound(req.params.creativeId)))

  app.patch('/:creativeId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Save a new version. With If-Match or `version`, a stale version is a 409 with details.currentVersion.', params: CreativeParams, body: PatchCreativeBody, response: { 200: CreativeView } },
  }, async (req, reply) => withVersion(reply, await catalog.updateCreative(deps.sql, actorOf(req), req.params.creativeId, req.body, expectedVersion(req, req.body))))

  app.delete('/:creativeId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Soft-delete a creative.', params: CreativeParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await catalog.deleteCreative(deps.sql, actorOf(req), req.params.creativeId)
    return reply.code(204).send(null)
  })

  app.get('/:creativeId/versions', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Every version, newest first.', params: CreativeParams, response: { 200: z.object({ data: z.array(CreativeVersionView) }) } },
  }, async (req) => ({ data: await catalog.listCreativeVersions(deps.sql, tenantOf(req).tenantId, req.params.creativeId) }))

  app.post('/:creativeId/assets', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Attach an asset (image, video, logo, font, audio) by URL.', params: CreativeParams, body: AddAssetBody, response: { 201: AssetView } },
  }, async (req, reply) => reply.code(201).send(await catalog.addAsset(deps.sql, actorOf(req), req.params.creativeId, req.body)))

  app.delete('/:creativeId/assets/:assetId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Remove an asset.', params: CreativeParams.extend({ assetId: z.uuid() }), response: { 204: z.null() } },
  }, async (req, reply) => {
    await catalog.deleteAsset(deps.sql, actorOf(req), req.params.creativeId, req.params.assetId)
    return reply.code(204).send(null)
  })
}

const notFound = (id: string): never => {
  throw new AppError('NOT_FOUND', `creative ${id} not found`)
}
