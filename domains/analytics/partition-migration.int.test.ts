import { randomBytes } from 'node:crypto'
import { copyFile, mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { MIGRATIONS_DIR, migrate } from '../../lib/migrate.js'
import { withDatabase } from '../../test/global-setup.js'

/**
 * Migration 0021 on a deployment that already has events: a database migrated to 0020, given rows over many days
 * (with and without dedupe keys), then migrated on. Nothing may be lost or changed, and the table must keep what
 * it granted and indexed.
 */
describe('migration 0021 on a database with events', () => {
  const server = inject('testDb')
  const name = `wa_test_0021_${randomBytes(4).toString('hex')}`
  const url = withDatabase(server.adminUrl, name)
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
  let sql: postgres.Sql
  // postgres.js without the services' camelCase transform: the columns as named.
  let before: { id: string; tenant_id: string; name: string; occurred_at: Date; dedupe_key: string | null; properties: unknown }[]
  let grantsBefore: unknown[]

  const grants = () => sql`
    select 'table' as kind, null as column, a.privilege_type from pg_class c, aclexplode(c.relacl) a
     where c.oid = 'analytics.events'::regclass and a.grantee = 'app_user'::regrole
    union all
    select 'column', att.attname, a.privilege_type from pg_attribute att, aclexplode(att.attacl) a
     where att.attrelid = 'analytics.events'::regclass and att.attacl is not null and a.grantee = 'app_user'::regrole
    order by 1, 2, 3`

  beforeAll(async () => {
    await admin`create database ${admin(name)}`
    const upTo0020 = await mkdtemp(path.join(tmpdir(), 'wa-migrations-0020-'))
    for (const file of await readdir(MIGRATIONS_DIR)) {
      if (file.endsWith('.sql') && file < '0021') await copyFile(path.join(MIGRATIONS_DIR, file), path.join(upTo0020, file))
    }
    await migrate(url, { dir: upTo0020 })
    sql = postgres(url, { max: 1, onnotice: () => {} })
    await sql`insert into core.tenants (name, slug) values ('A', 'tenant-a'), ('B', 'tenant-b')`
    await sql`
      insert into analytics.events (tenant_id, name, occurred_at, dedupe_key, properties, source)
      select t.id, 'test.old', now() - (g % 40) * interval '1 day' - (g % 24) * interval '1 hour',
             case when g % 3 = 0 then null else 'k:' || g end, jsonb_build_object('g', g), 'api'
        from core.tenants t, generate_series(1, 300) g`
    before = await sql<typeof before>`select id::text, tenant_id, name, occurred_at, dedupe_key, properties from analytics.events order by id`
    grantsBefore = await grants()
    await migrate(url)
  })
  afterAll(async () => {
    await sql?.end()
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  })

  it('moves every row, with its id, into its day\'s partition, and copies the dedupe keys', async () => {
    const after = await sql`select id::text, tenant_id, name, occurred_at, dedupe_key, properties from analytics.events order by id`
    expect(after).toEqual(before)
    const misplaced = await sql`
      select id from analytics.events
       where tableoid::regclass::text <> 'analytics.events_p' || to_char(occurred_at at time zone 'UTC', 'YYYYMMDD')`
    expect(misplaced).toEqual([])
    const [keys] = await sql<{ n: number }[]>`select count(*)::int as n from analytics.event_keys`
    expect(keys!.n).toBe(before.filter((e) => e.dedupe_key !== null).length)
    // New ids continue after the moved ones.
    const [added] = await sql<{ id: string }[]>`
      insert into analytics.events (tenant_id, name, occurred_at) select id, 'test.new', now() from core.tenants limit 1 returning id::text`
    expect(BigInt(added!.id)).toBeGreaterThan(BigInt(before.at(-1)!.id))
  })

  it('keeps the grants, indexes, foreign keys and row-level security of the table', async () => {
    expect(await grants()).toEqual(grantsBefore)
    const [table] = await sql<{ rls: boolean; forced: boolean; kind: string }[]>`
      select relrowsecurity as rls, relforcerowsecurity as forced, relkind as kind from pg_class where oid = 'analytics.events'::regclass`
    expect(table).toEqual({ rls: true, forced: true, kind: 'p' })
    const indexes = (await sql<{ def: string }[]>`select indexdef as def from pg_indexes where schemaname = 'analytics' and tablename = 'events' order by indexname`).map((r) => r.def)
    // Later migrations add their own (0024: the live feed's xact_id index); these are the ones 0021 must carry over.
    expect(indexes).toEqual(expect.arrayContaining([
      'CREATE INDEX events_anonymous_idx ON ONLY analytics.events USING btree (tenant_id, anonymous_id) WHERE (anonymous_id IS NOT NULL)',
      'CREATE INDEX events_lead_idx ON ONLY analytics.events USING btree (tenant_id, lead_id) WHERE (lead_id IS NOT NULL)',
      // 0049 gave it the subjects as payload (funnels read index-only).
      'CREATE INDEX events_name_time_idx ON ONLY analytics.events USING btree (tenant_id, name, occurred_at) INCLUDE (lead_id, anonymous_id)',
      'CREATE UNIQUE INDEX events_pkey ON ONLY analytics.events USING btree (id, occurred_at)',
      'CREATE INDEX events_tenant_occurred_idx ON ONLY analytics.events USING btree (tenant_id, occurred_at)',
    ]))
    const fks = (await sql<{ def: string }[]>`select pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'analytics.events'::regclass and contype = 'f' order by conname`).map((r) => r.def)
    // The tenant's foreign key came over too; migration 0042 replaced it with a check per statement (its own test).
    expect(fks).toEqual(['FOREIGN KEY (lead_id) REFERENCES marketing.leads(id) ON DELETE SET NULL'])
    expect(await sql`select 1 from pg_class where relname = 'events_unpartitioned'`).toEqual([])
  })
})
