import { randomBytes } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { withDatabase } from '../test/global-setup.js'
import { migrate } from './migrate.js'

/** These tests migrate an empty database of their own, from files they write. */
describe('migration runner', () => {
  const server = inject('testDb')
  const name = `wa_test_migrate_${randomBytes(4).toString('hex')}`
  const url = withDatabase(server.adminUrl, name)
  let dir: string
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} })

  beforeAll(async () => {
    await admin`create database ${admin(name)}`
    dir = await mkdtemp(path.join(tmpdir(), 'wa-migrations-'))
    await writeFile(path.join(dir, '0001_create_things.sql'), 'create schema demo; create table demo.things (id int primary key);')
    await writeFile(path.join(dir, '0002_add_thing_name.sql'), 'alter table demo.things add column name text;')
  })
  afterAll(async () => {
    await admin`drop database if exists ${admin(name)} with (force)`
    await admin.end()
  })

  it('applies each file once, in order, even when two processes migrate at the same time', async () => {
    const [a, b] = await Promise.all([migrate(url, { dir }), migrate(url, { dir })])
    expect([...a.applied, ...b.applied].sort()).toEqual(['0001_create_things.sql', '0002_add_thing_name.sql'])
    expect((await migrate(url, { dir })).applied).toEqual([])
    const sql = postgres(url, { max: 1 })
    expect(await sql`select name from app_private.schema_migrations order by name`).toEqual([{ name: '0001_create_things.sql' }, { name: '0002_add_thing_name.sql' }])
    // graphile-worker's schema comes with it.
    expect((await sql`select count(*)::int as n from graphile_worker.migrations`)[0]!.n).toBeGreaterThan(0)
    await sql.end()
  })

  it('refuses to go on when an applied file was edited', async () => {
    await writeFile(path.join(dir, '0002_add_thing_name.sql'), 'alter table demo.things add column name varchar(10);')
    await expect(migrate(url, { dir })).rejects.toThrow(/0002_add_thing_name.sql was edited/)
  })

  it('rolls a failing file back whole and records nothing for it', async () => {
    await writeFile(path.join(dir, '0002_add_thing_name.sql'), 'alter table demo.things add column name text;')
    await writeFile(path.join(dir, '0003_break_things.sql'), 'create table demo.half (id int); select 1/0;')
    await expect(migrate(url, { dir })).rejects.toThrow(/division by zero/)
    const sql = postgres(url, { max: 1 })
    expect(await sql`select to_regclass('demo.half') as t`).toEqual([{ t: null }])
    expect(await sql`select name from app_private.schema_migrations where name like '0003%'`).toEqual([])
    await sql.end()
  })

  it('rejects a file whose name breaks the convention', async () => {
    await writeFile(path.join(dir, '0003_break_things.sql'), 'select 1;')
    await writeFile(path.join(dir, '4_Bad Name.sql'), 'select 1;')
    await expect(migrate(url, { dir })).rejects.toThrow(/does not match NNNN_<verb>_<object>.sql/)
  })
})
