import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import {
  CampaignStatus, CampaignView, CreateCampaignBody, CreateSnapshotBody, DraftView, JsonPatchOp, PatchCampaignBody, Platform, PublicationView,
  SaveDraftBody, SnapshotView, StatusChangeBody, UpsertPublicationBody, VersionBody,
} from '../../../../domains/campaigns/schemas.js'
import * as campaigns from '../../../../domains/campaigns/service.js'
import * as drafts from '../../../../domains/campaigns/drafts.js'
import { listPublications, recordPublication } from '../../../../domains/campaigns/catalog.js'
import { ImportBody, importLocalStorage } from '../../../../domains/campaigns/legacy-import.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const CampaignParams = z.object({ campaignId: z.uuid() })
const IfMatch = z.object({ 'if-match': z.string().max(40).optional() }).loose()
const ImportReportView = z.object({
  summary: z.object({ imported: z.number().int(), skipped: z.number().int(), refused: z.number().int() }),
  byKey: z.record(z.string(), z.object({ imported: z.number().int(), skipped: z.number().int(), refused: z.number().int() })),
  entries: z.array(z.object({
    key: z.string(), legacyId: z.string().optional(), outcome: z.enum(['imported', 'skipped', 'refused']), reason: z.string().optional(),
    target: z.object({ type: z.string(), id: z.uuid() }).optional(),
  })),
})
const DiffView = z.object({
  from: z.object({ ref: z.string(), version: z.number().int() }), to: z.object({ ref: z.string(), version: z.number().int() }),
  fields: z.array(z.string()), patch: z.array(JsonPatchOp),
})

/**
 * The version a write is conditional on: `version` in the body, else If-Match (`"3"`, `W/"3"` or `3`). Both absent:
 * unconditional. A malformed If-Match is a 400 rather than an unconditional write.
 */
export function expectedVersion(req: FastifyRequest, body?: { version?: number } | null): number | undefined {
  if (body?.version !== undefined) return body.version
  const header = req.headers['if-match']
  if (header === undefined || header === '*') return undefined
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(String(header))
  if (!m) throw new AppError('BAD_REQUEST', 'invalid If-Match: a version such as "3"', { details: [{ in: 'headers', path: 'if-match', message: 'a version such as "3"' }] })
  return Number(m[1])
}
/** ETag carries the version, so a client can send it back as If-Match. */
export const withVersion = <T extends { version: number }>(reply: FastifyReply, body: T) => {
  reply.header('etag', `"${body.version}"`)
  return body
}

