import { isIPv6 } from 'node:net'
import type { Redis } from 'ioredis'
import type { Logger } from '../logger.js'

/**
 * Counts failed authentications per client address in fixed one-minute windows, so that guessing keys costs the
 * guesser a 429 and us nothing: `blockedFor` is asked before any key is looked up. With Redis the counters are
 * shared by every API instance; without it (or while Redis does not answer) each process counts on its own, so a
 * Redis outage neither fails requests nor lifts the limit.
 */
export interface AuthFailureLimiter {
  /** Seconds this address must wait before presenting a key again; 0 when it may. */
  blockedFor(ip: string): Promise<number>
  recordFailure(ip: string): Promise<void>
}

const WINDOW_MS = 60_000
// A Redis that does not answer within this is treated as down for this request: authentication must not hang on it.
const REDIS_TIMEOUT_MS = 250
// Memory stays bounded whatever the number of addresses an attacker has.
const MAX_MEMORY_ENTRIES = 100_000
const NAMESPACE = 'wa-api-authfail:'

// INCR, and start the window on the first failure; returns the count.
const RECORD_SCRIPT = `local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n`

export function createAuthFailureLimiter(options: { max: number; redis?: Redis | null; log: Logger; windowMs?: number }): AuthFailureLimiter {
  const { max, redis, log } = options
  const windowMs = options.windowMs ?? WINDOW_MS
  const memory = new MemoryCounters(windowMs)
  let lastWarning = 0
  const redisFailed = (err: unknown) => {
    // Once a minute at most: an outage would otherwise log on every request.
    if (Date.now() - lastWarning < 60_000) return
    lastWarning = Date.now()
    log.warn({ errCode: (err as { code?: string }).code ?? (err as Error).message }, 'auth failure counters: redis not answering; counting in this process')
  }

  return {
    async blockedFor(ip) {
      const key = addressKey(ip)
      if (redis) {
        try {
          const count = Number(await withTimeout(redis.get(NAMESPACE + key)))
          if (count < max) return 0
          const ttl = await withTimeout(redis.pttl(NAMESPACE + key))
          return Math.max(1, Math.ceil(ttl / 1000))
        } catch (err) {
          redisFailed(err)
        }
      }
      return memory.blockedFor(key, max)
    },
    async recordFailure(ip) {
      const key = addressKey(ip)
      if (redis) {
        try {
          await withTimeout(redis.eval(RECORD_SCRIPT, 1, NAMESPACE + key, String(windowMs)))
          return
        } catch (err) {
          redisFailed(err)
        }
      }
      memory.record(key)
    },
  }
}

class MemoryCounters {
  private readonly counts = new Map<string, { count: number; resetAt: number }>()
  constructor(private readonly windowMs: number) {}

  blockedFor(key: string, max: number): number {
    const entry = this.counts.get(key)
    if (!entry || entry.resetAt <= Date.now() || entry.count < max) return 0
    return Math.max(1, Math.ceil((entry.resetAt - Date.now()) / 1000))
  }

  record(key: string): void {
    const now = Date.now()
    const entry = this.counts.get(key)
    if (entry && entry.resetAt > now) {
      entry.count++
      return
    }
    if (this.counts.size >= MAX_MEMORY_ENTRIES) this.evict(now)
    this.counts.delete(key)
    this.counts.set(key, { count: 1, resetAt: now + this.windowMs })
  }

  private evict(now: number): void {
    for (const [key, entry] of this.counts) if (entry.resetAt <= now) this.counts.delete(key)
    // Still full: drop the oldest windows (a Map iterates in insertion order).
    for (const key of this.counts.keys()) {
      if (this.counts.size < MAX_MEMORY_ENTRIES) break
      this.counts.delete(key)
    }
  }
}

/**
 * The address a counter belongs to. IPv6 is counted per /64: one subscriber usually holds a whole /64, so counting
 * single addresses would give a guesser 2^64 budgets. An IPv4-mapped IPv6 address is its IPv4 address.
 */
export function addressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
  if (mapped) return mapped[1]!
  if (!isIPv6(ip)) return ip
  const [head = '', tail = ''] = ip.split('%')[0]!.split('::')
  const left = head ? head.split(':') : []
  const right = ip.includes('::') && tail ? tail.split(':') : []
  const groups = ip.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`
}

function withTimeout<T>(promise: Promise<T>): Promise<T> {
  // The command may still settle later (ioredis queues it while reconnecting): never leave its rejection unhandled.
  promise.catch(() => {})
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('redis timeout'), { code: 'ETIMEDOUT' })), REDIS_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The key an Authorization header presents, however it is spelled: the scheme in any case, any whitespace around
 * it and the key. Null for anything else. Everything that keys on a credential (rate limits, lookups) uses this,
 * so that `bearer  k` and `Bearer k` are one credential and one budget.
 */
export function credentialOf(header: string | string[] | undefined): string | null {
  if (typeof header !== 'string') return null
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header)
  return match ? match[1]! : null
}
