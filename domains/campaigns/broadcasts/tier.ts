/**
 * Meta's messaging limit: how many unique people a number may start business-initiated conversations with (template
 * messages) in a rolling 24 hours. Meta reports it as `current_limit` / `messaging_limit_tier` (TIER_250, TIER_1K,
 * TIER_2K, TIER_10K, TIER_100K, TIER_UNLIMITED), stored in whatsapp.phone_numbers.messaging_limit by the
 * phone_number_quality_update webhooks; a number Meta has told us nothing about is treated as a new number (250).
 */
const TIERS: Record<string, number | null> = {
  TIER_50: 50,
  TIER_250: 250,
  TIER_1K: 1_000,
  TIER_2K: 2_000,
  TIER_10K: 10_000,
  TIER_100K: 100_000,
  TIER_UNLIMITED: null,
  UNLIMITED: null,
}

export const DEFAULT_TIER = 'TIER_250'

/** Unique recipients per rolling 24 h for a stored tier; null is unlimited. Unknown spellings fall back to 250. */
export function tierLimit(tier: string | null | undefined): number | null {
  const key = (tier ?? DEFAULT_TIER).toUpperCase()
  if (key in TIERS) return TIERS[key]!
  // max_daily_conversations may come as a plain number ("1000").
  const n = Number(key)
  return Number.isInteger(n) && n > 0 ? n : TIERS[DEFAULT_TIER]!
}

/** How many new recipients may be messaged now, given the unique recipients of the last 24 h. */
export const tierRemaining = (limit: number | null, usedLast24h: number) => (limit === null ? Number.POSITIVE_INFINITY : Math.max(0, limit - usedLast24h))
