import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { readMigrationFiles } from '../lib/migrate.js'
import { createLogger } from '../lib/logger.js'
import { buildApiApp } from '../services/api/app.js'
import { buildWebhooksApp } from '../services/webhooks/app.js'
import * as f from '../domains/whatsapp/webhook/fixtures.js'
import { bearer, testConfig } from './apps.js'
import { useTestDatabase } from './db.js'
import { makeTenant } from './factories/tenants.js'
import { postDelivery } from './whatsapp.js'
import { PLATFORM_APP_SECRET } from './factories/whatsapp.js'
import { signMetaBody } from '../domains/whatsapp/signature.js'

describe('logs', () => {
  const db = useTestDatabase()

  it('are JSON lines with request ids, and never carry keys, signatures, verify tokens or message bodies', async () => {
    const lines: string[] = []
    const destination = new Writable({ write: (chunk, _enc, done) => { lines.push(...String(chunk).split('\n').filter(Boolean)); done() } })
    const log = createLogger({ level: 'trace', service: 'test', destination })
    const deps = { config: testConfig(), sql: db.current.sql, log, migrations: await readMigrationFiles() }
    const api = await buildApiApp(deps)
    const webhooks = await buildWebhooksApp(deps)
    const tenant = await makeTenant(db.current.sql)

    await api.inject({ method: 'GET', url: '/v1/me', headers: bearer(tenant.adminKey) })
    await api.inject({ method: 'POST', url: '/v1/api-keys', headers: bearer(tenant.adminKey), payload: { name: 'secret-sauce-name', role: 'admin' } })
    const body = f.delivery({ messages: [f.textMessage({ from: '5511987654321', body: 'my card number is 4111 1111' })] })
    await postDelivery(webhooks, body)
    const signature = signMetaBody(JSON.stringify(body), PLATFORM_APP_SECRET)
    await webhooks.inject({ method: 'GET', url: '/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=dev-meta-verify-token&hub.challenge=42' })
    await api.close()
    await webhooks.close()

    expect(lines.length).toBeGreaterThan(4)
    const records = lines.map((l) => JSON.parse(l))
    expect(records.filter((r) => r.msg === 'incoming request').every((r) => typeof r.reqId === 'string')).toBe(true)
    const all = lines.join('\n')
    for (const secret of [tenant.adminKey, 'my card number', 'secret-sauce-name', 'dev-meta-verify-token', signature.slice(7)]) {
      expect(all).not.toContain(secret)
    }
    expect(all).toContain('hub.verify_token=[redacted]')
  })
})
