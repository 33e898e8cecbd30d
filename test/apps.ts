import { parseConfig, type Config } from '../lib/config.js'
import { createLogger } from '../lib/logger.js'
import { readMigrationFiles } from '../lib/migrate.js'
import { buildApiApp, type ApiDeps } from '../services/api/app.js'
import { buildWebhooksApp, type WebhooksDeps } from '../services/webhooks/app.js'
import type { TestDatabase } from './db.js'

export const OPERATOR_KEY = 'operator-test-key-0123456789abcdef0123456789'

export function testConfig(overrides: Record<string, string> = {}): Config {
  return parseConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', OPERATOR_API_KEY: OPERATOR_KEY, AUTO_SEED: 'false', ...overrides })
}

export const testLogger = () => createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', service: 'test' })

export async function buildTestApi(db: TestDatabase, overrides: Record<string, string> = {}, extra: Partial<ApiDeps> = {}) {
  const app = await buildApiApp({ config: testConfig(overrides), sql: db.sql, log: testLogger(), migrations: await readMigrationFiles(), ...extra })
  await app.ready()
  return app
}

export async function buildTestWebhooks(db: TestDatabase, overrides: Record<string, string> = {}, extra: Partial<WebhooksDeps> = {}) {
  const app = await buildWebhooksApp({ config: testConfig(overrides), sql: db.sql, log: testLogger(), migrations: await readMigrationFiles(), ...extra })
  await app.ready()
  return app
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` })
