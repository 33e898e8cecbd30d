import { z } from 'zod'

/** The drain (services/workers/tasks/analytics__forward_posthog.ts), run by the crontab every minute. */
export const FORWARD_POSTHOG_TASK = 'analytics__forward_posthog'
export const ForwardPosthogPayload = z.object({}).passthrough()
/** The person-deletion drain (services/workers/tasks/analytics__delete_posthog_persons.ts): crontab, and enqueued by an erasure. */
export const DELETE_POSTHOG_PERSONS_TASK = 'analytics__delete_posthog_persons'
export const DeletePosthogPersonsPayload = z.object({}).passthrough()

/**
 * What a tenant forwards when it does not choose: the event's name and time (always), where the visit came from
 * (acquisition source and channel, country, device, browser, OS), which part of the product recorded it (producer),
 * and the dimension properties every rollup groups by. Nothing that names a person.
 */
export const DEFAULT_POSTHOG_PROPERTIES = [
  'producer', 'source', 'channel', 'country', 'device', 'browser', 'os',
  'formId', 'flowId', 'templateName', 'campaignId', 'experimentKey', 'variationKey',
] as const

/**
 * Property names that name, reach or quote a person: refused in an allow-list whatever the tenant says (a phone,
 * an email, a name, message text, an address, an IP, a user agent, a URL or referrer, visitor and session ids, a
 * lead id). The default list is exempt (templateName names a template, not a person).
 */
const PERSONAL_NAME = /(phone|e-?mail|name|text|body|message|content|address|^ip$|_ip$|ipaddr|user_?agent|ua$|wa_?id|url|referr?er|anonymous|session|lead|contact|cpf|document|birth)/i

export const isPersonalPropertyName = (name: string) =>
  !(DEFAULT_POSTHOG_PROPERTIES as readonly string[]).includes(name) && PERSONAL_NAME.test(name)

const PropertyName = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'a property name: a letter, then letters, digits or _ (at most 64)')
  .refine((n) => !isPersonalPropertyName(n), { message: 'looks personal: PostHog never receives it' })

/** A PostHog key as PostHog issues them (phc_… project keys, phx_… personal keys): no spaces, bounded. */
const PosthogKey = z.string().min(8).max(200).regex(/^\S+$/, 'a PostHog key has no spaces')
const Origin = z.url().refine((u) => /^https?:\/\/[^/]+\/?$/.test(u), { message: 'an origin: scheme and host only, e.g. https://eu.i.posthog.com' })

/**
 * The tenant's own PostHog project. Keys are sealed when stored and never returned. `host` is the ingestion host
 * (default: the operator's POSTHOG_HOST); `personalApiKey` + `projectId` (+ `appHost`, default the host without
 * ".i") let erasures delete persons there too. Every host must be one of POSTHOG_ALLOWED_HOSTS.
 */
export const PosthogProjectBody = z.strictObject({
  apiKey: PosthogKey,
  host: Origin.optional(),
  personalApiKey: PosthogKey.optional(),
  projectId: z.string().regex(/^\d{1,20}$/, 'a PostHog project id (digits)').optional(),
  appHost: Origin.optional(),
}).refine((p) => (p.personalApiKey === undefined) === (p.projectId === undefined), {
  message: 'personalApiKey and projectId go together (both are needed to delete persons)', path: ['projectId'],
})

export type PosthogProjectBody = z.infer<typeof PosthogProjectBody>

export const PutPosthogSettingsBody = z.strictObject({
  enabled: z.boolean(),
  /** Replaces the default list; null goes back to it. Event name and time are always sent. */
  allowedProperties: z.array(PropertyName).max(50).nullable().optional(),
  /** Forward to this tenant's own project instead of the operator's; null goes back to the operator's; absent keeps it. */
  project: PosthogProjectBody.nullable().optional(),
})
export type PutPosthogSettingsBody = z.infer<typeof PutPosthogSettingsBody>

export const PosthogSettingsView = z.object({
  enabled: z.boolean(),
  allowedProperties: z.array(z.string()),
  /** False while allowedProperties is the default list. */
  customProperties: z.boolean(),
  /** Whether events have somewhere to go: the tenant's own project, or the operator's (POSTHOG_API_KEY). */
  configured: z.boolean(),
  /** The tenant's own project, keys never shown; null: the operator's project. */
  project: z.object({
    host: z.string(),
    apiKeyHint: z.string(),
    projectId: z.string().nullable(),
    appHost: z.string().nullable(),
    /** Whether erasures can delete persons in it (a personal API key and project id are set). */
    canDeletePersons: z.boolean(),
  }).nullable(),
  /** Erased persons' deletions in PostHog: waiting, accepted by PostHog, to be done by hand, or parked. */
  personDeletions: z.object({
    pending: z.number().int(),
    requested: z.number().int(),
    manual: z.number().int(),
    parked: z.number().int(),
    lastError: z.string().nullable(),
  }),
  outbox: z.object({
    pending: z.number().int(),
    parked: z.number().int(),
    oldestPendingAt: z.date().nullable(),
    lastError: z.string().nullable(),
  }),
  updatedAt: z.date().nullable(),
  updatedBy: z.string().nullable(),
})
export type PosthogSettingsView = z.infer<typeof PosthogSettingsView>

export const RequeueParkedResult = z.object({ requeued: z.number().int() })
