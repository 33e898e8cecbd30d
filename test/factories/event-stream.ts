import type { EventRow } from '../../domains/analytics/schemas.js'
import { seededRandom } from '../../lib/seeded-random.js'

/** A seeded generator (lib/seeded-random.ts): the same seed gives the same stream, so a failure can be replayed. */
export const prng = seededRandom

const NAMES = ['page', 'form.viewed', 'form.submitted', 'whatsapp.message_sent', 'bot.conversation_started', 'experiment.exposure']

export interface AbusiveStream {
  /** Sent first, in batches, duplicates among them. */
  onTime: EventRow[][]
  /** Sent after the first roll-up: events of buckets already rolled up, with more duplicates. */
  late: EventRow[][]
  /** Distinct events (by dedupe key): what raw and the rollups must both count. */
  unique: number
  sent: number
}

/**
 * `total` events as a producer would send them, `duplicateShare` of them copies of an earlier one (same dedupe key,
 * other properties and time, as a retry with a changed payload would be) and `lateShare` arriving only after their
 * bucket was rolled up. Times are spread over [from, to); dimension properties vary so buckets have many rows.
 */
export function abusiveStream(total: number, options: { from: Date; to: Date; duplicateShare?: number; lateShare?: number; batch?: number; seed?: number }): AbusiveStream {
  const rand = prng(options.seed ?? 42)
  const span = options.to.getTime() - options.from.getTime()
  const duplicates = Math.round(total * (options.duplicateShare ?? 0.2))
  const unique = total - duplicates
  const lateCount = Math.round(total * (options.lateShare ?? 0.1))
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
  const originals: EventRow[] = Array.from({ length: unique }, (_, i) => ({
    name: pick(NAMES),
    occurredAt: new Date(options.from.getTime() + Math.floor(rand() * span)),
    anonymousId: `anon-${Math.floor(rand() * unique / 4)}`,
    properties: { formId: `f${Math.floor(rand() * 5)}`, templateName: pick(['welcome', 'promo', undefined]), variationKey: pick(['a', 'b']) },
    dedupeKey: `abuse:${i}`,
    source: pick(['site', 'api', 'whatsapp']),
  }))
  const copy = (e: EventRow): EventRow => ({
    ...e, properties: { ...e.properties, retry: true }, occurredAt: new Date(options.from.getTime() + Math.floor(rand() * span)),
  })
  // The late ones are originals held back; duplicates copy any original, so some copies arrive before their first.
  const late = originals.slice(0, Math.min(lateCount, unique))
  const onTime = originals.slice(late.length)
  const sendOnTime = [...onTime]
  const sendLate = [...late]
  for (let i = 0; i < duplicates; i++) (rand() < 0.9 ? sendOnTime : sendLate).push(copy(pick(originals)))
  const shuffle = (xs: EventRow[]) => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
    }
    return xs
  }
  const size = options.batch ?? 1000
  const batches = (xs: EventRow[]) => Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size))
  return { onTime: batches(shuffle(sendOnTime)), late: batches(shuffle(sendLate)), unique, sent: total }
}
