import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi, buildTestWebhooks, OPERATOR_KEY } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeTenant } from '../../../../test/factories/tenants.js'
import { makePhoneNumber, type TestNumber } from '../../../../test/factories/whatsapp.js'
import { count, drainJobs, postDelivery } from '../../../../test/whatsapp.js'
import type { App } from '../../../../lib/http/create-server.js'
import { DeliveryInbox } from '../../../../domains/whatsapp/inbox.js'
import { delivery, textMessage } from '../../../../domains/whatsapp/webhook/fixtures.js'

const sha = (raw: string) => createHash('sha256').update(raw).digest('hex')

/**
 * Reliability item 5 of issue 8: a correctly signed delivery PostgreSQL cannot store as jsonb used to fail its whole
 * group commit (its neighbours answered 500) and itself forever (Meta retries a 500 for days).
 */
describe('signed deliveries that can never be stored as jsonb', () => {
  const db = useTestDatabase()
  let webhooks: App
  let api: App
  let number: TestNumber
  beforeAll(async () => {
    webhooks = await buildTestWebhooks(db.current)
    api = await buildTestApi(db.current)
    number = await makePhoneNumber(db.current.sql, await makeTenant(db.current.sql))
  })
  afterAll(async () => {
    await webhooks.close()
    await api.close()
  })

  let seq = 0
  const goodBody = () => JSON.stringify(delivery({ wabaId: number.wabaId, phoneNumberId: number.phoneNumberId, messages: [textMessage({ from: '5511987654321', body: `good ${++seq}` })] }))
  /** A text message whose body is `body`, written as raw JSON so escapes reach the wire exactly as given. */
  const rawWithBody = (escapedBody: string) =>
    goodBody().replace(/"body":"good \d+"/, `"body":"${escapedBody} ${++seq}"`)
  // Deeper than PostgreSQL's jsonb parser can go (stack depth), far below the body limit; invisible to the cheap check.
  const tooDeep = () => {
    const depth = 100_000
    return `{"object":"whatsapp_business_account","entry":[{"id":"${number.wabaId}","changes":[{"field":"messages","value":{"n":${++seq},"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}]}]}`
  }
  const unparseable = () => db.current.owner<{ id: string; reason: string; rawBody: Buffer; signedBy: string; bodySha256: Buffer }[]>`
    select id::text, reason, raw_body, signed_by, body_sha256 from whatsapp.unparseable_deliveries order by id`

  it('acknowledges 120 good deliveries and the poisoned ones sent among them, stores each good one once, and keeps the poisoned bytes', async () => {
    const good = Array.from({ length: 120 }, goodBody)
    const poisoned = [rawWithBody('nul \\u0000 here'), rawWithBody('lone high \\ud800 surrogate'), rawWithBody('lone low \\udc00 surrogate'), tooDeep()]
    const deliveriesBefore = await count(db.current, 'whatsapp.webhook_deliveries')
    // Poisoned ones spread through the good ones, all at once: they share group commits.
    const all = [...good.slice(0, 30), poisoned[0]!, ...good.slice(30, 60), poisoned[1]!, ...good.slice(60, 90), poisoned[2]!, ...good.slice(90), poisoned[3]!]
    const results = await Promise.all(all.map((raw) => postDelivery(webhooks, null, { raw })))

    expect(results.filter((r) => r.statusCode !== 200).map((r) => `${r.statusCode} ${r.body}`)).toEqual([])
    const byRaw = new Map<string, Record<string, unknown>>(all.map((raw, i) => [raw, results[i]!.json()]))
    for (const raw of good) expect(byRaw.get(raw)).toMatchObject({ received: true, duplicate: false })
    for (const raw of good) expect(byRaw.get(raw)!.unparseable).toBeUndefined()
    for (const raw of poisoned) expect(byRaw.get(raw)).toMatchObject({ received: true, duplicate: false, unparseable: true })

    // Every good delivery stored exactly once, as jsonb; none of the poisoned ones.
    expect(await count(db.current, 'whatsapp.webhook_deliveries')).toBe(deliveriesBefore + 120)
    const stored = await db.current.owner<{ sha: string; n: number }[]>`
      select encode(body_sha256, 'hex') as sha, count(*)::int as n from whatsapp.webhook_deliveries group by 1`
    const storedBySha = new Map(stored.map((r) => [r.sha, r.n]))
    for (const raw of good) expect(storedBySha.get(sha(raw))).toBe(1)
    for (const raw of poisoned) expect(storedBySha.get(sha(raw))).toBeUndefined()

    // The poisoned ones kept byte for byte, each with its reason.
    const kept = new Map((await unparseable()).map((r) => [r.bodySha256.toString('hex'), r]))
    for (const raw of poisoned) {
      expect(kept.get(sha(raw))!.rawBody.equals(Buffer.from(raw))).toBe(true)
      expect(kept.get(sha(raw))!.signedBy).toBe('platform')
    }
    expect(kept.get(sha(poisoned[0]!))!.reason).toBe('a NUL character (\\u0000) in the value at $.entry[0].changes[0].value.messages[0].text.body')
    expect(kept.get(sha(poisoned[1]!))!.reason).toBe('a lone surrogate (\\ud800) in the value at $.entry[0].changes[0].value.messages[0].text.body')
    expect(kept.get(sha(poisoned[2]!))!.reason).toMatch(/^a lone surrogate \(\\udc00\)/)
    expect(kept.get(sha(poisoned[3]!))!.reason).toMatch(/^PostgreSQL refused the body: stack depth limit exceeded/)

    // And the good ones are processed as usual.
    await drainJobs(db.current)
    expect(await count(db.current, 'whatsapp.webhook_deliveries', `status = 'processed'`)).toBe(deliveriesBefore + 120)
  })

  it("answers Meta's retry of a poisoned delivery 200 as a duplicate, without storing it again", async () => {
    const raw = rawWithBody('retry me \\u0000')
    const first = await postDelivery(webhooks, null, { raw })
    const again = await Promise.all([postDelivery(webhooks, null, { raw }), postDelivery(webhooks, null, { raw })])
    expect([first.statusCode, ...again.map((r) => r.statusCode)]).toEqual([200, 200, 200])
    expect(again.map((r) => r.json())).toEqual([
      { received: true, deliveryId: first.json().deliveryId, duplicate: true, unparseable: true },
      { received: true, deliveryId: first.json().deliveryId, duplicate: true, unparseable: true },
    ])
    expect(await count(db.current, 'whatsapp.unparseable_deliveries', `body_sha256 = decode('${sha(raw)}', 'hex')`)).toBe(1)
  })

  it('still stores escaped emoji (paired surrogates) and an escaped backslash before u0000 as ordinary deliveries', async () => {
    for (const raw of [rawWithBody('smile \\ud83d\\ude00'), rawWithBody('not a NUL: \\\\u0000')]) {
      const res = await postDelivery(webhooks, null, { raw })
      expect(res.statusCode).toBe(200)
      expect(res.json().unparseable).toBeUndefined()
      expect(await count(db.current, 'whatsapp.webhook_deliveries', `id = ${res.json().deliveryId}`)).toBe(1)
    }
  })

  it('refuses a poisoned body with a wrong signature (401) and stores nothing', async () => {
    const before = await count(db.current, 'whatsapp.unparseable_deliveries')
    const res = await postDelivery(webhooks, null, { raw: rawWithBody('\\u0000'), secret: 'not-the-app-secret' })
    expect(res.statusCode).toBe(401)
    expect(await count(db.current, 'whatsapp.unparseable_deliveries')).toBe(before)
  })

  it('shows operators the kept deliveries, and the exact bytes of one', async () => {
    const raw = rawWithBody('for the operator \\u0000')
    const { deliveryId } = (await postDelivery(webhooks, null, { raw })).json()
    const list = await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/unparseable', headers: bearer(OPERATOR_KEY) })
    expect(list.statusCode).toBe(200)
    expect(list.json().data[0]).toEqual({
      id: deliveryId, receivedAt: expect.any(String), signedBy: 'platform', byteCount: Buffer.byteLength(raw), bodySha256: sha(raw),
      reason: 'a NUL character (\\u0000) in the value at $.entry[0].changes[0].value.messages[0].text.body',
    })
    const one = await api.inject({ method: 'GET', url: `/v1/ops/whatsapp/unparseable/${deliveryId}`, headers: bearer(OPERATOR_KEY) })
    expect(Buffer.from(one.json().rawBase64, 'base64').toString()).toBe(raw)
    expect((await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/unparseable/987654321', headers: bearer(OPERATOR_KEY) })).statusCode).toBe(404)
    expect((await api.inject({ method: 'GET', url: '/v1/ops/whatsapp/unparseable', headers: bearer((await makeTenant(db.current.sql)).adminKey) })).statusCode).toBe(403)
  })

  it('finds an offender the cheap check missed by splitting the batch, and stores its neighbours', async () => {
    // As if the route had not flagged it: the grouped statement fails, halves are retried, only the offender is kept raw.
    const inbox = new DeliveryInbox(db.current.sql)
    const good = Array.from({ length: 40 }, goodBody)
    const bad = rawWithBody('missed \\u0000')
    const items = [...good.slice(0, 17), bad, ...good.slice(17)]
    const results = await Promise.all(items.map((raw) => inbox.store({ raw: Buffer.from(raw), text: raw, signedBy: 'platform', unstorable: null })))
    expect(results.filter((r) => r.unparseable)).toHaveLength(1)
    expect(results[17]).toMatchObject({ duplicate: false, unparseable: true })
    for (const raw of good) expect(await count(db.current, 'whatsapp.webhook_deliveries', `body_sha256 = decode('${sha(raw)}', 'hex')`)).toBe(1)
    const [kept] = await db.current.owner<{ reason: string }[]>`select reason from whatsapp.unparseable_deliveries where body_sha256 = decode(${sha(bad)}, 'hex')`
    expect(kept!.reason).toMatch(/^PostgreSQL refused the body: unsupported Unicode escape sequence/)
  })
})
