import { bootPlatform } from '../../lib/boot.js'
import { loadConfigOrExit } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { connectRedis } from '../../lib/redis.js'
import { closeHttpApp, onShutdown } from '../../lib/shutdown.js'
import { buildWebhooksApp } from './app.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'webhooks' })
const platform = await bootPlatform(config, log, { applicationName: 'webhooks' })
const redis = connectRedis(config.REDIS_URL, log)
let shuttingDown = false
const app = await buildWebhooksApp({ config, sql: platform.sql, log, migrations: platform.migrations, redis, isShuttingDown: () => shuttingDown })
const address = await app.listen({ host: config.HOST, port: config.WEBHOOKS_PORT })
log.info(`webhooks listening on ${address}`)

onShutdown(log, [
  ['webhooks', async () => { shuttingDown = true; await closeHttpApp(app) }],
  ['redis', async () => redis?.quit()],
  ['database', () => platform.close()],
])
