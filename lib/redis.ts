import { Redis } from 'ioredis'

/** Redis is optional: with REDIS_URL, rate limits are shared by every instance; without it, each process keeps its own. */
export function connectRedis(url: string | undefined): Redis | null {
  if (!url) return null
  return new Redis(url, {
    // Rate limiting must not hang a request when Redis is slow; @fastify/rate-limit fails open on errors.
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    lazyConnect: false,
  })
}
