import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import postgres from 'postgres'

export type Sql = postgres.Sql<Record<string, unknown>>
/** A transaction handle: what `sql.begin` hands to its callback. Queries take this, never the pool. */
export type Tx = postgres.TransactionSql<Record<string, unknown>>
export type Queryable = Sql | Tx

export interface SqlOptions {
  max?: number
  applicationName?: string
  /** Silence NOTICEs (migrations raise many "already exists, skipping"). */
  quiet?: boolean
}

/**
 * One `sql` per process and role. Columns come back camelCase and `sql(obj, ...)` maps camelCase keys to
 * snake_case; JSON values are left alone, because they hold outside payloads whose keys must stay as sent.
 */
export function createSql(url: string, options: SqlOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    idle_timeout: 30,
    connect_timeout: 10,
    // postgres.js waits up to 20 s (3^n/100 s) before reconnecting after repeated failures, and queries queue behind
    // that wait: during an outage requests hang instead of answering 503, and after it they stall for up to 20 s more.
    // A refused connection costs nothing, so try again within a second.
    backoff: reconnectDelaySeconds,
    max_lifetime: 60 * 30,
    connection: { application_name: options.applicationName ?? 'wa-platform' },
    transform: { column: { from: postgres.toCamel, to: postgres.fromCamel }, undefined: null },
    onnotice: options.quiet ? () => {} : undefined,
  }) as unknown as Sql
}

/** Seconds before a lost connection is reopened: 50 ms doubling to 1 s, with jitter so processes do not march in step. */
export const reconnectDelaySeconds = (retries: number) => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2)

/**
 * Runs `fn` in a transaction whose row-level-security tenant is `tenantId`. The setting is transaction-local
 * (`set_config(..., true)`): a session-level SET would stay on the pooled connection and leak to the next user.
 */
export async function withTenant<T>(sql: Sql, tenantId: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select set_config('app.tenant_id', ${tenantId}, true)`
    return fn(tx)
  }) as Promise<T>
}

/**
 * withTenant for a request that is one statement (an autosave): the tenant setting and the statement are sent
 * together (postgres.js pipelines queries handed back as an array), saving a round trip on the hot path. The setting
 * is still transaction-local and applied first: the statement runs after it on the same connection.
 */
export async function withTenantStatement<T>(sql: Sql, tenantId: string, statement: (tx: Tx) => Promise<T>): Promise<T> {
  const [, result] = (await sql.begin((tx) => {
    // execute() sends it now, before the statement (which may be sent as soon as it is built, by a .then()).
    const setting = tx`select set_config('app.tenant_id', ${tenantId}, true)`.execute()
    return [setting, statement(tx)] as never
  })) as unknown as [unknown, T]
  return result
}

/** Same, for code already inside a transaction (e.g. a worker task that also touches platform tables). */
export async function setTenant(tx: Tx, tenantId: string): Promise<void> {
  await tx`select set_config('app.tenant_id', ${tenantId}, true)`
}

/** The PostgreSQL error codes that mean "try again later", not "your request is wrong". */
const UNAVAILABLE_CODES = new Set([
  '08000', '08003', '08006', '08001', '08004', // connection exceptions
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '40001', '40P01', // serialization failure, deadlock
  '55P03', // lock_not_available
  '57014', // query_canceled (statement timeout)
])
// Socket errors on the way to the server, and postgres.js's own codes for a connection it lost or could not open.
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN',
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
])

/**
 * True for errors that mean the database is away or overloaded (answer 503, retry the job), not that the request is
 * wrong. Looks through `cause` and AggregateError (a host that resolves to several addresses fails with one of those).
 */
export function isDatabaseUnavailable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 4) return false
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_NODE_CODES.has(code))) return true
  if (err instanceof AggregateError && err.errors.some((e) => isDatabaseUnavailable(e, depth + 1))) return true
  return isDatabaseUnavailable((err as { cause?: unknown }).cause, depth + 1)
}

/**
 * Whether the installed postgres.js carries our fixes (ops/patches): without them a database that goes away under a
 * transaction, or while a new connection fetches its array types, crashes the process. The services warn at boot
 * when they are missing.
 */
export function postgresDriverPatched(): boolean {
  try {
    // The CommonJS build; ops/patches patches it together with the ESM one we load.
    const entry = createRequire(import.meta.url).resolve('postgres')
    const text = readFileSync(entry.replace(/index\.js$/, 'connection.js'), 'utf8')
    return text.includes('wa-platform patch: closed socket') && text.includes('wa-platform patch: array types fetch')
  } catch {
    return false
  }
}
