import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../test/processes.js'
import { useTestDatabase } from '../test/db.js'
import { createSql, isDatabaseUnavailable, postgresDriverPatched, withTenantStatement } from './db.js'

/** Runs a fixture script in a process of its own (a driver bug may kill it): its exit code and its whole output. */
async function runFixture(file: string, url: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, url], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  return { code, out }
}

describe('the database driver when the server drops a connection', () => {
  const db = useTestDatabase()

  it('fails the transaction, keeps the process alive and serves the next queries on the same pool', async () => {
    // A process of its own: the driver bug this guards against throws from a setImmediate and kills its process.
    const { code, out } = await runFixture('test/fixtures/transaction-on-dying-connection.ts', db.current.ownerUrl)
    expect(out).not.toContain('TypeError')
    expect(code).toBe(0)
    const lines = out.trim().split('\n')
    expect(lines.at(-1)).toBe('done')
    // Each round: the transaction fails as a lost connection (a 503, retried), and no later query inherits its error.
    expect(lines.slice(0, -1).map((l) => JSON.parse(l))).toEqual(Array(3).fill({ transaction: 'CONNECTION_CLOSED', after: ['ok', 'ok', 'ok', 'ok'] }))
  }, 60_000)

  it('lives through a connection whose first statement, the driver\'s array types fetch, fails', async () => {
    // The fetch's promise had no handler (porsager/postgres#1192): a database shutting down while the pool
    // reconnected killed the process with an unhandled rejection. A 1 ms statement timeout fails that fetch every time.
    const { code, out } = await runFixture('test/fixtures/types-fetch-failing.ts', db.current.ownerUrl)
    expect({ code, out }).toEqual({ code: 0, out: expect.stringMatching(/done\n$/) })
    expect(out).not.toContain('unhandled')
  }, 60_000)

  it('ends a pool whose server is gone, even with a query waiting to reconnect', async () => {
    const dead = createSql('postgres://app_runtime:x@127.0.0.1:1/nowhere', { max: 1 })
    await expect(dead`select 1`).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    const waiting = dead`select 2`.catch((e: { code?: string }) => e.code)
    await new Promise((r) => setTimeout(r, 0)) // inside the reconnect delay (at least 25 ms): end() finds it waiting
    const ended = await Promise.race([dead.end().then(() => 'ended'), new Promise((r) => setTimeout(() => r('still ending after 5 s'), 5_000))])
    expect(ended).toBe('ended')
    expect(await waiting).toBe('ECONNREFUSED')
  })

  it('runs with the postgres.js fix from ops/patches installed', () => {
    expect(postgresDriverPatched()).toBe(true)
  })
})

describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['a connection postgres.js lost', Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' })],
    ['an administrator shutdown', Object.assign(new Error('terminating connection'), { code: '57P01' })],
    ['every address of a host refusing', new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })], 'all failed')],
    ['a wrapped cause', new Error('storing failed', { cause: Object.assign(new Error('x'), { code: 'CONNECT_TIMEOUT' }) })],
  ])('is true for %s', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(true)
  })

  it.each([
    ['a unique violation', Object.assign(new Error('duplicate'), { code: '23505' })],
    ['a plain error', new Error('boom')],
    ['nothing', undefined],
  ])('is false for %s', (_name, err) => {
    expect(isDatabaseUnavailable(err)).toBe(false)
  })
})

describe('withTenantStatement', () => {
  const db = useTestDatabase()

  it('applies the tenant before the statement it sends along, and only for that transaction', async () => {
    const tenantId = '00000000-0000-4000-8000-00000000abcd'
    for (let i = 0; i < 20; i++) {
      const seen = await withTenantStatement(db.current.sql, tenantId, (tx) =>
        tx<{ t: string }[]>`select current_setting('app.tenant_id', true) as t`.then((r) => r[0]!.t))
      expect(seen).toBe(tenantId)
    }
    const [after] = await db.current.sql<{ t: string | null }[]>`select nullif(current_setting('app.tenant_id', true), '') as t`
    expect(after!.t).toBeNull()
  })
})
