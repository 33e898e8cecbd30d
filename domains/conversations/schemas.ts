import { z } from 'zod'
import { FlowState } from './flows/schema.js'

export const RUN_BOT_TASK = 'conversations__run_bot'
export const FLOW_TIMER_TASK = 'conversations__flow_timer'

/** Job payloads. Old jobs may carry old shapes: every task parses its payload first. */
export const RunBotPayload = z.object({ tenantId: z.uuid(), conversationId: z.uuid() })
export const FlowTimerPayload = z.object({
  tenantId: z.uuid(),
  conversationId: z.uuid(),
  dueAt: z.iso.datetime(),
  kind: z.enum(['ask_reminder', 'ask_timeout', 'wait']),
})
export type FlowTimerPayload = z.infer<typeof FlowTimerPayload>

/** What an inbound message means to the bot, extracted once when it is queued (conversations.events.payload). */
export const MessageEventPayload = z.object({
  wamid: z.string(),
  kind: z.string(),
  text: z.string().optional(),
  buttonId: z.string().optional(),
  listId: z.string().optional(),
  referralSourceId: z.string().optional(),
})
export type MessageEventPayload = z.infer<typeof MessageEventPayload>

// ---------------------------------------------------------------------------------------------------------
// Flows API.

export const CreateFlowBody = z.strictObject({
  /** The flow document (see domains/conversations/flows/README.md); validated in full. */
  document: z.unknown(),
  /** Publish this first version right away. */
  publish: z.boolean().default(false),
})
export const CreateFlowVersionBody = CreateFlowBody

export const FlowView = z.object({
  id: z.uuid(),
  name: z.string(),
  latestVersion: z.number(),
  publishedVersion: z.number().nullable(),
  publishedAt: z.date().nullable(),
  trigger: z.unknown(),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type FlowView = z.infer<typeof FlowView>

export const FlowVersionView = z.object({
  flowId: z.uuid(),
  version: z.number(),
  document: z.unknown(),
  published: z.boolean(),
  createdBy: z.string(),
  createdAt: z.date(),
})
export type FlowVersionView = z.infer<typeof FlowVersionView>

// ---------------------------------------------------------------------------------------------------------
// Conversations API.

export const ConversationView = z.object({
  id: z.uuid(),
  leadId: z.uuid(),
  phoneNumberId: z.uuid(),
  waId: z.string(),
  flowId: z.uuid().nullable(),
  flowVersion: z.number().nullable(),
  state: FlowState.nullable(),
  /** bot: the flow may act; handed_over: a person has the lead and the bot is silent until released. */
  mode: z.enum(['bot', 'handed_over']),
  handedOverAt: z.date().nullable(),
  handedOverBy: z.string().nullable(),
  handoverNote: z.string().nullable(),
  inboundCount: z.number(),
  lastEventAt: z.date().nullable(),
  lead: z.object({
    name: z.string().nullable(),
    profileName: z.string().nullable(),
    email: z.string().nullable(),
    status: z.string(),
    tags: z.array(z.string()),
    fields: z.record(z.string(), z.unknown()),
    optedOutAt: z.date().nullable(),
  }),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type ConversationView = z.infer<typeof ConversationView>

export const ConversationEventView = z.object({
  id: z.string(),
  kind: z.string(),
  messageId: z.uuid().nullable(),
  payload: z.unknown(),
  occurredAt: z.date(),
  status: z.string(),
  outcome: z.string().nullable(),
  actions: z.unknown().nullable(),
  appliedAt: z.date().nullable(),
})

export const ListConversationsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(500).optional(),
  leadId: z.uuid().optional(),
  mode: z.enum(['bot', 'handed_over']).optional(),
})

export const HandoverBody = z.strictObject({ note: z.string().trim().min(1).max(500).optional() })
