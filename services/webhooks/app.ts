import type { Redis } from 'ioredis'
import type { Config } from '../../lib/config.js'
import type { Sql } from '../../lib/db.js'
import { createHttpServer, type App } from '../../lib/http/create-server.js'
import { registerHealthRoutes } from '../../lib/http/health.js'
import { registerOpenApi } from '../../lib/http/openapi.js'
import type { Logger } from '../../lib/logger.js'
import type { MigrationFile } from '../../lib/migrate.js'

export interface WebhooksDeps {
  config: Config
  sql: Sql
  log: Logger
  migrations: MigrationFile[]
  redis?: Redis | null
  isShuttingDown?: () => boolean
}

/**
 * The ingestion service: thin by design. Each route verifies, validates, commits what it received and enqueues the
 * work, then answers; everything slow happens in the workers.
 */
export async function buildWebhooksApp(deps: WebhooksDeps): Promise<App> {
  const app = createHttpServer({ logger: deps.log, bodyLimit: deps.config.WEBHOOK_BODY_LIMIT_BYTES, trustProxy: deps.config.TRUST_PROXY })
  await registerOpenApi(app, {
    title: 'WhatsApp lead platform ingestion',
    description: 'WhatsApp Cloud API webhooks, public lead forms and event intake.',
    version: '1',
    bearer: false,
  })
  registerHealthRoutes(app, { sql: deps.sql, migrations: deps.migrations, isShuttingDown: deps.isShuttingDown ?? (() => false) })
  return app
}
