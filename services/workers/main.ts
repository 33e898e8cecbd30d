import { bootPlatform } from '../../lib/boot.js'
import { loadConfigOrExit } from '../../lib/config.js'
import { startMetricsServer } from '../../lib/http/metrics.js'
import { createLogger } from '../../lib/logger.js'
import { onShutdown } from '../../lib/shutdown.js'
import { startWorker } from './worker.js'

const config = loadConfigOrExit()
const log = createLogger({ level: config.LOG_LEVEL, service: 'worker' })
const platform = await bootPlatform(config, log, { applicationName: 'worker' })
const runner = await startWorker({ config, log, connectionString: platform.target.runtimeUrl, metricsSql: platform.sql })
log.info(`worker running (concurrency ${config.WORKER_CONCURRENCY})`)
const metricsServer = await startMetricsServer({ config, log, service: 'worker' })
if (metricsServer) log.info(`worker metrics on ${metricsServer.url}/metrics`)

onShutdown(log, [
  // stop() lets running jobs finish; a job cut off by a crash is handed back once this process's heartbeat goes silent.
  ['metrics', async () => metricsServer?.close()],
  ['worker', () => runner.stop()],
  ['database', () => platform.close()],
])
