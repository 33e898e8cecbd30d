/** `npm run migrate`: apply pending migrations (and graphile-worker's schema) as the owner, then exit. */
import { resolveDatabase } from '../lib/database.js'
import { loadConfigOrExit } from '../lib/config.js'
import { createLogger } from '../lib/logger.js'
import { migrate } from '../lib/migrate.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'migrate' })
const target = await resolveDatabase(config, log)
try {
  const runtimeUser = decodeURIComponent(new URL(target.runtimeUrl).username)
  const { applied } = await migrate(target.ownerUrl, { log, runtimeRole: target.managedRuntimeRole, runtimeUser })
  log.info(applied.length ? `applied ${applied.length} migration(s)` : 'database is up to date')
} catch (err) {
  log.error({ err }, 'migration failed')
  process.exitCode = 1
} finally {
  await target.stop()
}
