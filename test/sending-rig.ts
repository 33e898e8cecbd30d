import { run, type Runner } from 'graphile-worker'
import { createSql, type Sql } from '../lib/db.js'
import type { App } from '../lib/http/create-server.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { buildTaskList } from '../services/workers/tasks/index.js'
import { workerLogger } from '../services/workers/worker.js'
import { buildTestApi, buildTestWebhooks, testConfig, testLogger } from './apps.js'
import type { TestDatabase } from './db.js'
import { PLATFORM_APP_SECRET, type TestNumber } from './factories/whatsapp.js'

/**
 * Everything a message takes from the API to Meta and back, for tests that send for real: the API, the webhooks
 * service listening on loopback, the Cloud API emulator (sending its signed status webhooks there) at `rate` calls a
 * second for `number`, and a graphile-worker runner with the product's task list and that send rate.
 */
export interface SendingRig {
  api: App
  webhooks: App
  wa: WhatsAppEmulator
  close(): Promise<void>
}

export async function startSendingRig(db: TestDatabase, number: TestNumber, rate: number): Promise<SendingRig> {
  let webhooks: App | undefined
  let wa: WhatsAppEmulator | undefined
  let api: App | undefined
  let workerSql: Sql | undefined
  let runner: Runner | undefined
  const close = async () => {
    await runner?.stop()
    await workerSql?.end({ timeout: 5 })
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  }
  try {
    webhooks = await buildTestWebhooks(db)
    const webhooksUrl = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    wa = await startWhatsAppEmulator({ webhookUrl: `${webhooksUrl}/webhooks/whatsapp`, appSecret: PLATFORM_APP_SECRET, statusDelayMs: 5, wabaId: number.wabaId, displayPhoneNumber: number.displayPhoneNumber.replace(/\D/g, '') })
    wa.setRateLimit(rate)
    api = await buildTestApi(db)
    const config = testConfig({ GRAPH_API_BASE_URL: wa.url, WHATSAPP_SEND_RATE_PER_SECOND: String(rate) })
    workerSql = createSql(db.runtimeUrl, { max: 12 })
    const log = testLogger()
    runner = await run({
      connectionString: db.runtimeUrl, concurrency: 8, maxPoolSize: 10, pollInterval: 100, noHandleSignals: true,
      taskList: buildTaskList({ config, sql: workerSql, log }), logger: workerLogger(log),
    })
    return { api, webhooks, wa, close }
  } catch (err) {
    await close()
    throw err
  }
}
