import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { WorkerHandle } from '../services/workers/worker.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSeeds } from '../db/seed.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'
import type { App } from '../lib/http/create-server.js'
import { createLogger, type Logger } from '../lib/logger.js'
import { readMigrationFiles } from '../lib/migrate.js'
import { startWhatsAppEmulator, type WhatsAppEmulator } from '../ops/emulators/whatsapp-cloud-api.js'
import { buildApiApp } from '../services/api/app.js'
import { buildWebhooksApp } from '../services/webhooks/app.js'
import { startWorker } from '../services/workers/worker.js'
import { bearer, testConfig } from './apps.js'
import { useTestDatabase } from './db.js'
import { PLATFORM_APP_SECRET } from './factories/whatsapp.js'

const DEMO_ADMIN_KEY = 'wak_demo0000_local-development-only-demo-admin-key-00001'
const WABA_ID = '100000000000001'
const PHONE_NUMBER_ID = '100000000000002'

/** One person, and every way their details can be written. */
const person = {
  name: 'Joana Pereira',
  email: 'joana.pereira@example.com',
  phoneTyped: '+55 (11) 98765-4321',
  e164: '+5511987654321',
  waId: '5511987654321',
  message: 'Quero marcar uma limpeza para sexta-feira',
}
const FORBIDDEN = [
  person.e164, person.waId, encodeURIComponent(person.e164), '11987654321', '(11) 98765-4321', '98765-4321', '987654321',
  person.email, encodeURIComponent(person.email), 'Joana', 'Pereira', 'joana.pereira', person.message, 'limpeza',
]

/**
 * A realistic session with every log line of the three services captured at debug level (pino, Fastify's access
 * log, graphile-worker's own lines): a form submission, the person's WhatsApp message through the signed webhook,
 * the worker applying both and the demo bot replying through the Cloud API emulator, whose status webhooks come
 * back, and two lead searches by phone and by e-mail. Not one line may hold the person.
 */
describe('personal data in logs', () => {
  const db = useTestDatabase()
  const lines: string[] = []
  const destination = new Writable({ write: (chunk, _enc, done) => { lines.push(...String(chunk).split('\n').filter(Boolean)); done() } })
  const logFor = (service: string): Logger => createLogger({ level: 'debug', service, destination })
  let webhooks: App
  let api: App
  let wa: WhatsAppEmulator
  let worker: WorkerHandle
  let webhooksUrl: string

  beforeAll(async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const migrations = await readMigrationFiles()
    webhooks = await buildWebhooksApp({ config: testConfig({ LOG_LEVEL: 'debug' }), sql: db.current.sql, log: logFor('webhooks'), migrations })
    const base = await webhooks.listen({ host: '127.0.0.1', port: 0 })
    webhooksUrl = base
    wa = await startWhatsAppEmulator({ webhookUrl: `${base}/webhooks/whatsapp`, appSecret: PLATFORM_APP_SECRET, wabaId: WABA_ID, displayPhoneNumber: '15550001234', statusDelayMs: 10, webhookAttempts: 10, webhookRetryDelayMs: 200 })
    const config = testConfig({ GRAPH_API_BASE_URL: wa.url, WORKER_POLL_INTERVAL_MS: '100', LOG_LEVEL: 'debug' })
    worker = await startWorker({ config, metricsSql: db.current.sql, log: logFor('worker'), connectionString: db.current.runtimeUrl })
    api = await buildApiApp({ config, sql: db.current.sql, log: logFor('api'), migrations })
    await api.ready()
  })
  afterAll(async () => {
    await worker?.stop()
    await wa?.stop()
    await webhooks?.close()
    await api?.close()
  })

  it('holds no phone number, e-mail, name or message text after a form, a bot conversation and lead searches', async () => {
    // The clinic publishes a form; the person fills it in on the clinic's site.
    const created = await api.inject({
      method: 'POST', url: '/v1/forms', headers: bearer(DEMO_ADMIN_KEY),
      payload: {
        name: 'Agende sua avaliação',
        fields: [
          { name: 'name', label: 'Nome', type: 'text', required: true },
          { name: 'email', label: 'E-mail', type: 'email', required: true },
          { name: 'phone', label: 'WhatsApp', type: 'phone', required: true },
        ],
        allowedOrigins: ['https://www.sorriso.example'],
      },
    })
    expect(created.statusCode).toBe(201)
    const submitted = await fetch(`${webhooksUrl}${created.json().submitPath}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://www.sorriso.example' },
      body: JSON.stringify({ name: person.name, email: person.email, phone: person.phoneTyped, started_at: Date.now() - 20_000 }),
    })
    expect(submitted.status).toBe(201)

    // Then she writes on WhatsApp: a signed delivery, over real HTTP.
    const raw = JSON.stringify(f.delivery({
      wabaId: WABA_ID, phoneNumberId: PHONE_NUMBER_ID, displayPhoneNumber: '15550001234',
      messages: [f.textMessage({ from: person.waId, body: person.message })], contacts: [{ waId: person.waId, name: person.name }],
    }))
    const delivered = await fetch(`${webhooksUrl}/webhooks/whatsapp`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signMetaBody(raw, PLATFORM_APP_SECRET) }, body: raw })
    expect(delivered.status).toBe(200)

    // The worker applies both, the bot answers through the emulator, and the emulator's statuses come back.
    const deadline = Date.now() + 20_000
    let statuses: string[] = []
    while (Date.now() < deadline) {
      const rows = await db.current.owner<{ status: string }[]>`select status from whatsapp.messages where wa_id = ${person.waId} and direction = 'outbound'`
      statuses = rows.map((r) => r.status)
      if (statuses.length >= 2 && statuses.every((s) => s === 'read')) break
      await sleep(50)
    }
    expect(wa.sent.filter((m) => m.to === person.waId).length).toBeGreaterThanOrEqual(2)
    expect(statuses.length).toBeGreaterThanOrEqual(2)
    expect({ statuses, webhooks: wa.webhooks.map((w) => [w.lastHttpStatus, w.delivered]) }).toMatchObject({ statuses: statuses.map(() => 'read') })

    // The clinic looks her up by phone and by e-mail.
    for (const q of [person.e164, person.email]) {
      const found = await api.inject({ method: 'GET', url: `/v1/leads?q=${encodeURIComponent(q)}`, headers: bearer(DEMO_ADMIN_KEY) })
      expect(found.statusCode).toBe(200)
      expect(found.json().data).toEqual([expect.objectContaining({ name: person.name, email: person.email, phoneE164: person.e164 })])
    }
    await worker.stop()
    worker = undefined as unknown as WorkerHandle

    // The capture really holds every service's lines, graphile-worker's own included, at debug level.
    const records = lines.map((l) => JSON.parse(l) as { service?: string; msg?: string; level: number })
    expect(new Set(records.map((r) => r.service))).toEqual(new Set(['webhooks', 'api', 'worker']))
    expect(records.some((r) => r.service === 'worker' && /^Completed task \d+ \(whatsapp__send_message/.test(r.msg ?? ''))).toBe(true)
    expect(records.some((r) => r.level === 20)).toBe(true)
    expect(lines.some((l) => l.includes('/v1/leads?q=[redacted]'))).toBe(true)

    const hits = FORBIDDEN.flatMap((needle) => lines.filter((l) => l.toLowerCase().includes(needle.toLowerCase())).map((l) => `${needle} in ${l}`))
    expect(hits).toEqual([])
  }, 60_000)
})
