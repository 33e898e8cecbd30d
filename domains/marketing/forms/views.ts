import { z } from 'zod'
import { FieldType, LeadField } from './schemas.js'

// What the APIs answer about forms. Plain shapes (no transforms or refinements): they describe stored data.

const FormFieldView = z.object({
  name: z.string(),
  label: z.string(),
  type: FieldType,
  required: z.boolean(),
  minLength: z.number().optional(),
  maxLength: z.number().optional(),
  min: z.number().optional(),
  max: z.number().optional(),
  options: z.array(z.object({ value: z.string(), label: z.string() })).optional(),
  multiple: z.boolean().optional(),
  defaultValue: z.string().optional(),
  maps_to: LeadField.nullable(),
})

export const FormView = z.object({
  id: z.uuid(),
  publicKey: z.string(),
  /** Where pages post, relative to the ingestion service (webhooks) base URL. */
  submitPath: z.string(),
  name: z.string(),
  status: z.enum(['active', 'archived']),
  fields: z.array(FormFieldView),
  allowedOrigins: z.array(z.string()),
  defaultCountry: z.string().nullable(),
  redirectUrl: z.string().nullable(),
  successMessage: z.string().nullable(),
  consent: z.object({ required: z.boolean(), text: z.string(), policyVersion: z.string(), policyUrl: z.string().optional() }).nullable(),
  honeypotField: z.string(),
  minFillSeconds: z.number(),
  createdBy: z.string(),
  createdAt: z.date(),
  updatedAt: z.date(),
  archivedAt: z.date().nullable(),
})
export type FormView = z.infer<typeof FormView>

export const SubmissionView = z.object({
  id: z.uuid(),
  leadId: z.uuid(),
  answers: z.unknown(),
  utm: z.unknown(),
  pageUrl: z.string().nullable(),
  referrer: z.string().nullable(),
  submittedAt: z.date(),
})

/** The public endpoint's JSON answer, identical for accepted and quietly discarded submissions. */
export const SubmissionAccepted = z.object({
  status: z.literal('accepted'),
  submissionId: z.uuid(),
  message: z.string().nullable(),
  redirectUrl: z.string().nullable(),
})
export type SubmissionAccepted = z.infer<typeof SubmissionAccepted>
