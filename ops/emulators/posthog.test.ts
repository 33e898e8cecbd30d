import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startPosthogEmulator, type PosthogEmulator } from './posthog.js'

describe('PostHog emulator: the capture endpoints as posthog-node and the snippet call them', () => {
  let ph: PosthogEmulator
  beforeAll(async () => { ph = await startPosthogEmulator({ apiKeys: ['phc_ok'] }) })
  afterAll(async () => { await ph.stop() })
  beforeEach(() => ph.reset())

  const post = (path: string, body: unknown, init: { gzip?: boolean; raw?: string } = {}) => {
    const text = init.raw ?? JSON.stringify(body)
    return fetch(`${ph.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(init.gzip ? { 'content-encoding': 'gzip' } : {}) },
      body: init.gzip ? gzipSync(text) : text,
    })
  }
  const event = (uuid: string) => ({ event: 'lead.created', distinct_id: 'lead_1', uuid, properties: { formId: 'f1' }, timestamp: '2026-11-30T10:00:00.000Z' })

  it('stores a gzipped /batch/ and answers {"status":1}; a resent uuid is a duplicate, not a second event', async () => {
    const res = await post('/batch/', { api_key: 'phc_ok', batch: [event('u1'), event('u2')], sent_at: new Date().toISOString() }, { gzip: true })
    expect([res.status, await res.json()]).toEqual([200, { status: 1 }])
    await post('/batch/', { api_key: 'phc_ok', batch: [event('u2')] })
    expect(ph.events.map((e) => e.uuid)).toEqual(['u1', 'u2'])
    expect(ph.duplicates).toBe(1)
    expect(ph.requests.map((r) => [r.path, r.gzip, r.status])).toEqual([['/batch/', true, 200], ['/batch/', false, 200]])
    expect(ph.bodies()).toContain('"formId":"f1"')
  })

  it('takes single events on /capture/, /e/ and /i/v0/e/, with the key in the body or in properties.token', async () => {
    expect((await post('/capture/', { api_key: 'phc_ok', ...event('c1') })).status).toBe(200)
    expect((await post('/i/v0/e/', { ...event('c2'), properties: { token: 'phc_ok' } })).status).toBe(200)
    expect((await post('/e/', { api_key: 'phc_ok', ...event('c3') })).status).toBe(200)
    expect(ph.events.map((e) => [e.uuid, e.path])).toEqual([['c1', '/capture/'], ['c2', '/i/v0/e/'], ['c3', '/e/']])
  })

  it.each([
    ['no key', { batch: [event('x')] }, {}, 401, 'authentication_error'],
    ['an unknown key', { api_key: 'phc_nope', batch: [event('x')] }, {}, 401, 'authentication_error'],
    ['not JSON', null, { raw: '{nope' }, 400, 'validation_error'],
    ['gzip that is not gzip', null, { raw: 'plain', gzip: false, fakeGzip: true }, 400, 'validation_error'],
    ['an event without distinct_id', { api_key: 'phc_ok', batch: [{ event: 'x' }] }, {}, 400, 'validation_error'],
  ])('refuses %s with PostHog\'s error body', async (_n, body, init, status, type) => {
    const res = 'fakeGzip' in init
      ? await fetch(`${ph.url}/batch/`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: 'plain' })
      : await post('/batch/', body, init as { raw?: string })
    expect(res.status).toBe(status)
    expect(await res.json()).toMatchObject({ type, code: expect.any(String), detail: expect.any(String), attr: null })
    expect(ph.events).toEqual([])
  })

  it('fails the next N requests, or every request while down, and stores nothing meanwhile', async () => {
    ph.failNext(503, 2)
    expect((await post('/batch/', { api_key: 'phc_ok', batch: [event('f1')] })).status).toBe(503)
    expect((await post('/batch/', { api_key: 'phc_ok', batch: [event('f1')] })).status).toBe(503)
    expect((await post('/batch/', { api_key: 'phc_ok', batch: [event('f1')] })).status).toBe(200)
    ph.setDown(500)
    const down = await post('/batch/', { api_key: 'phc_ok', batch: [event('f2')] })
    expect([down.status, ((await down.json()) as { type: string }).type]).toEqual([500, 'server_error'])
    ph.setDown('timeout')
    await expect(fetch(`${ph.url}/batch/`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(200) })).rejects.toThrow()
    ph.setDown(null)
    expect(ph.events.map((e) => e.uuid)).toEqual(['f1'])
  })

  it('answers the control routes over HTTP', async () => {
    await fetch(`${ph.url}/_emulator/fail-next`, { method: 'POST', body: JSON.stringify({ status: 429 }) })
    expect((await post('/batch/', { api_key: 'phc_ok', batch: [event('r1')] })).status).toBe(429)
    await post('/batch/', { api_key: 'phc_ok', batch: [event('r1')] })
    const received = await (await fetch(`${ph.url}/_emulator/received`)).json()
    expect(received).toMatchObject({ events: [{ uuid: 'r1' }], duplicates: 0, requests: [{ status: 429 }, { status: 200 }] })
    await fetch(`${ph.url}/_emulator/reset`, { method: 'POST' })
    expect(ph.events).toEqual([])
  })
})
