import type { Queryable, Tx } from '../../lib/db.js'
import type { ApiKeyRole, ApiKeyView, Tenant } from './schemas.js'

const tenantColumns = (tx: Queryable) => tx`id, name, slug, status, default_country, timezone, created_at`
const apiKeyColumns = (tx: Queryable) => tx`id, name, role, prefix, created_by, created_at, last_used_at, revoked_at`

export const insertTenant = (tx: Tx, tenant: { id: string; name: string; slug: string; defaultCountry: string; timezone: string; status?: 'pending' | 'active' }) =>
  tx<Tenant[]>`
    insert into core.tenants ${tx({ ...tenant, status: tenant.status ?? 'active' }, 'id', 'name', 'slug', 'defaultCountry', 'timezone', 'status')}
    returning ${tenantColumns(tx)}`.then((r) => r[0]!)

/** A pending tenant (onboarding) becomes active; under RLS only the current tenant's row can be touched. */
export const activatePendingTenant = (tx: Tx) =>
  tx<Tenant[]>`update core.tenants set status = 'active', updated_at = now() where status = 'pending' returning ${tenantColumns(tx)}`.then((r) => r[0] ?? null)

/** Under RLS the current tenant sees only its own row. */
export const findCurrentTenant = (tx: Tx) =>
  tx<Tenant[]>`select ${tenantColumns(tx)} from core.tenants`.then((r) => r[0] ?? null)

export const listTenantsPage = (tx: Queryable, limit: number, afterId: string | null) =>
  tx<Tenant[]>`select ${tenantColumns(tx)} from core.list_tenants(${limit}, ${afterId})`

export const insertApiKey = (
  tx: Tx,
  key: { tenantId: string; name: string; role: ApiKeyRole; prefix: string; keyHash: Buffer; createdBy: string },
) =>
  tx<ApiKeyView[]>`
    insert into core.api_keys ${tx(key, 'tenantId', 'name', 'role', 'prefix', 'keyHash', 'createdBy')}
    returning ${apiKeyColumns(tx)}`.then((r) => r[0]!)

export const listApiKeys = (tx: Tx) =>
  tx<ApiKeyView[]>`select ${apiKeyColumns(tx)} from core.api_keys order by created_at, id`

export const revokeApiKey = (tx: Tx, keyId: string) =>
  tx<ApiKeyView[]>`
    update core.api_keys set revoked_at = coalesce(revoked_at, now())
     where id = ${keyId}
    returning ${apiKeyColumns(tx)}`.then((r) => r[0] ?? null)

export const authenticateKeyHash = (tx: Queryable, keyHash: Buffer) =>
  tx<{ keyId: string; tenantId: string; role: ApiKeyRole }[]>`
    select key_id, tenant_id, role from core.authenticate_api_key(${keyHash})`.then((r) => r[0] ?? null)

export const insertAuditEntry = (
  tx: Tx,
  entry: { tenantId: string; actor: string; action: string; targetType?: string; targetId?: string; details?: unknown; requestId?: string },
) =>
  tx`
    insert into core.audit_log (tenant_id, actor, action, target_type, target_id, details, request_id)
    values (${entry.tenantId}, ${entry.actor}, ${entry.action}, ${entry.targetType ?? null}, ${entry.targetId ?? null},
            ${tx.json((entry.details ?? {}) as never)}, ${entry.requestId ?? null})`

/** One target's entries (a campaign's history), newest first. */
export const listAuditEntriesFor = (tx: Tx, targetType: string, targetId: string, limit: number) =>
  tx<{ id: string; actor: string; action: string; details: unknown; requestId: string | null; createdAt: Date }[]>`
    select id::text, actor, action, details, request_id, created_at from core.audit_log
     where target_type = ${targetType} and target_id = ${targetId} order by id desc limit ${limit}`

export const listAuditEntries = (tx: Tx, limit: number) =>
  tx<{ id: string; actor: string; action: string; targetType: string | null; targetId: string | null; details: unknown; requestId: string | null; createdAt: Date }[]>`
    select id::text, actor, action, target_type, target_id, details, request_id, created_at
      from core.audit_log order by id desc limit ${limit}`
