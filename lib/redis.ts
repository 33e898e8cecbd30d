import { Redis } from 'ioredis'

interface WarnLogger {
  warn: (obj: object, msg: string) => void
}

/** How often a Redis that stays down is reported: once a minute is enough to see it, not enough to flood. */
const REPORT_EVERY_MS = 60_000

/** Redis is optional: with REDIS_URL, rate limits are shared by every instance; without it, each process keeps its own. */
export function connectRedis(url: string | undefined, log?: WarnLogger): Redis | null {
  if (!url) return null
  const redis = new Redis(url, {
    // Rate limiting must not hang a request when Redis is slow; the limiters fail open (or count locally) on errors.
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    lazyConnect: false,
  })
  // Without a listener ioredis prints "Unhandled error event" on every reconnect attempt while Redis is away.
  // The client reconnects by itself; we only say so, at most once a minute, without the URL (it may hold a password).
  let reportedAt = 0
  redis.on('error', (err: Error & { code?: string }) => {
    if (Date.now() - reportedAt < REPORT_EVERY_MS) return
    reportedAt = Date.now()
    log?.warn({ code: err.code }, 'redis unavailable; rate limits fall back to per-process counting until it returns')
  })
  return redis
}
