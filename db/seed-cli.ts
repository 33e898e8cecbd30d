/** `npm run seed`: apply every seed (they are idempotent: running twice changes nothing), then exit. */
import { resolveDatabase } from '../lib/database.js'
import { loadConfigOrExit } from '../lib/config.js'
import { createLogger } from '../lib/logger.js'
import { migrate } from '../lib/migrate.js'
import { runSeeds } from './seed.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'seed' })
const target = await resolveDatabase(config, log)
try {
  const runtimeUser = decodeURIComponent(new URL(target.runtimeUrl).username)
  await migrate(target.ownerUrl, { log, runtimeRole: target.managedRuntimeRole, runtimeUser })
  const applied = await runSeeds(target.ownerUrl, { onlyNew: false, log })
  log.info(`applied ${applied.length} seed file(s)`)
} catch (err) {
  log.error({ err }, 'seeding failed')
  process.exitCode = 1
} finally {
  await target.stop()
}
