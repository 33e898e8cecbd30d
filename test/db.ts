import { randomBytes } from 'node:crypto'
import postgres from 'postgres'
import { afterAll, beforeAll, inject } from 'vitest'
import { deriveRuntimeUrl } from '../lib/database.js'
import { createSql, type Sql } from '../lib/db.js'
import { withDatabase } from './global-setup.js'

export interface TestDatabase {
  name: string
  /** Owner (superuser on the embedded server): for arranging and inspecting data behind RLS's back. */
  ownerUrl: string
  owner: Sql
  /** The runtime role, exactly as the services connect. */
  runtimeUrl: string
  sql: Sql
}

/** Clones the migrated template into a database of this file's own. */
export async function createTestDatabase(): Promise<TestDatabase & { drop: () => Promise<void> }> {
  const server = inject('testDb')
  const name = `wa_test_${randomBytes(6).toString('hex')}`
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
  try {
    await admin`create database ${admin(name)} template ${admin(server.template)}`
  } finally {
    await admin.end({ timeout: 5 })
  }
  const ownerUrl = withDatabase(server.adminUrl, name)
  const runtimeUrl = deriveRuntimeUrl(ownerUrl, server.runtimeUser, server.runtimePassword)
  const owner = createSql(ownerUrl, { max: 3, quiet: true })
  const sql = createSql(runtimeUrl, { max: 10, quiet: true })
  return {
    name, ownerUrl, owner, runtimeUrl, sql,
    drop: async () => {
      await Promise.all([owner.end({ timeout: 5 }), sql.end({ timeout: 5 })])
      const a = postgres(server.adminUrl, { max: 1, onnotice: () => {} })
      await a`drop database if exists ${a(name)} with (force)`.catch(() => {})
      await a.end({ timeout: 5 })
    },
  }
}

/** For a test file: a fresh database before its tests, dropped after. Read `db.current` inside tests. */
export function useTestDatabase(): { current: TestDatabase } {
  const holder = {} as { current: TestDatabase }
  let drop: (() => Promise<void>) | undefined
  beforeAll(async () => {
    const db = await createTestDatabase()
    drop = db.drop
    holder.current = db
  })
  afterAll(async () => {
    await drop?.()
  })
  return holder
}