/** Campaigns: the builder's campaigns, their lifecycle, drafts, versions and snapshots, publications, and the legacy import. */
export default async function campaignRoutes(app: App, deps: ApiDeps) {
  const tags = ['campaigns']
  const versioned = { headers: IfMatch }
  // Autosaves are group-committed: answered once their flush has committed (domains/campaigns/drafts.ts).
  const autosave = new drafts.DraftAutosave(deps.sql, { lanes: 1, onError: (err) => deps.log.error({ err }, 'saving drafts failed') })

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Create a campaign (status draft, version 1). Budget a decimal string ≥ 0 with an ISO 4217 currency; config validated and at most 64 KiB.', body: CreateCampaignBody, response: { 201: CampaignView } },
  }, async (req, reply) => withVersion(reply.code(201), await campaigns.createCampaign(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "This tenant's campaigns, newest first (deleted ones with ?deleted=true).",
      querystring: PageQuery.extend({ status: CampaignStatus.optional(), productId: z.uuid().optional(), q: z.string().max(200).optional(), deleted: z.stringbool().optional() }),
      response: { 200: z.object({ data: z.array(CampaignView), nextCursor: z.string().nullable() }) },
    },
  }, async (req) => campaigns.listCampaigns(deps.sql, tenantOf(req).tenantId, req.query))

  app.post('/import/local-storage', {
    config: { access: 'tenant:write' },
    bodyLimit: deps.config.CAMPAIGN_IMPORT_MAX_BYTES,
    schema: {
      tags, summary: 'Import the old browser builder\'s localStorage dump (campaigns, saved_campaigns, campaign_draft_<id>, campaign_minimal_<id>, products, backgrounds, sample_data). Idempotent; reports every key and item.',
      body: ImportBody, response: { 200: ImportReportView },
    },
  }, async (req) => importLocalStorage(deps.sql, actorOf(req), req.body))

  app.get('/:campaignId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One campaign (also when soft-deleted: deletedAt says so). ETag is its version.', params: CampaignParams, response: { 200: CampaignView } },
  }, async (req, reply) => withVersion(reply, (await campaigns.getCampaign(deps.sql, tenantOf(req).tenantId, req.params.campaignId)) ?? notFound(req.params.campaignId)))

  app.patch('/:campaignId', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: 'Change a campaign (not its status: POST …/status). With If-Match or `version`, a stale version is a 409 with details.currentVersion.',
      params: CampaignParams, headers: versioned.headers, body: PatchCampaignBody, response: { 200: CampaignView },
    },
  }, async (req, reply) => {
    const { version: _v, ...change } = req.body
    return withVersion(reply, await campaigns.updateCampaign(deps.sql, actorOf(req), req.params.campaignId, change, expectedVersion(req, req.body)))
  })

  app.post('/:campaignId/status', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: 'Move along draft → scheduled → active → paused → completed → archived. A move not allowed is a 409 whose details name the allowed ones.',
      params: CampaignParams, headers: versioned.headers, body: StatusChangeBody, response: { 200: CampaignView },
    },
  }, async (req, reply) => withVersion(reply, await campaigns.changeStatus(deps.sql, actorOf(req), req.params.campaignId, req.body.status, expectedVersion(req, req.body))))

  app.delete('/:campaignId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Soft-delete (POST …/restore brings it back).', params: CampaignParams, headers: versioned.headers, response: { 200: CampaignView } },
  }, async (req, reply) => withVersion(reply, await campaigns.deleteCampaign(deps.sql, actorOf(req), req.params.campaignId, expectedVersion(req))))

  app.post('/:campaignId/restore', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Restore a soft-deleted campaign (a new version).', params: CampaignParams, response: { 200: CampaignView } },
  }, async (req, reply) => withVersion(reply, await campaigns.restoreCampaign(deps.sql, actorOf(req), req.params.campaignId)))

  app.get('/:campaignId/history', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: "The campaign's audit entries, newest first: each save with its version and the fields it changed, status moves, snapshots, rollbacks.",
      params: CampaignParams, querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
      response: { 200: z.object({ data: z.array(z.object({ id: z.string(), actor: z.string(), action: z.string(), details: z.unknown(), requestId: z.string().nullable(), createdAt: z.date() })) }) },
    },
  }, async (req) => ({ data: await campaigns.campaignHistory(deps.sql, tenantOf(req).tenantId, req.params.campaignId, req.query.limit) }))

  // Drafts.
  app.put('/:campaignId/draft', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Auto-save the builder\'s step data (group-committed with concurrent saves; at most 256 KiB). Answered once stored. Expires 7 days after the last save.', params: CampaignParams, body: SaveDraftBody, response: { 200: DraftView } },
  }, async (req) => autosave.save(tenantOf(req).tenantId, req.params.campaignId, req.body))

  app.get('/:campaignId/draft', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'The saved draft (404 when none, or expired).', params: CampaignParams, response: { 200: DraftView } },
  }, async (req) => drafts.getDraft(deps.sql, tenantOf(req).tenantId, req.params.campaignId))

  app.delete('/:campaignId/draft', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Discard the draft.', params: CampaignParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await drafts.discardDraft(deps.sql, tenantOf(req).tenantId, req.params.campaignId)
    return reply.code(204).send(null)
  })

  app.post('/:campaignId/draft/publish', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: "Apply the draft's campaign fields to the campaign and remove the draft, in one transaction. 409 if the campaign changed since the draft's base version (unless `version` says to overwrite).",
      params: CampaignParams, headers: versioned.headers, body: VersionBody.nullish(), response: { 200: CampaignView },
    },
  }, async (req, reply) => withVersion(reply, await drafts.publishDraft(deps.sql, actorOf(req), req.params.campaignId, expectedVersion(req, req.body))))

  // Snapshots.
  app.post('/:campaignId/snapshots', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: "Name the campaign's current state (its version); labels are unique per campaign.", params: CampaignParams, body: CreateSnapshotBody, response: { 201: SnapshotView } },
  }, async (req, reply) => reply.code(201).send(await campaigns.createSnapshot(deps.sql, actorOf(req), req.params.campaignId, req.body.label)))

  app.get('/:campaignId/snapshots', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Snapshots, newest first.', params: CampaignParams, response: { 200: z.object({ data: z.array(SnapshotView) }) } },
  }, async (req) => ({ data: await campaigns.listSnapshots(deps.sql, tenantOf(req).tenantId, req.params.campaignId) }))

  app.get('/:campaignId/snapshots/diff', {
    config: { access: 'tenant:read' },
    schema: {
      tags, summary: 'What changed from one snapshot to another (`current`: the campaign now), as RFC 6902 JSON Patch operations and the fields they touch.',
      params: CampaignParams, querystring: z.object({ from: z.string().max(40), to: z.string().max(40).default('current') }), response: { 200: DiffView },
    },
  }, async (req) => campaigns.diffSnapshots(deps.sql, tenantOf(req).tenantId, req.params.campaignId, req.query.from, req.query.to))

  app.post('/:campaignId/snapshots/:snapshotId/rollback', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: "Put the snapshot's state back as a new version (the status stays: it moves by the lifecycle only).",
      params: CampaignParams.extend({ snapshotId: z.uuid() }), headers: versioned.headers, body: VersionBody.nullish(), response: { 200: CampaignView },
    },
  }, async (req, reply) => withVersion(reply, await campaigns.rollbackToSnapshot(deps.sql, actorOf(req), req.params.campaignId, req.params.snapshotId, expectedVersion(req, req.body))))

  // Publications.
  app.put('/:campaignId/publications/:platform', {
    config: { access: 'tenant:write' },
    schema: {
      tags, summary: 'Record the campaign as published on a platform: its id there, status, metrics (spend as a decimal string with its currency) and last sync.',
      params: CampaignParams.extend({ platform: Platform }), body: UpsertPublicationBody, response: { 200: PublicationView },
    },
  }, async (req) => recordPublication(deps.sql, actorOf(req), req.params.campaignId, req.params.platform, req.body))

  app.get('/:campaignId/publications', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'The campaign on each platform.', params: CampaignParams, response: { 200: z.object({ data: z.array(PublicationView) }) } },
  }, async (req) => ({ data: await listPublications(deps.sql, tenantOf(req).tenantId, req.params.campaignId) }))
}

const notFound = (id: string): never => {
  throw new AppError('NOT_FOUND', `campaign ${id} not found`)
}
