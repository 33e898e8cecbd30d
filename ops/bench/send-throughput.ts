/**
 * `npm run bench:send`: outbound send throughput against the Cloud API emulator, versus the configured per-number
 * limit. N messages to N different leads (so the pair rate never binds) are queued through the outbox in one
 * transaction; then two graphile-worker runners (two "processes", each with its own pool) send them. The emulator
 * enforces the same limit and answers 130429 above it, as Meta does. Printed per limit: the achieved sends/second
 * (from the emulator's receive times), the busiest 1-second window, 130429s seen, and that every message was
 * accepted exactly once.
 *
 * Environment: BENCH_SEND_MESSAGES (400), BENCH_SEND_LIMITS (comma-separated, default "80,200"),
 * WORKER_CONCURRENCY (16 per runner), BENCH_DATABASE_URL (else embedded). Loopback only; each run stops after 120 s.
 */
import { run, type Runner } from 'graphile-worker'
import { SecretBox } from '../../lib/crypto.js'
import { createSql, withTenant } from '../../lib/db.js'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { registerPhoneNumber } from '../../domains/whatsapp/numbers.js'
import { textBody } from '../../domains/whatsapp/graph/bodies.js'
import { queueOutbound } from '../../domains/whatsapp/outbound/service.js'
import { startWhatsAppEmulator } from '../emulators/whatsapp-cloud-api.js'
import { buildTaskList } from '../../services/workers/tasks/index.js'
import { workerLogger } from '../../services/workers/worker.js'
import { startBenchDatabase } from './harness.js'

const MESSAGES = Math.min(5_000, Number(process.env.BENCH_SEND_MESSAGES ?? 400))
const LIMITS = (process.env.BENCH_SEND_LIMITS ?? '80,200').split(',').map(Number).filter((n) => n > 0)
const CONCURRENCY = Number(process.env.WORKER_CONCURRENCY ?? 16)
const DEADLINE_MS = 120_000

const log = createLogger({ level: 'warn', service: 'bench' })
const db = await startBenchDatabase({ poolMax: 30 })
const secrets = SecretBox.fromConfig(undefined)
const rows: string[][] = []

try {
  for (const [i, limit] of LIMITS.entries()) {
    const { tenant } = await createTenantWithFirstKey(db.sql, { name: `Bench ${limit}`, slug: `bench-send-${i}-${Date.now() % 1e6}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'bench' })
    const phoneNumberId = `1002003004${String(i).padStart(5, '0')}`
    const number = await registerPhoneNumber(db.sql, secrets, tenant.id, 'bench', {
      phoneNumberId, wabaId: `9008007006${String(i).padStart(5, '0')}`, displayPhoneNumber: '+1 555 000 0000', accessToken: 'EAAG-bench-token-0000000000', app: { mode: 'platform' },
    })
    const wa = await startWhatsAppEmulator({ autoStatuses: false })
    wa.setRateLimit(limit)

    // Queue everything first (one transaction), so the measurement is the sending alone.
    await withTenant(db.sql, tenant.id, async (tx) => {
      for (let m = 0; m < MESSAGES; m++) {
        const waId = `5511${String(900_000_000 + m)}`
        const [lead] = await tx<{ id: string }[]>`
          insert into marketing.leads (tenant_id, phone_e164, phone_key, wa_id, source) values (${tenant.id}, ${`+${waId}`}, ${`+${waId}`}, ${waId}, 'bench') returning id`
        await tx`insert into whatsapp.service_windows (tenant_id, phone_number_id, wa_id, lead_id, last_inbound_at) values (${tenant.id}, ${number.id}, ${waId}, ${lead!.id}, now())`
        await queueOutbound(tx, { tenantId: tenant.id, phoneId: number.id, leadId: lead!.id, waId, body: textBody({ to: waId, text: `message ${m}` }), source: 'api', requestedBy: 'bench' })
      }
    })

    const config = parseConfig({ NODE_ENV: 'test', GRAPH_API_BASE_URL: wa.url, WHATSAPP_SEND_RATE_PER_SECOND: String(limit) })
    const pools = [createSql(db.runtimeUrl, { max: CONCURRENCY + 2 }), createSql(db.runtimeUrl, { max: CONCURRENCY + 2 })]
    const started = Date.now()
    const runners: Runner[] = await Promise.all(pools.map((sql) => run({
      connectionString: db.runtimeUrl, concurrency: CONCURRENCY, maxPoolSize: CONCURRENCY + 2, pollInterval: 200, noHandleSignals: true,
      taskList: buildTaskList({ config, sql, log }), logger: workerLogger(log),
    })))
    while (wa.sent.length < MESSAGES && Date.now() - started < DEADLINE_MS) await new Promise((r) => setTimeout(r, 50))
    await Promise.all(runners.map((r) => r.stop()))
    await Promise.all(pools.map((p) => p.end({ timeout: 5 })))

    const times = wa.sent.map((m) => Date.parse(m.receivedAt)).sort((a, b) => a - b)
    const spanS = (times.at(-1)! - times[0]!) / 1000
    let peak = 0
    for (let a = 0, b = 0; b < times.length; b++) {
      while (times[b]! - times[a]! >= 1000) a++
      peak = Math.max(peak, b - a + 1)
    }
    // Calls beyond the first per message: Meta's 130429 (the limit was not held) or other retries.
    const [counts] = await db.owner<{ accepted: number; retries: number }[]>`
      select count(*) filter (where state = 'accepted')::int as accepted, (sum(attempts) - count(*))::int as retries
        from whatsapp.outbound_sends where tenant_id = ${tenant.id}`
    const distinct = new Set(wa.sent.map((m) => m.bizOpaqueCallbackData)).size
    rows.push([
      String(limit), String(MESSAGES), ((times.length - 1) / spanS).toFixed(1), String(peak), spanS.toFixed(2), `${counts!.accepted}/${MESSAGES}`, String(counts!.retries),
      distinct === wa.sent.length ? 'none' : String(wa.sent.length - distinct),
    ])
    await wa.stop()
  }
} finally {
  await db.close()
}

const header = ['limit/s', 'messages', 'achieved/s', 'peak in 1 s', 'seconds', 'accepted', 'rejected calls', 'duplicates']
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
console.log(`send throughput: ${MESSAGES} messages, 2 worker runners x concurrency ${CONCURRENCY}, emulator enforcing the same limit`)
console.log(line(header))
console.log(widths.map((w) => '-'.repeat(w)).join('  '))
for (const r of rows) console.log(line(r))
