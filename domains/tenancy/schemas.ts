import { z } from 'zod'

export const ApiKeyRole = z.enum(['admin', 'read_only'])
export type ApiKeyRole = z.infer<typeof ApiKeyRole>

export const Tenant = z.object({
  id: z.uuid(),
  name: z.string(),
  slug: z.string(),
  status: z.enum(['pending', 'active', 'suspended']),
  defaultCountry: z.string(),
  timezone: z.string(),
  createdAt: z.date(),
})
export type Tenant = z.infer<typeof Tenant>

export const ApiKeyView = z.object({
  id: z.uuid(),
  name: z.string(),
  role: ApiKeyRole,
  prefix: z.string(),
  createdBy: z.string(),
  createdAt: z.date(),
  lastUsedAt: z.date().nullable(),
  revokedAt: z.date().nullable(),
})
export type ApiKeyView = z.infer<typeof ApiKeyView>

/** Returned once, at creation: the only time the secret exists outside the caller's hands. */
export const CreatedApiKey = ApiKeyView.extend({ key: z.string() })

export const CreateApiKeyBody = z.object({
  name: z.string().trim().min(1).max(100),
  role: ApiKeyRole.default('read_only'),
})

const validTimeZone = (tz: string) => {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

export const CreateTenantBody = z.object({
  name: z.string().trim().min(1).max(200),
  slug: z.string().regex(/^[a-z0-9][a-z0-9-]{1,62}$/, 'lowercase letters, digits and dashes, 2-63 characters'),
  defaultCountry: z.string().regex(/^[A-Z]{2}$/, 'ISO 3166-1 alpha-2 country code, e.g. BR').default('US'),
  timezone: z.string().refine(validTimeZone, 'an IANA time zone, e.g. America/Sao_Paulo').default('UTC'),
  firstKeyName: z.string().trim().min(1).max(100).default('first admin key'),
})
export type CreateTenantBody = z.infer<typeof CreateTenantBody>

/** Who is calling: a tenant's API key, or the platform operator. */
export type Principal =
  | { kind: 'tenant'; tenantId: string; keyId: string; role: ApiKeyRole }
  | { kind: 'operator' }
