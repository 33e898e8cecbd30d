import { setTimeout as sleep } from 'node:timers/promises'
import { runOnce } from 'graphile-worker'
import type { App } from '../lib/http/create-server.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'
import { workerLogger } from '../services/workers/worker.js'
import { buildTaskList } from '../services/workers/tasks/index.js'
import { testConfig, testLogger } from './apps.js'
import type { TestDatabase } from './db.js'
import { PLATFORM_APP_SECRET } from './factories/whatsapp.js'

/** Posts a delivery as Meta does: the JSON bytes, signed with the app secret. */
export function postDelivery(app: App, body: unknown, options: { secret?: string; raw?: string; headers?: Record<string, string> } = {}) {
  const raw = options.raw ?? JSON.stringify(body)
  return app.inject({
    method: 'POST',
    url: '/webhooks/whatsapp',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, options.secret ?? PLATFORM_APP_SECRET), ...options.headers },
    payload: raw,
  })
}

/** Runs every job that is due, as the worker would, until the queue has nothing runnable left. */
export async function drainJobs(db: TestDatabase): Promise<void> {
  const log = testLogger()
  await runOnce({
    connectionString: db.runtimeUrl,
    taskList: buildTaskList({ config: testConfig(), sql: db.sql, log }),
    logger: workerLogger(log),
    concurrency: 4,
  })
}

export const count = async (db: TestDatabase, table: string, where: string = 'true'): Promise<number> =>
  Number((await db.owner.unsafe(`select count(*)::int as n from ${table} where ${where}`))[0]!.n)

/**
 * Waits (up to 20 s) until no outbound send is open: a stopped or paused broadcast's claimed sends still go, so a
 * test with a running worker lets them finish before the next one. Accepted, failed and cancelled sends are closed.
 */
export async function waitForOpenSends(db: TestDatabase): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [open] = await db.owner<{ n: number }[]>`select count(*)::int as n from whatsapp.outbound_sends where state not in ('accepted', 'failed', 'cancelled')`
    if (open!.n === 0) return
    await sleep(100)
  }
}
