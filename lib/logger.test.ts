import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger, maskPersonalData, redactUrl, serializeError } from './logger.js'

const capture = () => {
  const lines: string[] = []
  const destination = new Writable({ write: (chunk, _enc, done) => { lines.push(...String(chunk).split('\n').filter(Boolean)); done() } })
  return { lines, destination }
}

describe('createLogger', () => {
  it('writes "service" once, also when a child logger names its own service', () => {
    const { lines, destination } = capture()
    const log = createLogger({ level: 'info', service: 'platform', destination })
    log.info('root')
    log.child({ service: 'api' }).info('child')
    log.child({ service: 'worker' }).child({ reqId: 'r1' }).info('grandchild')
    const counts = lines.map((l) => l.split('"service":').length - 1)
    expect(counts).toEqual([1, 1, 1])
    expect(lines.map((l) => JSON.parse(l).service)).toEqual(['platform', 'api', 'worker'])
    // Other bindings survive the rewrite.
    expect(JSON.parse(lines[2]!)).toMatchObject({ service: 'worker', reqId: 'r1' })
  })

  it('masks an e-mail or +phone that reaches a line anyway, and leaves ids alone', () => {
    const { lines, destination } = capture()
    createLogger({ level: 'info', service: 'test', destination }).info({ phoneNumberId: '106540352242922' }, 'from +5215599990000 and ana@example.com / joana%40example.com / %2B5215599990000')
    expect(lines[0]).not.toMatch(/5215599990000|ana@example|joana%40/)
    expect(lines[0]).toContain('106540352242922')
  })
})

describe('redactUrl', () => {
  it.each([
    ['/v1/leads?q=%2B5215599990000', '/v1/leads?q=[redacted]'],
    ['/v1/leads?q=joana%40example.com&limit=10', '/v1/leads?q=[redacted]&limit=[redacted]'],
    ['/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=abc&hub.challenge=1', '/webhooks/whatsapp?hub.mode=[redacted]&hub.verify_token=[redacted]&hub.challenge=[redacted]'],
    ['/v1/leads?ana@example.com', '/v1/leads?[redacted]=[redacted]'],
    ['/v1/leads?%zz=1', '/v1/leads?[redacted]=[redacted]'],
    ['/v1/leads', '/v1/leads'],
  ])('keeps the names and drops the values of %s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected)
  })
})

describe('serializeError', () => {
  it("drops PostgreSQL's DETAIL and the statement's parameters, keeps message and code", () => {
    const err = Object.assign(new Error('duplicate key value violates unique constraint "leads_phone_key"'), {
      code: '23505', detail: 'Key (phone_e164)=(+5215599990000) already exists.', parameters: ['+5215599990000'], query: 'insert …',
    })
    const out = serializeError(err)
    expect(out).toMatchObject({ message: err.message, code: '23505' })
    expect(JSON.stringify(out)).not.toContain('5215599990000')
  })

  it('passes lines without personal data through untouched', () => {
    const line = '{"level":30,"msg":"request completed","reqId":"abc"}'
    expect(maskPersonalData(line)).toBe(line)
  })
})
