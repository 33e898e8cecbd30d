import { describe, expect, it } from 'vitest'
import { withTenant, type Sql } from '../lib/db.js'
import { useTestDatabase } from './db.js'
import { populateTenantRows } from './factories/tenant-rows.js'
import { makeTenant, type TestTenant } from './factories/tenants.js'

/**
 * Tables without tenant_id, each with the reason it is not tenant-owned. Anything else without tenant_id fails the
 * test: a new table must either carry tenant_id (and so RLS) or be listed here on purpose.
 */
const PLATFORM_TABLES: Record<string, string> = {
  'core.tenants': 'the tenant itself; isolated by its own id (checked below)',
  'whatsapp.webhook_deliveries': 'the inbox of raw deliveries, stored before routing tells whose they are; never exposed to tenants',
  'whatsapp.quarantined_items': 'items no tenant owns (unknown phone number or WABA); for operators',
  'whatsapp.unparseable_deliveries': 'raw bytes of signed deliveries that could not be stored as jsonb, never routed to a tenant; for operators',
  'ops.worker_heartbeats': "the job queue's worker processes (worker ids, host:pid); shared plumbing, no tenant data",
}
// graphile_worker is the queue's own schema; app_private holds migration bookkeeping and is not granted to tenants.
const EXCLUDED_SCHEMAS = ['pg_catalog', 'information_schema', 'pg_toast', 'graphile_worker', 'app_private']

interface TableInfo {
  schema: string
  name: string
  hasTenantId: boolean
  rls: boolean
  forced: boolean
  owner: string
  /** A partition (of analytics.events, by day): reached through its parent, whose policy applies. */
  isPartition: boolean
  policies: { name: string; qual: string | null; withCheck: string | null; cmd: string }[]
}

async function discoverTables(owner: Sql): Promise<TableInfo[]> {
  return owner<TableInfo[]>`
    select n.nspname as schema, c.relname as name,
           exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as has_tenant_id,
           c.relrowsecurity as rls, c.relforcerowsecurity as forced, pg_get_userbyid(c.relowner) as owner,
           c.relispartition as is_partition,
           coalesce((select json_agg(json_build_object('name', p.polname, 'cmd', p.polcmd,
                        'qual', pg_get_expr(p.polqual, p.polrelid), 'withCheck', pg_get_expr(p.polwithcheck, p.polrelid)))
                       from pg_policy p where p.polrelid = c.oid), '[]') as policies
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and n.nspname <> all(${EXCLUDED_SCHEMAS}) and n.nspname not like 'pg_temp%'
     order by 1, 2`
}

const qualified = (t: { schema: string; name: string }) => `${t.schema}.${t.name}`

