import { z } from 'zod'
import { PageQuery } from '../../../lib/pagination.js'

export const LeadStatus = z.enum(['new', 'contacted', 'qualified', 'converted', 'lost'])
export type LeadStatus = z.infer<typeof LeadStatus>

export const LeadView = z.object({
  id: z.uuid(),
  phoneE164: z.string().nullable(),
  waId: z.string().nullable(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  profileName: z.string().nullable(),
  company: z.string().nullable(),
  source: z.string(),
  sourceDetails: z.unknown(),
  status: LeadStatus,
  owner: z.string().nullable(),
  tags: z.array(z.string()),
  fields: z.unknown(),
  optedOutAt: z.date().nullable(),
  /** Set when this lead was found to be the same person as another: follow it to the surviving lead. */
  mergedInto: z.uuid().nullable(),
  firstSeenAt: z.date(),
  lastSeenAt: z.date(),
  createdAt: z.date(),
  updatedAt: z.date(),
})
export type LeadView = z.infer<typeof LeadView>

/** One entry of a lead's timeline: an interaction, with its WhatsApp message when it is one. */
export const TimelineEntry = z.object({
  id: z.string(),
  type: z.string(),
  channel: z.string(),
  actor: z.string(),
  occurredAt: z.date(),
  details: z.unknown(),
  message: z
    .object({ id: z.uuid(), direction: z.string(), type: z.string(), content: z.unknown(), status: z.string() })
    .nullable(),
})
export type TimelineEntry = z.infer<typeof TimelineEntry>

export const ConsentView = z.object({
  id: z.string(),
  channel: z.string(),
  formId: z.uuid().nullable(),
  submissionId: z.uuid().nullable(),
  granted: z.boolean(),
  purpose: z.string(),
  policyVersion: z.string(),
  policyUrl: z.string().nullable(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  occurredAt: z.date(),
})
export type ConsentView = z.infer<typeof ConsentView>

export const MergeView = z.object({
  id: z.string(),
  survivorId: z.uuid(),
  mergedId: z.uuid(),
  reason: z.string(),
  matchedOn: z.unknown(),
  actor: z.string(),
  requestId: z.string().nullable(),
  mergedAt: z.date(),
})
export type MergeView = z.infer<typeof MergeView>

const Tag = z.string().trim().min(1).max(50).regex(/^[^,\s][^,]*$/, 'no commas')
const isoDate = z.iso.datetime({ offset: true }).or(z.iso.date()).transform((v) => new Date(v))

/** Filters shared by the list and the CSV export. */
export const LeadFilter = z.object({
  status: LeadStatus.optional(),
  source: z.string().trim().min(1).max(50).optional(),
  tag: Tag.optional(),
  owner: z.string().trim().min(1).max(200).optional(),
  createdFrom: isoDate.optional().describe('inclusive; ISO date or date-time'),
  createdTo: isoDate.optional().describe('exclusive; ISO date or date-time'),
  q: z.string().trim().min(1).max(200).optional().describe('an email or phone number (exact, normalized), or the start of a name'),
})
export type LeadFilter = z.infer<typeof LeadFilter>

export const LeadListQuery = PageQuery.extend(LeadFilter.shape)

export const LeadParams = z.object({ leadId: z.uuid() })

const Owner = z.string().trim().min(1).max(200)

export const PatchLeadBody = z
  .strictObject({
    status: LeadStatus.optional(),
    owner: Owner.nullable().optional(),
    tags: z.array(Tag).max(50).optional(),
    name: z.string().trim().min(1).max(200).nullable().optional(),
    company: z.string().trim().min(1).max(200).nullable().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, 'nothing to update')
export type PatchLeadBody = z.infer<typeof PatchLeadBody>

export const NoteBody = z.strictObject({ text: z.string().trim().min(1).max(5000) })

export const BulkLeadsBody = z
  .strictObject({
    leadIds: z.array(z.uuid()).min(1).max(1000),
    status: LeadStatus.optional(),
    addTags: z.array(Tag).max(50).optional(),
    removeTags: z.array(Tag).max(50).optional(),
  })
  .refine((b) => b.status !== undefined || (b.addTags?.length ?? 0) > 0 || (b.removeTags?.length ?? 0) > 0, 'give status, addTags or removeTags')
export type BulkLeadsBody = z.infer<typeof BulkLeadsBody>

/** What identity resolution needs of one sighting of a person (a form submission, an API call). */
export interface LeadSighting {
  email: string | null
  phoneE164: string | null
  /** phoneMatchKey(phoneE164): the identity key, never derived anywhere else. */
  phoneKey: string | null
  name: string | null
  company: string | null
  fields: Record<string, unknown>
  source: string
  sourceDetails: Record<string, unknown>
  at: Date
}
