import type { Logger } from 'pino'
import postgres from 'postgres'
import type { Config } from './config.js'
import { startEmbeddedPostgres } from './embedded-postgres.js'

/**
 * Two roles reach the database:
 * - the owner (DATABASE_URL): owns every schema and table, runs migrations and seeds;
 * - the runtime role (DATABASE_RUNTIME_URL): what the services run as. Not a superuser, owns nothing,
 *   no BYPASSRLS; a member of the NOLOGIN group role `app_user` that the migrations grant privileges to.
 */
export interface DatabaseTarget {
  ownerUrl: string
  runtimeUrl: string
  /** When we derived the runtime URL we also manage its login role (create it, set its password). */
  managedRuntimeRole: { user: string; password: string } | null
  embedded: boolean
  /** The embedded server's data folder (not always EMBEDDED_PG_DIR: see lib/embedded-postgres.ts). */
  embeddedDataDir?: string
  stop: () => Promise<void>
}

export const APP_USER_ROLE = 'app_user'
export const DEFAULT_RUNTIME_USER = 'app_runtime'
const DEFAULT_DATABASE = 'wa_platform'
// Used only when the operator supplies no DATABASE_RUNTIME_URL outside production (config refuses that in production).
const DEV_RUNTIME_PASSWORD = 'app_runtime_dev_password'

export function deriveRuntimeUrl(ownerUrl: string, user: string, password: string): string {
  const url = new URL(ownerUrl)
  url.username = encodeURIComponent(user)
  url.password = encodeURIComponent(password)
  return url.toString()
}

/** Resolves where the database is: the configured server, or an embedded one started (or reused) here. */
export async function resolveDatabase(config: Config, log: Logger): Promise<DatabaseTarget> {
  const runtimePassword = config.DATABASE_RUNTIME_PASSWORD ?? DEV_RUNTIME_PASSWORD
  const managed = (ownerUrl: string) =>
    config.DATABASE_RUNTIME_URL
      ? { runtimeUrl: config.DATABASE_RUNTIME_URL, managedRuntimeRole: null }
      : {
          runtimeUrl: deriveRuntimeUrl(ownerUrl, DEFAULT_RUNTIME_USER, runtimePassword),
          managedRuntimeRole: { user: DEFAULT_RUNTIME_USER, password: runtimePassword },
        }

  if (config.DATABASE_URL) {
    return { ownerUrl: config.DATABASE_URL, ...managed(config.DATABASE_URL), embedded: false, stop: async () => {} }
  }

  // The server of EMBEDDED_PG_DIR, found by its pid file: reused when another live process of ours started it
  // (`npm run start:api` beside `start:worker`; stopping it stays that process's job), stopped and started afresh
  // when a killed run left it behind, started otherwise.
  log.info({ dir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT }, 'starting embedded PostgreSQL')
  const server = await startEmbeddedPostgres({ dir: config.EMBEDDED_PG_DIR, port: config.EMBEDDED_PG_PORT, persistent: true, log })
  try {
    await ensureDatabaseExists(server.url('postgres'), DEFAULT_DATABASE)
  } catch (err) {
    await server.stop()
    throw err
  }
  const ownerUrl = server.url(DEFAULT_DATABASE)
  return { ownerUrl, ...managed(ownerUrl), embedded: true, embeddedDataDir: server.dataDir, stop: server.stop }
}

export async function ensureDatabaseExists(adminUrl: string, database: string): Promise<void> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} })
  try {
    const [row] = await sql`select 1 as present from pg_database where datname = ${database}`
    if (!row) {
      await sql`create database ${sql(database)}`.catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err // created meanwhile by another process
      })
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
}
