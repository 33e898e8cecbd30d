import { isSupportedCountry } from 'libphonenumber-js/max'
import { z } from 'zod'
import type { CountryCode } from '../leads/identity/phone.js'

export const FieldType = z.enum(['text', 'email', 'phone', 'number', 'select', 'checkbox', 'hidden'])
export type FieldType = z.infer<typeof FieldType>

/** The lead columns a form field can fill. */
export const LeadField = z.enum(['name', 'email', 'phone', 'company'])
export type LeadField = z.infer<typeof LeadField>

/** Default length limit of a text answer: enough for a message box. A form may raise it up to the ceiling. */
export const TEXT_MAX_LENGTH = 1000
const TEXT_LENGTH_CEILING = 10_000

/**
 * Body keys a submission may carry besides the form's fields, read into `meta`. A field may not take one of these
 * names (nor the form's honeypot name), or the submission could not tell the two apart.
 */
export const UTM_KEYS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content'] as const
export const RESERVED_KEYS: readonly string[] = [...UTM_KEYS, 'consent', 'started_at', '_ts', 'page_url', 'referrer', 'anonymous_id']

export const FieldName = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'lowercase letters, digits and underscores, starting with a letter, at most 63 characters')

export const CountryCodeSchema = z
  .string()
  .regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2 country code, e.g. BR')
  .refine(isSupportedCountry, 'not a country with a phone numbering plan we know')
  .transform((code) => code as CountryCode)

const HttpUrl = z.url({ protocol: /^https?$/, error: 'an absolute http(s) URL' }).max(2000)

export const SelectOption = z.strictObject({
  value: z.string().trim().min(1).max(200),
  label: z.string().trim().min(1).max(200),
})
export type SelectOption = z.infer<typeof SelectOption>

/** Which properties mean something for which field types; anything else is a mistake worth reporting. */
const PROPERTY_TYPES = {
  minLength: ['text'],
  maxLength: ['text'],
  min: ['number'],
  max: ['number'],
  options: ['select'],
  multiple: ['select'],
  defaultValue: ['hidden'],
} as const satisfies Record<string, readonly FieldType[]>

/** Which field types can fill which lead column: email and phone must go through their normalizers. */
const LEAD_FIELD_TYPES: Record<LeadField, readonly FieldType[]> = {
  name: ['text', 'hidden'],
  company: ['text', 'hidden', 'select'],
  email: ['email'],
  phone: ['phone'],
}

function inferMapsTo(field: { name: string; type: FieldType }): LeadField | null {
  if (field.type === 'email') return 'email'
  if (field.type === 'phone') return 'phone'
  if (field.type === 'text' && (field.name === 'name' || field.name === 'company')) return field.name
  return null
}

export const FormField = z
  .strictObject({
    name: FieldName,
    label: z.string().trim().min(1).max(200),
    type: FieldType,
    required: z.boolean().default(false),
    minLength: z.int().min(0).max(TEXT_LENGTH_CEILING).optional(),
    maxLength: z.int().min(1).max(TEXT_LENGTH_CEILING).optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    options: z.array(SelectOption).min(1).max(200).optional(),
    multiple: z.boolean().optional(),
    defaultValue: z.string().max(TEXT_MAX_LENGTH).optional(),
    /** null: fills no lead column. Omitted: inferred (email → email, phone → phone, a text field named name/company). */
    maps_to: LeadField.nullable().optional(),
  })
  .superRefine((field, ctx) => {
    for (const [property, types] of Object.entries(PROPERTY_TYPES)) {
      if (field[property as keyof typeof PROPERTY_TYPES] !== undefined && !(types as readonly FieldType[]).includes(field.type)) {
        ctx.addIssue({ code: 'custom', path: [property], message: `only applies to ${types.join(', ')} fields` })
      }
    }
    if (field.type === 'select') {
      if (!field.options) ctx.addIssue({ code: 'custom', path: ['options'], message: 'a select field needs at least one option' })
      const seen = new Set<string>()
      field.options?.forEach((option, i) => {
        if (seen.has(option.value)) ctx.addIssue({ code: 'custom', path: ['options', i, 'value'], message: `option value "${option.value}" is repeated` })
        seen.add(option.value)
      })
      if (field.multiple && field.maps_to) ctx.addIssue({ code: 'custom', path: ['maps_to'], message: 'a multiple select cannot fill a lead field' })
    }
    if (field.minLength !== undefined && field.maxLength !== undefined && field.minLength > field.maxLength) {
      ctx.addIssue({ code: 'custom', path: ['minLength'], message: 'cannot exceed maxLength' })
    }
    if (field.min !== undefined && field.max !== undefined && field.min > field.max) {
      ctx.addIssue({ code: 'custom', path: ['min'], message: 'cannot exceed max' })
    }
    if (field.maps_to && !LEAD_FIELD_TYPES[field.maps_to].includes(field.type)) {
      ctx.addIssue({ code: 'custom', path: ['maps_to'], message: `the lead's ${field.maps_to} can only come from ${LEAD_FIELD_TYPES[field.maps_to].join(', ')} fields` })
    }
  })
  .transform((field) => ({
    ...field,
    maxLength: field.type === 'text' ? (field.maxLength ?? TEXT_MAX_LENGTH) : field.maxLength,
    maps_to: field.maps_to === undefined ? inferMapsTo(field) : field.maps_to,
  }))
