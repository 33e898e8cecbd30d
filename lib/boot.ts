import type { Config } from './config.js'
import { configurePseudonyms } from './crypto.js'
import { resolveDatabase, type DatabaseTarget } from './database.js'
import { createSql, postgresDriverPatched, type Sql } from './db.js'
import type { Logger } from './logger.js'
import { migrate, readMigrationFiles, type MigrationFile } from './migrate.js'
import { runSeeds } from '../db/seed.js'

export interface Platform {
  target: DatabaseTarget
  /** The runtime pool: every query the services run goes through RLS. */
  sql: Sql
  migrations: MigrationFile[]
  close: () => Promise<void>
}

/**
 * Finds (or starts) the database, applies migrations and first-boot seeds when configured to, and opens the runtime
 * pool. Refuses to run the services as a role that could bypass row-level security.
 */
export async function bootPlatform(config: Config, log: Logger, options: { applicationName: string; poolMax?: number }): Promise<Platform> {
  configurePseudonyms(config.SECRETS_KEY)
  if (!postgresDriverPatched()) log.error('postgres.js is missing the fix in ops/patches (run `npm install`): a database outage can crash this process')
  const target = await resolveDatabase(config, log)
  try {
    if (config.AUTO_MIGRATE) {
      const runtimeUser = decodeURIComponent(new URL(target.runtimeUrl).username)
      const { applied } = await migrate(target.ownerUrl, { log, runtimeRole: target.managedRuntimeRole, runtimeUser })
      if (applied.length) log.info({ count: applied.length }, 'migrations applied')
    }
    if (config.AUTO_SEED && config.NODE_ENV !== 'production') await runSeeds(target.ownerUrl, { onlyNew: true, log })

    const sql = createSql(target.runtimeUrl, { max: options.poolMax ?? config.DATABASE_POOL_MAX, applicationName: options.applicationName })
    await assertUnprivilegedRole(sql)
    const migrations = await readMigrationFiles()
    return {
      target,
      sql,
      migrations,
      close: async () => {
        await sql.end({ timeout: 5 })
        await target.stop()
      },
    }
  } catch (err) {
    await target.stop()
    throw err
  }
}

export async function assertUnprivilegedRole(sql: Sql): Promise<void> {
  const [role] = await sql<{ rolname: string; rolsuper: boolean; rolbypassrls: boolean }[]>`
    select rolname, rolsuper, rolbypassrls from pg_roles where rolname = current_user`
  if (!role || role.rolsuper || role.rolbypassrls) {
    throw new Error(`refusing to run the services as ${role?.rolname ?? 'an unknown role'}: it can bypass row-level security; use a runtime role (see README)`)
  }
}