describe('tenant isolation by row-level security, for every table in the catalog', () => {
  const db = useTestDatabase()

  it('runs the services as a role that is not a superuser, cannot bypass RLS and owns nothing', async () => {
    const [role] = await db.current.sql<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean; owned: number }[]>`
      select r.rolname, r.rolsuper, r.rolbypassrls,
             (select count(*)::int from pg_class c where c.relowner = r.oid) +
             (select count(*)::int from pg_namespace n where n.nspowner = r.oid) +
             (select count(*)::int from pg_proc p where p.proowner = r.oid) as owned
        from pg_roles r where r.rolname = current_user`
    expect(role).toMatchObject({ rolsuper: false, rolbypassrls: false, owned: 0 })
  })

  it('has RLS enabled and forced, with USING and WITH CHECK on the tenant, on every tenant-owned table', async () => {
    const tables = await discoverTables(db.current.owner)
    expect(tables.length).toBeGreaterThan(0)
    const problems: string[] = []
    for (const t of tables) {
      const name = qualified(t)
      if (!t.hasTenantId) {
        if (!(name in PLATFORM_TABLES)) problems.push(`${name} has no tenant_id and is not a declared platform table`)
        continue
      }
      if (!t.rls) problems.push(`${name}: row level security is not enabled`)
      if (!t.forced) problems.push(`${name}: row level security is not forced (the owner would bypass it)`)
      if (t.policies.length === 0) problems.push(`${name}: no policy`)
      for (const p of t.policies) {
        const usesTenant = (expr: string | null) => !!expr && expr.includes('tenant_id') && expr.includes('current_tenant_id()')
        if (p.cmd !== 'a' && !usesTenant(p.qual)) problems.push(`${name}: policy ${p.name} has no USING on tenant_id`)
        if (['*', 'a', 'w'].includes(p.cmd) && !usesTenant(p.withCheck)) problems.push(`${name}: policy ${p.name} has no WITH CHECK on tenant_id`)
      }
    }
    const tenants = tables.find((t) => qualified(t) === 'core.tenants')!
    expect(tenants.rls && tenants.forced).toBe(true)
    expect(problems).toEqual([])
  })

  it('gives the runtime role no privilege on any partition: partitions are reached through their parent and its policy', async () => {
    const partitions = (await discoverTables(db.current.owner)).filter((t) => t.isPartition)
    expect(partitions.length).toBeGreaterThan(0)
    const granted = await db.current.sql<{ name: string }[]>`
      select n.nspname || '.' || c.relname as name
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relispartition
         and (has_table_privilege(c.oid, 'select, insert, update, delete, truncate, references, trigger')
              or has_any_column_privilege(c.oid, 'select, insert, update, references'))`
    expect(granted.map((g) => g.name)).toEqual([])
  })

  describe('with two tenants holding rows in every tenant table', () => {
    let a: TestTenant
    let b: TestTenant
    let tenantTables: TableInfo[]

    it('has rows for both tenants in every tenant table (add a factory in test/factories/tenant-rows.ts otherwise)', async () => {
      a = await makeTenant(db.current.sql)
      b = await makeTenant(db.current.sql)
      await populateTenantRows(db.current.sql, a)
      await populateTenantRows(db.current.sql, b)
      // Partitions hold some days' rows only; their parent (with every day) is the table proven here.
      tenantTables = (await discoverTables(db.current.owner)).filter((t) => t.hasTenantId && !t.isPartition)
      const empty: string[] = []
      for (const t of tenantTables) {
        const [row] = await db.current.owner<{ a: number; b: number }[]>`
          select count(*) filter (where tenant_id = ${a.id})::int as a, count(*) filter (where tenant_id = ${b.id})::int as b
            from ${db.current.owner(t.schema)}.${db.current.owner(t.name)}`
        if (!row || row.a === 0 || row.b === 0) empty.push(qualified(t))
      }
      expect(empty).toEqual([])
    })

    it("shows tenant A only A's rows, and nothing at all when no tenant is set", async () => {
      for (const t of tenantTables) {
        const table = (tx: Sql | Parameters<Parameters<typeof withTenant>[2]>[0]) => tx`${tx(t.schema)}.${tx(t.name)}`
        const [expected] = await db.current.owner<{ n: number }[]>`select count(*)::int as n from ${table(db.current.owner)} where tenant_id = ${a.id}`
        // Deliberately no WHERE clause: the policy alone must filter.
        const seen = await withTenant(db.current.sql, a.id, (tx) => tx<{ tenantId: string }[]>`select tenant_id from ${table(tx)}`)
        expect(seen.length, qualified(t)).toBe(expected!.n)
        expect(seen.every((r) => r.tenantId === a.id), qualified(t)).toBe(true)
        const [none] = await db.current.sql<{ n: number }[]>`select count(*)::int as n from ${table(db.current.sql)}`
        expect(none!.n, `${qualified(t)} without a tenant`).toBe(0)
      }
      const tenants = await withTenant(db.current.sql, a.id, (tx) => tx<{ id: string }[]>`select id from core.tenants`)
      expect(tenants.map((r) => r.id)).toEqual([a.id])
    })

    it("refuses to let tenant A insert a row for B, or move its rows to B, and cannot touch B's rows", async () => {
      const o = db.current.owner
      for (const t of tenantTables) {
        const name = qualified(t)
        // Every column a client may write (not identity-always, not generated), copied from one of B's rows.
        const columns = (await o<{ attname: string }[]>`
          select a.attname from pg_attribute a
           where a.attrelid = ${name}::regclass and a.attnum > 0 and not a.attisdropped
             and a.attidentity <> 'a' and a.attgenerated = ''
           order by a.attnum`).map((c) => c.attname)
        const [source] = await o<{ row: unknown }[]>`select to_jsonb(t) as row from ${o(t.schema)}.${o(t.name)} t where tenant_id = ${b.id} limit 1`

        const insert = withTenant(db.current.sql, a.id, (tx) => tx`
          insert into ${tx(t.schema)}.${tx(t.name)} (${tx(columns)})
          select ${tx(columns)} from jsonb_populate_record(null::${tx(t.schema)}.${tx(t.name)}, ${tx.json(source!.row as never)})`)
        await expect(insert, `${name}: insert for B`).rejects.toMatchObject({ code: '42501' })

        const moveToB = withTenant(db.current.sql, a.id, (tx) => tx`update ${tx(t.schema)}.${tx(t.name)} set tenant_id = ${b.id}`)
        await expect(moveToB, `${name}: move A's rows to B`).rejects.toMatchObject({ code: '42501' })

        const touched = await rollback(db.current.sql, a.id, async (tx) => {
          // Each attempt in a savepoint: a refused statement must not abort the ones after it.
          const updated = await tx.savepoint((sp) => sp`update ${sp(t.schema)}.${sp(t.name)} set tenant_id = tenant_id where tenant_id = ${b.id}`).catch(permissionDenied)
          const deleted = await tx.savepoint((sp) => sp`delete from ${sp(t.schema)}.${sp(t.name)} where tenant_id = ${b.id}`).catch(permissionDenied)
          return updated.count + deleted.count
        })
        expect(touched, `${name}: B's rows touched by A`).toBe(0)
      }
    })
  })
})

/** A table the runtime role may not UPDATE or DELETE at all (an append-only log) is also a table A cannot touch. */
function permissionDenied(err: { code?: string; message?: string }): { count: number } {
  if (err.code === '42501' && err.message?.includes('permission denied')) return { count: 0 }
  throw err
}

const ROLLBACK = Symbol('rollback')
async function rollback<T>(sql: Sql, tenantId: string, fn: (tx: Parameters<Parameters<typeof withTenant>[2]>[0]) => Promise<T>): Promise<T> {
  let result: T | undefined
  await withTenant(sql, tenantId, async (tx) => {
    result = await fn(tx)
    throw ROLLBACK
  }).catch((err) => {
    if (err !== ROLLBACK) throw err
  })
  return result as T
}
