import { z } from 'zod'

/** The drain (services/workers/tasks/analytics__forward_posthog.ts), run by the crontab every minute. */
export const FORWARD_POSTHOG_TASK = 'analytics__forward_posthog'
export const ForwardPosthogPayload = z.object({}).passthrough()

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

export const PutPosthogSettingsBody = z.strictObject({
  enabled: z.boolean(),
  /** Replaces the default list; null goes back to it. Event name and time are always sent. */
  allowedProperties: z.array(PropertyName).max(50).nullable().optional(),
})
export type PutPosthogSettingsBody = z.infer<typeof PutPosthogSettingsBody>

export const PosthogSettingsView = z.object({
  enabled: z.boolean(),
  allowedProperties: z.array(z.string()),
  /** False while allowedProperties is the default list. */
  customProperties: z.boolean(),
  /** Whether the operator configured PostHog (POSTHOG_API_KEY): without it nothing is forwarded, even when enabled. */
  configured: z.boolean(),
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
