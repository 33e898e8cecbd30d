import { describe, expect, it } from 'vitest'
import { parseConfig } from './config.js'

describe('configuration', () => {
  it('runs with nothing set: embedded database, default ports', () => {
    const config = parseConfig({})
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config).toMatchObject({ API_PORT: 3000, WEBHOOKS_PORT: 3001, EMBEDDED_PG_PORT: 54329, AUTO_MIGRATE: true, TRUST_PROXY: false })
  })

  it.each([
    [{ API_PORT: 'eighty' }, /^invalid configuration: API_PORT: /],
    [{ DATABASE_URL: 'not a url' }, /^invalid configuration: DATABASE_URL: /],
    [{ LOG_LEVEL: 'loud' }, /^invalid configuration: LOG_LEVEL: /],
    [{ OPERATOR_API_KEY: 'short' }, /^invalid configuration: OPERATOR_API_KEY: /],
    [{ AUTO_MIGRATE: 'yes please' }, /^invalid configuration: AUTO_MIGRATE: /],
    [{ SECRETS_KEY: 'c2hvcnQ=' }, /^invalid configuration: SECRETS_KEY: expected 32 bytes/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'postgres://o@db/x', SECRETS_KEY: 'a'.repeat(64) }, /DATABASE_RUNTIME_URL: required in production/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'postgres://o@db/x', DATABASE_RUNTIME_URL: 'postgres://r@db/x' }, /SECRETS_KEY: required in production/],
    [{ HTTP_HEADERS_TIMEOUT_MS: '20000', HTTP_REQUEST_TIMEOUT_MS: '10000' }, /^invalid configuration: HTTP_HEADERS_TIMEOUT_MS: must not exceed/],
    [{ AUTH_FAILURE_LIMIT_PER_MINUTE: '0' }, /^invalid configuration: AUTH_FAILURE_LIMIT_PER_MINUTE: /],
  ])('stops on %j with one line naming the variable', (env, message) => {
    expect(() => parseConfig(env)).toThrow(message)
  })

  it('treats empty values as unset, as a .env file with FOO= means', () => {
    const config = parseConfig({ DATABASE_URL: '', REDIS_URL: '' })
    expect([config.DATABASE_URL, config.REDIS_URL]).toEqual([undefined, undefined])
  })

  it('reads TRUST_PROXY as off, on, a hop count or a list of addresses', () => {
    expect(parseConfig({ TRUST_PROXY: 'true' }).TRUST_PROXY).toBe(true)
    expect(parseConfig({ TRUST_PROXY: '2' }).TRUST_PROXY).toBe(2)
    expect(parseConfig({ TRUST_PROXY: '10.0.0.1, 10.0.0.2' }).TRUST_PROXY).toEqual(['10.0.0.1', '10.0.0.2'])
  })
})
