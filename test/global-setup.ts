import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import type { TestProject } from 'vitest/node'
import { deriveRuntimeUrl, DEFAULT_RUNTIME_USER } from '../lib/database.js'
import { startEmbeddedPostgres, type EmbeddedServer } from '../lib/embedded-postgres.js'
import { migrate } from '../lib/migrate.js'
import { freePort } from './free-port.js'

export interface TestDatabaseServer {
  /** Owner connection to a maintenance database on the test server; used to create and drop per-file databases. */
  adminUrl: string
  template: string
  runtimeUser: string
  runtimePassword: string
}

declare module 'vitest' {
  export interface ProvidedContext {
    testDb: TestDatabaseServer
  }
}

const RUNTIME_PASSWORD = 'app_runtime_test_password'

/**
 * Once per `vitest run`: a PostgreSQL server (embedded by default; TEST_DATABASE_URL to use another), and a
 * template database migrated once. Each test file clones it (test/db.ts), so files run in parallel in isolation.
 */
export default async function setup(project: TestProject) {
  let embedded: EmbeddedServer | null = null
  let serverDir: string | null = null
  let adminUrl: string
  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL
  } else {
    const dir = (serverDir = await mkdtemp(path.join(tmpdir(), 'wa-test-pg-')))
    // mkdtemp makes a 0700 folder; as root the server runs as the `postgres` user, which must reach its data.
    await chmod(dir, 0o755)
    embedded = await startEmbeddedPostgres({ dir: path.join(dir, 'data'), port: await freePort(), persistent: false })
    adminUrl = embedded.url('postgres')
  }

  const template = `wa_test_template_${randomBytes(4).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  await admin`create database ${admin(template)}`
  const templateUrl = withDatabase(adminUrl, template)
  await migrate(templateUrl, { runtimeRole: { user: DEFAULT_RUNTIME_USER, password: RUNTIME_PASSWORD } })

  project.provide('testDb', { adminUrl, template, runtimeUser: DEFAULT_RUNTIME_USER, runtimePassword: RUNTIME_PASSWORD })

  return async () => {
    await admin`drop database if exists ${admin(template)} with (force)`.catch(() => {})
    await admin.end({ timeout: 5 })
    await embedded?.stop()
    // stop() removes the data folder (persistent: false); the temp folder around it goes too.
    if (serverDir) await rm(serverDir, { recursive: true, force: true })
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

export { deriveRuntimeUrl }
