import { randomBytes } from 'node:crypto'
import type { Sql } from '../../lib/db.js'
import type { ApiKeyRole } from '../../domains/tenancy/schemas.js'
import { createApiKey, createTenantWithFirstKey } from '../../domains/tenancy/service.js'

export interface TestTenant {
  id: string
  slug: string
  adminKey: string
  adminKeyId: string
}

/** A tenant with its first admin key, created the way the operator API does it. */
export async function makeTenant(sql: Sql, overrides: { name?: string; slug?: string; defaultCountry?: string; timezone?: string } = {}): Promise<TestTenant> {
  const slug = overrides.slug ?? `t-${randomBytes(5).toString('hex')}`
  const { tenant, apiKey } = await createTenantWithFirstKey(sql, {
    name: overrides.name ?? `Tenant ${slug}`,
    slug,
    defaultCountry: overrides.defaultCountry ?? 'BR',
    timezone: overrides.timezone ?? 'UTC',
    firstKeyName: 'first admin key',
  })
  return { id: tenant.id, slug, adminKey: apiKey.key, adminKeyId: apiKey.id }
}

export async function makeApiKey(sql: Sql, tenant: TestTenant, role: ApiKeyRole = 'read_only') {
  return createApiKey(sql, { kind: 'tenant', tenantId: tenant.id, keyId: tenant.adminKeyId, role: 'admin' }, { name: `${role} key`, role })
}
