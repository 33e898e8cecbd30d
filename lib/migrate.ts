import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Logger as WorkerLogger, runMigrations as runWorkerMigrations } from 'graphile-worker'
import postgres from 'postgres'
import type { Logger } from 'pino'
import { APP_USER_ROLE } from './database.js'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../db/migrations/', import.meta.url))
const FILE_PATTERN = /^(\d{4})_[a-z0-9_]+\.sql$/
// Any constant works; it only has to be the same in every process that migrates this database.
const MIGRATION_LOCK_KEY = 727_001

export interface MigrationFile {
  name: string
  checksum: string
  text: string
}

export class MigrationError extends Error {}

export async function readMigrationFiles(dir = MIGRATIONS_DIR): Promise<MigrationFile[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort()
  const files: MigrationFile[] = []
  for (const name of names) {
    if (!FILE_PATTERN.test(name)) throw new MigrationError(`migration file name ${name} does not match NNNN_<verb>_<object>.sql`)
    const text = await readFile(path.join(dir, name), 'utf8')
    files.push({ name, text, checksum: createHash('sha256').update(text).digest('hex') })
  }
  const numbers = files.map((f) => f.name.slice(0, 4))
  const duplicate = numbers.find((n, i) => numbers.indexOf(n) !== i)
  if (duplicate) throw new MigrationError(`two migration files are numbered ${duplicate}`)
  return files
}

export interface MigrateOptions {
  log?: Logger
  dir?: string
  /** A login role for the services, created (or its password reset) and made a member of app_user. */
  runtimeRole?: { user: string; password: string } | null
  /** An operator-supplied runtime login role: made a member of app_user if the owner may grant that. */
  runtimeUser?: string | null
}

/**
 * Applies db/migrations/*.sql in order, each once and in its own transaction, recording a checksum; refuses to
 * go on if an applied file was edited. Then installs graphile-worker's schema and grants app_user what it needs.
 * Concurrent callers serialize on an advisory lock.
 */
export async function migrate(ownerUrl: string, options: MigrateOptions = {}): Promise<{ applied: string[] }> {
  const files = await readMigrationFiles(options.dir)
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  const applied: string[] = []
  try {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`
    await ensureRoles(sql, options)
    await sql`create schema if not exists app_private`
    await sql`
      create table if not exists app_private.schema_migrations (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`
    const rows = await sql<{ name: string; checksum: string }[]>`select name, checksum from app_private.schema_migrations`
    const done = new Map(rows.map((r) => [r.name, r.checksum]))
    for (const name of done.keys()) {
      if (!files.some((f) => f.name === name)) throw new MigrationError(`applied migration ${name} is missing from ${options.dir ?? MIGRATIONS_DIR}`)
    }
    for (const file of files) {
      const checksum = done.get(file.name)
      if (checksum !== undefined) {
        if (checksum !== file.checksum) {
          throw new MigrationError(`applied migration ${file.name} was edited (checksum differs); add a new migration instead`)
        }
        continue
      }
      await sql.begin(async (tx) => {
        await tx.unsafe(file.text)
        await tx`insert into app_private.schema_migrations (name, checksum) values (${file.name}, ${file.checksum})`
      })
      applied.push(file.name)
      options.log?.info({ migration: file.name }, 'applied migration')
    }

    await runWorkerMigrations({ connectionString: ownerUrl, logger: silentWorkerLogger })
    // graphile-worker's functions are SECURITY INVOKER: the runtime role adds and runs jobs with its own privileges.
    await sql.unsafe(`
      grant usage on schema graphile_worker to ${APP_USER_ROLE};
      grant select, insert, update, delete on all tables in schema graphile_worker to ${APP_USER_ROLE};
      grant usage, select on all sequences in schema graphile_worker to ${APP_USER_ROLE};
      grant execute on all functions in schema graphile_worker to ${APP_USER_ROLE};
      grant usage on schema app_private to ${APP_USER_ROLE};
      grant select on app_private.schema_migrations to ${APP_USER_ROLE};
    `)
    // graphile-worker turns RLS on for its private tables (with no policy) so that only their owner can touch them.
    // The runtime role enqueues jobs in the same transaction as the change that causes them, so it gets a policy
    // on each; re-applied after every graphile-worker migration, in case one recreates a table.
    await sql.unsafe(`
      do $$
      declare t record;
      begin
        for t in select c.relname from pg_class c
                  where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind = 'r' and c.relrowsecurity
                    and not exists (select 1 from pg_policy p where p.polrelid = c.oid and p.polname = 'app_user_queue_access')
        loop
          execute format('create policy app_user_queue_access on graphile_worker.%I to ${APP_USER_ROLE} using (true) with check (true)', t.relname);
        end loop;
      end $$`)
  } finally {
    await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.catch(() => {})
    await sql.end({ timeout: 5 })
  }
  return { applied }
}

async function ensureRoles(sql: postgres.Sql, options: MigrateOptions): Promise<void> {
  // Roles are cluster-wide; several databases (and concurrent test files) may race to create them.
  await sql.unsafe(`
    do $$ begin
      create role ${APP_USER_ROLE} nologin nosuperuser nobypassrls;
    exception when duplicate_object or unique_violation then null;
    end $$`)
  const role = options.runtimeRole
  if (role) {
    await sql.unsafe(await pgFormat(sql, `do $do$ begin
        create role %1$I login nosuperuser nobypassrls nocreatedb nocreaterole password %2$L;
      exception when duplicate_object or unique_violation then
        alter role %1$I login nosuperuser nobypassrls password %2$L;
      end $do$`, role.user, role.password))
    await sql.unsafe(await pgFormat(sql, 'grant %I to %I', APP_USER_ROLE, role.user))
  } else if (options.runtimeUser) {
    await sql.unsafe(await pgFormat(sql, 'grant %I to %I', APP_USER_ROLE, options.runtimeUser)).catch((err: Error) =>
      options.log?.warn({ err: err.message }, `could not grant ${APP_USER_ROLE} to the runtime role; an operator must do it`),
    )
  }
}

/** DDL cannot take bind parameters, so identifiers and literals are quoted by PostgreSQL's own format(). */
async function pgFormat(sql: postgres.Sql, template: string, ...args: string[]): Promise<string> {
  const rows = await sql<{ text: string }[]>`select format(${template}, variadic ${args}::text[]) as text`
  return rows[0]!.text
}

/** Lists migration files not yet applied: /readyz is not ready while any remain. */
export async function pendingMigrations(sql: { (...args: any[]): any }, files: MigrationFile[]): Promise<string[]> {
  const rows: { name: string }[] = await sql`select name from app_private.schema_migrations`
  const done = new Set(rows.map((r) => r.name))
  return files.filter((f) => !done.has(f.name)).map((f) => f.name)
}

// graphile-worker's Logger takes a factory; migrations need no chatter.
const silentWorkerLogger = new WorkerLogger(() => () => {})
