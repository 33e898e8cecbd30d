import { type Sql, withTenant } from '../../lib/db.js'
import { AppError } from '../../lib/errors.js'
import { insertAuditEntry } from '../tenancy/queries.js'
import { botConversationHandedOver, recordPlatformEvents } from '../analytics/platform-events.js'
import { FlowDocument } from './flows/schema.js'
import * as q from './queries.js'
import { RUN_BOT_TASK, type ConversationView, type FlowVersionView, type FlowView } from './schemas.js'

export interface Actor {
  tenantId: string
  /** Who did it, for the audit log: `api_key:<id>`. */
  actor: string
  requestId?: string
}

/** Validates a flow document with the flow language's schema; a bad one is a 400 naming every problem. */
export function parseFlowDocument(document: unknown): FlowDocument {
  const result = FlowDocument.safeParse(document)
  if (result.success) return result.data
  const details = result.error.issues.map((i) => ({ in: 'body', path: ['document', ...i.path].join('.'), message: i.message }))
  throw new AppError('BAD_REQUEST', `invalid flow document: ${details.slice(0, 5).map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details })
}

/** A new flow with its first version (stored as written, so what the tenant sent is what they get back). */
export async function createFlow(sql: Sql, who: Actor, input: { document: unknown; publish: boolean }): Promise<{ flow: FlowView; version: FlowVersionView }> {
  const doc = parseFlowDocument(input.document)
  return withTenant(sql, who.tenantId, async (tx) => {
    const { id } = await q.insertFlow(tx, { tenantId: who.tenantId, name: doc.name })
    const created = await q.insertFlowVersion(tx, { tenantId: who.tenantId, flowId: id, name: doc.name, document: input.document, createdBy: who.actor })
    if (input.publish) await q.publishFlowVersion(tx, id, created!.version)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'flow.created', targetType: 'flow', targetId: id, details: { version: 1, published: input.publish }, requestId: who.requestId })
    return { flow: (await q.getFlow(tx, id))!, version: (await q.getFlowVersion(tx, id, created!.version))! }
  })
}

/** A new version; the published one (and every run in progress, pinned to its own version) is untouched. */
export async function addFlowVersion(sql: Sql, who: Actor, flowId: string, input: { document: unknown; publish: boolean }) {
  const doc = parseFlowDocument(input.document)
  return withTenant(sql, who.tenantId, async (tx) => {
    const created = await q.insertFlowVersion(tx, { tenantId: who.tenantId, flowId, name: doc.name, document: input.document, createdBy: who.actor })
    if (!created) throw new AppError('NOT_FOUND', `flow ${flowId} not found`)
    if (input.publish) await q.publishFlowVersion(tx, flowId, created.version)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'flow.version_created', targetType: 'flow', targetId: flowId, details: { version: created.version, published: input.publish }, requestId: who.requestId })
    return { flow: (await q.getFlow(tx, flowId))!, version: (await q.getFlowVersion(tx, flowId, created.version))! }
  })
}

/**
 * Makes `version` the one new conversations start on (null: none start). Conversations already running keep the
 * version they started with until their run ends.
 */
export async function publishFlow(sql: Sql, who: Actor, flowId: string, version: number | null): Promise<FlowView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const flow = await q.getFlow(tx, flowId)
    if (!flow) throw new AppError('NOT_FOUND', `flow ${flowId} not found`)
    if (version !== null && version > flow.latestVersion) throw new AppError('NOT_FOUND', `flow ${flowId} has no version ${version}`)
    await q.publishFlowVersion(tx, flowId, version)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: version === null ? 'flow.unpublished' : 'flow.published', targetType: 'flow', targetId: flowId, details: { version }, requestId: who.requestId })
    return (await q.getFlow(tx, flowId))!
  })
}

/** A person takes over: the bot is silent for this lead from now on, until released. */
export async function handOverConversation(sql: Sql, who: Actor, conversationId: string, note: string | undefined): Promise<ConversationView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const handover = await q.markHandedOver(tx, conversationId, who.actor, note ?? null)
    if (!handover) throw new AppError('NOT_FOUND', `conversation ${conversationId} not found`)
    if (handover.fresh) await recordPlatformEvents(tx, [botConversationHandedOver({ conversationId, flowId: handover.flowId, leadId: handover.leadId, at: handover.handedOverAt, by: 'person' })])
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'conversation.handed_over', targetType: 'conversation', targetId: conversationId, details: { note: note ?? null }, requestId: who.requestId })
    return (await q.getConversation(tx, conversationId))!
  })
}

/**
 * Gives the lead back to the bot. The release is queued behind the messages that arrived while a person had the
 * lead (they were for the person, not answers to the bot), and a flow that handed over resumes where it said.
 */
export async function releaseConversation(sql: Sql, who: Actor, conversationId: string, releaseId: string): Promise<ConversationView> {
  return withTenant(sql, who.tenantId, async (tx) => {
    const conversation = await q.getConversation(tx, conversationId)
    if (!conversation) throw new AppError('NOT_FOUND', `conversation ${conversationId} not found`)
    if (conversation.mode !== 'handed_over') throw new AppError('CONFLICT', 'this conversation is not handed over to a person')
    await q.insertEvent(tx, { tenantId: who.tenantId, conversationId, kind: 'release', dedupeKey: `release:${releaseId}`, messageId: null, payload: { by: who.actor }, occurredAt: new Date() })
    await q.enqueueRunBot(tx, who.tenantId, conversationId, RUN_BOT_TASK)
    await insertAuditEntry(tx, { tenantId: who.tenantId, actor: who.actor, action: 'conversation.released', targetType: 'conversation', targetId: conversationId, details: {}, requestId: who.requestId })
    return conversation
  })
}
