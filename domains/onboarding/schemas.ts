import { z } from 'zod'
import { STEP_NAMES } from './steps.js'

export const CHECK_INACTIVITY_TASK = 'onboarding__check_inactivity'
// One task for every session (a batch); jobs queued before migration 0038 still carry a sessionId, which the batch covers.
export const CheckInactivityPayload = z.object({ sessionId: z.uuid().optional() })

export const SEND_WHATSAPP_NUDGE_TASK = 'onboarding__send_whatsapp_nudge'
export const SendWhatsAppNudgePayload = z.object({ sessionId: z.uuid(), nudgeActivityId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]).transform(String) })

export const MESSAGE_ARRIVED_TASK = 'onboarding__message_arrived'
export const MessageArrivedPayload = z.object({ sessionId: z.uuid(), tenantId: z.uuid().nullable().optional(), wasAbandoned: z.boolean().optional() })

export const DELIVER_WEBHOOK_TASK = 'onboarding__deliver_webhook'
export const DeliverWebhookPayload = z.object({ eventId: z.uuid(), sessionId: z.uuid() })

export const StepParam = z.enum(STEP_NAMES)

// Public sign-up: optional prefill, and a honeypot field people never see (bots fill every input).
export const StartSessionBody = z.object({
  businessName: z.string().trim().min(2).max(120).optional(),
  contactEmail: z.email().max(254).optional(),
  website: z.string().max(200).optional(),
})

export const SaveStepBody = z.object({ fields: z.record(z.string(), z.unknown()) })

export const CreateSetupLinkBody = z.object({
  businessName: z.string().trim().min(2).max(120),
  contactEmail: z.email().max(254).optional(),
})

export const StepView = z.object({
  name: StepParam,
  title: z.string(),
  status: z.enum(['completed', 'current', 'blocked']),
  completedAt: z.string().nullable(),
  missing: z.array(z.string()),
  fields: z.record(z.string(), z.unknown()),
})

export const SessionView = z.object({
  sessionId: z.uuid(),
  status: z.enum(['in_progress', 'completed', 'abandoned']),
  stepsVersion: z.number().int(),
  currentStep: StepParam.nullable(),
  progress: z.number(),
  next: z.string(),
  steps: z.array(StepView),
  tenantId: z.uuid().nullable(),
  expiresAt: z.string(),
})

export const LinkView = z.object({ token: z.string(), resumeUrl: z.string(), expiresAt: z.string() })

export const FunnelView = z.object({
  from: z.string(), to: z.string(), started: z.number(), completed: z.number(), inProgress: z.number(), abandoned: z.number(),
  abandonmentRate: z.number(), resumeRate: z.number(),
  steps: z.array(z.object({ step: StepParam, reached: z.number(), completed: z.number(), dropOff: z.number(), dropOffRate: z.number(), abandonedHere: z.number(), medianSeconds: z.number().nullable() })),
})
