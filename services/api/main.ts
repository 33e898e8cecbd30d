import { bootPlatform } from '../../lib/boot.js'
import { loadConfigOrExit } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { connectRedis } from '../../lib/redis.js'
import { closeHttpApp, onShutdown } from '../../lib/shutdown.js'
import { buildApiApp } from './app.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'api' })
const platform = await bootPlatform(config, log, { applicationName: 'api' })
const redis = connectRedis(config.REDIS_URL, log)
let shuttingDown = false
const app = await buildApiApp({ config, sql: platform.sql, log, migrations: platform.migrations, redis, isShuttingDown: () => shuttingDown })
const address = await app.listen({ host: config.HOST, port: config.API_PORT })
log.info(`api listening on ${address} (docs: ${address}/docs)`)

onShutdown(log, [
  ['api', async () => { shuttingDown = true; await closeHttpApp(app) }],
  ['redis', async () => redis?.quit()],
  ['database', () => platform.close()],
])