export type FormField = z.output<typeof FormField>
export type FormFieldInput = z.input<typeof FormField>

/** The checks that need the whole list: each name once, each lead column filled by at most one field. */
export const FormFields = z
  .array(FormField)
  .min(1)
  .max(50)
  .superRefine((fields, ctx) => {
    const names = new Map<string, number>()
    const mapped = new Map<LeadField, string>()
    fields.forEach((field, i) => {
      if (names.has(field.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${field.name}" is already the name of field ${names.get(field.name)}` })
      else names.set(field.name, i)
      if (RESERVED_KEYS.includes(field.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${field.name}" is reserved for submission metadata` })
      if (!field.maps_to) return
      const other = mapped.get(field.maps_to)
      if (other !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'maps_to'],
          message: `the lead's ${field.maps_to} is already filled by "${other}"; set maps_to: null on one of them`,
        })
      } else mapped.set(field.maps_to, field.name)
    })
  })

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/**
 * A browser origin allowed to post the form: https://host[:port], or http://localhost[:port] for development.
 * No path, query, credentials or wildcards: it is compared with the Origin header, which has none of them.
 * Returns the canonical spelling (lowercase host, default port dropped) so comparison is a plain string equality.
 */
export const AllowedOrigin = z
  .string()
  .trim()
  .max(300)
  .transform((text, ctx) => {
    const origin = canonicalOrigin(text)
    if (!origin) {
      ctx.addIssue({ code: 'custom', message: 'an origin such as https://example.com (scheme and host, optional port, no path); http only for localhost' })
      return z.NEVER
    }
    return origin
  })

function canonicalOrigin(text: string): string | null {
  if (/[?#]/.test(text) || !URL.canParse(text)) return null
  const url = new URL(text)
  if (url.username || url.password || url.pathname !== '/') return null
  const local = LOCAL_HOSTS.has(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) return null
  // A real host has a dot (or is local); this also keeps out "*" and other characters URL lets through in hosts.
  if (!local && !/^(?=.*\.)[a-z0-9.-]+$/.test(url.hostname)) return null
  return url.origin
}

const AllowedOrigins = z
  .array(AllowedOrigin)
  .max(20)
  .transform((origins) => [...new Set(origins)])

export const ConsentSettings = z.strictObject({
  required: z.boolean(),
  text: z.string().trim().min(1).max(2000),
  policyVersion: z.string().trim().min(1).max(50),
  policyUrl: HttpUrl.optional(),
})

/** Every property of a form, as it is stored; the tenant's default country applies when the form has none. */
const formShape = {
  name: z.string().trim().min(1).max(200),
  fields: FormFields,
  allowedOrigins: AllowedOrigins,
  defaultCountry: CountryCodeSchema.optional(),
  redirectUrl: HttpUrl.optional(),
  successMessage: z.string().trim().min(1).max(1000).optional(),
  consent: ConsentSettings.optional(),
  honeypotField: FieldName,
  minFillSeconds: z.int().min(0).max(3600),
}

function checkHoneypot(form: { fields?: FormField[]; honeypotField?: string }, ctx: z.RefinementCtx) {
  if (!form.fields || !form.honeypotField) return
  if (RESERVED_KEYS.includes(form.honeypotField)) {
    ctx.addIssue({ code: 'custom', path: ['honeypotField'], message: `"${form.honeypotField}" is reserved for submission metadata` })
  }
  const i = form.fields.findIndex((field) => field.name === form.honeypotField)
  if (i >= 0) ctx.addIssue({ code: 'custom', path: ['fields', i, 'name'], message: `"${form.honeypotField}" is the form's honeypot field; rename one of them` })
}

export const FormDefinition = z
  .strictObject({
    ...formShape,
    allowedOrigins: formShape.allowedOrigins.default([]),
    // Bots fill every input; a field called "website" that people never see is one they rarely skip.
    honeypotField: formShape.honeypotField.default('website'),
    // Three seconds is faster than anyone fills a form by hand; 0 turns the check off.
    minFillSeconds: formShape.minFillSeconds.default(3),
  })
  .superRefine(checkHoneypot)
export type FormDefinition = z.output<typeof FormDefinition>

export const CreateFormBody = FormDefinition
export type CreateFormBody = FormDefinition

/**
 * A partial update: omitted properties keep their stored value, null clears an optional one. Checks spanning
 * properties (honeypot vs field names) need the merged form, so the service re-parses it with FormDefinition.
 */
export const UpdateFormBody = z
  .strictObject({
    name: formShape.name.optional(),
    fields: formShape.fields.optional(),
    allowedOrigins: formShape.allowedOrigins.optional(),
    defaultCountry: CountryCodeSchema.nullable().optional(),
    redirectUrl: HttpUrl.nullable().optional(),
    successMessage: formShape.successMessage.unwrap().nullable().optional(),
    consent: ConsentSettings.nullable().optional(),
    honeypotField: formShape.honeypotField.optional(),
    minFillSeconds: formShape.minFillSeconds.optional(),
  })
  .superRefine((form, ctx) => checkHoneypot(form, ctx))
  .refine((form) => Object.keys(form).length > 0, 'nothing to update')
export type UpdateFormBody = z.output<typeof UpdateFormBody>

// ---------------------------------------------------------------------------------------------------------
// The submission inbox and its jobs.

export const PROCESS_SUBMISSIONS_TASK = 'marketing__process_submissions'
export const PROCESS_SUBMISSION_TASK = 'marketing__process_submission'
/** Attempts for one submission on its own before it is parked with its error (backoff: e^attempt seconds). */
export const SUBMISSION_MAX_ATTEMPTS = 8

/** One job per group commit and tenant: the inbox rows it stored. */
export const ProcessSubmissionsPayload = z.object({ tenantId: z.uuid(), submissionIds: z.array(z.uuid()).min(1) })
/** The slow path: one submission that failed in its batch, retried with backoff. */
export const ProcessSubmissionPayload = z.object({ tenantId: z.uuid(), submissionId: z.uuid() })

/**
 * What validation made of a submission, as the inbox keeps it until the worker applies it. Everything the form's
 * definition decided (which answers fill which lead column, the consent text shown) is settled here, so an edit of
 * the form between the answer and the processing changes nothing.
 */
export const InboxSubmission = z.object({
  lead: z.object({ email: z.string().nullable(), phoneE164: z.string().nullable(), name: z.string().nullable(), company: z.string().nullable() }),
  answers: z.record(z.string(), z.unknown()),
  /** The answers no lead column takes: they go to the lead's custom fields. */
  customFields: z.record(z.string(), z.unknown()),
  utm: z.record(z.string(), z.string()),
  pageUrl: z.string().nullable(),
  referrer: z.string().nullable(),
  fillSeconds: z.number().nullable(),
  consent: z.object({ granted: z.boolean(), purpose: z.string(), policyVersion: z.string(), policyUrl: z.string().nullable() }).nullable(),
  /** The page's visitor id (the site's analytics anonymousId), linked to the lead when applied. Older rows have none. */
  anonymousId: z.string().min(1).max(200).nullable().default(null),
  /** The partner-link visitor cookie the request carried (`wa_lv`), linked to the lead like anonymousId. Older rows have none. */
  linkVisitorId: z.string().min(1).max(64).nullable().default(null),
})
export type InboxSubmission = z.infer<typeof InboxSubmission>
