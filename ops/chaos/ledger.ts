/**
 * The bookkeeping of a chaos phase, kept pure so it can be tested on its own: what the load generator was told
 * (one outcome per item sent), what the database holds afterwards (which items are stored, how many times each was
 * applied), and the verdict. An item is named by a key unique to it (a wamid, an email), so counting is exact.
 */

export type Channel = 'whatsapp' | 'forms'
export const CHANNELS: Channel[] = ['whatsapp', 'forms']

export interface Outcome {
  channel: Channel
  /** Unique per item: the message's wamid, the submission's email. Poisoned items have keys too (never applied). */
  key: string
  /** What was wrong with it on purpose ('nul', 'lone-surrogate', 'malformed-json', …), null for a good item. */
  poison: string | null
  /** The HTTP status, or null when no answer came (refused connection, reset, timeout). */
  status: number | null
  error: string | null
}

export interface Observed {
  /** Keys of items the database holds in any form (the raw inbox row, or the applied result). */
  stored: Set<string>
  /** Key → how many times it was applied (e.g. max of messages and interactions per wamid); absent = not applied. */
  applied: Map<string, number>
}

export interface Tally {
  channel: Channel
  sent: number
  acknowledged: number
  refused: number
  noAnswer: number
  stored: number
  processed: number
  lost: number
  duplicated: number
  /** Applied although the client never got a 2xx (a timeout or a cut connection after the commit): not a loss. */
  appliedUnacknowledged: number
  poison: { sent: number; statuses: Record<string, number> }
  /** A few lost keys, for the report. */
  lostKeys: string[]
}

const ok = (o: Outcome) => o.status !== null && o.status >= 200 && o.status < 300
const statusLabel = (o: Outcome) => (o.status === null ? 'no answer' : String(o.status))

export function tally(channel: Channel, outcomes: Outcome[], observed: Observed): Tally {
  const mine = outcomes.filter((o) => o.channel === channel)
  const good = mine.filter((o) => o.poison === null)
  const poisoned = mine.filter((o) => o.poison !== null)
  const acked = good.filter(ok)
  const lost = acked.filter((o) => !observed.applied.has(o.key))
  const statuses: Record<string, number> = {}
  for (const o of poisoned) statuses[statusLabel(o)] = (statuses[statusLabel(o)] ?? 0) + 1
  return {
    channel,
    sent: good.length,
    acknowledged: acked.length,
    refused: good.filter((o) => o.status !== null && !ok(o)).length,
    noAnswer: good.filter((o) => o.status === null).length,
    stored: acked.filter((o) => observed.stored.has(o.key)).length,
    processed: acked.filter((o) => observed.applied.has(o.key)).length,
    lost: lost.length,
    duplicated: good.filter((o) => (observed.applied.get(o.key) ?? 0) > 1).length,
    appliedUnacknowledged: good.filter((o) => !ok(o) && observed.applied.has(o.key)).length,
    poison: { sent: poisoned.length, statuses },
    lostKeys: lost.slice(0, 3).map((o) => o.key),
  }
}

export interface ProcessReport {
  name: string
  /** Exits nobody asked for, with when they happened. */
  crashes: { code: number | null; signal: string | null; at: number; lastWords: string }[]
  restarts: number
}

export interface PhaseReport {
  fault: string
  title: string
  tallies: Tally[]
  processes: ProcessReport[]
  settled: boolean
  settleMs: number
  /** Whether good items sent beside poisoned ones must all be acknowledged (fault c: nothing else is wrong). */
  neighboursMustPass: boolean
  notes: string[]
}

/** Every reason the phase failed; empty means it passed. */
export function judge(phase: PhaseReport): string[] {
  const reasons: string[] = []
  for (const t of phase.tallies) {
    if (t.lost > 0) reasons.push(`${t.channel}: ${t.lost} acknowledged item(s) never applied${phase.settled ? '' : ' within the recovery timeout'} (e.g. ${t.lostKeys.join(', ')})`)
    if (t.duplicated > 0) reasons.push(`${t.channel}: ${t.duplicated} item(s) applied more than once`)
    if (phase.neighboursMustPass && t.refused + t.noAnswer > 0) {
      reasons.push(`${t.channel}: ${t.refused + t.noAnswer} good item(s) sent beside poisoned ones were not acknowledged`)
    }
    const poison5xx = Object.entries(t.poison.statuses).filter(([s]) => /^5\d\d$/.test(s)).reduce((n, [, c]) => n + c, 0)
    if (poison5xx > 0) reasons.push(`${t.channel}: ${poison5xx} poisoned item(s) answered 5xx (a sender retries those forever)`)
    if (t.sent > 0 && t.acknowledged === 0) reasons.push(`${t.channel}: nothing was acknowledged, so nothing was proven`)
  }
  for (const p of phase.processes) {
    for (const c of p.crashes) reasons.push(`${p.name} crashed at +${(c.at / 1000).toFixed(1)} s (exit code ${c.code}, signal ${c.signal})`)
  }
  return reasons
}

/** A fixed-width table: one row per channel. */
export function formatTallies(tallies: Tally[]): string {
  const header = ['', 'sent', 'acked', 'refused', 'no answer', 'stored', 'processed', 'lost', 'duplicated', 'applied w/o ack']
  const rows = tallies.map((t) => [t.channel, t.sent, t.acknowledged, t.refused, t.noAnswer, t.stored, t.processed, t.lost, t.duplicated, t.appliedUnacknowledged].map(String))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(header), ...rows.map(line)].join('\n')
}

export function formatPoison(tallies: Tally[]): string[] {
  return tallies
    .filter((t) => t.poison.sent > 0)
    .map((t) => `poisoned ${t.channel}: ${t.poison.sent} sent, answered ${Object.entries(t.poison.statuses).map(([s, n]) => `${s}×${n}`).join(', ')}`)
}
