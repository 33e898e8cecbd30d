import { describe, expect, it } from 'vitest'
import { timeLabels } from './grammar.js'

const at = (iso: string) => new Date(iso)

describe('timeLabels: every bucket of a time series, as the SQL labels them', () => {
  it('gives each day of a range in the zone, ends exclusive', () => {
    // 2026-11-02 00:00 to 2026-11-05 00:00 in São Paulo (UTC-3).
    expect(timeLabels('time:day', at('2026-11-02T03:00:00Z'), at('2026-11-05T03:00:00Z'), 'America/Sao_Paulo'))
      .toEqual(['2026-11-02', '2026-11-03', '2026-11-04'])
  })

  it('skips the hour a DST change skips and gives a repeated hour once', () => {
    // Lisbon springs forward on 2026-03-29 at 01:00 (to 02:00): the day has 23 hours and no 01:00.
    const spring = timeLabels('time:hour', at('2026-03-29T00:00:00Z'), at('2026-03-29T23:00:00Z'), 'Europe/Lisbon')
    expect(spring).toHaveLength(23)
    expect(spring).not.toContain('2026-03-29T01:00:00')
    // And falls back on 2026-10-25 at 02:00 (to 01:00): 25 hours of instants, 24 labels (01:00 twice, labelled once).
    const autumn = timeLabels('time:hour', at('2026-10-24T23:00:00Z'), at('2026-10-26T00:00:00Z'), 'Europe/Lisbon')
    expect(autumn).toHaveLength(24)
    expect(new Set(autumn).size).toBe(24)
  })

  it('finds every local hour of a half-hour zone', () => {
    expect(timeLabels('time:hour', at('2026-11-01T18:30:00Z'), at('2026-11-01T21:30:00Z'), 'Asia/Kolkata'))
      .toEqual(['2026-11-02T00:00:00', '2026-11-02T01:00:00', '2026-11-02T02:00:00'])
  })

  it('labels weeks by their Monday and months by their first day, from the one the range starts in', () => {
    // Wednesday 2026-11-04 to Tuesday 2026-11-17 (UTC).
    expect(timeLabels('time:week', at('2026-11-04T00:00:00Z'), at('2026-11-18T00:00:00Z'), 'UTC')).toEqual(['2026-11-02', '2026-11-09', '2026-11-16'])
    expect(timeLabels('time:month', at('2026-10-15T00:00:00Z'), at('2026-12-02T00:00:00Z'), 'UTC')).toEqual(['2026-10-01', '2026-11-01', '2026-12-01'])
  })

  it('gives nothing for an empty range and stops at the cap', () => {
    expect(timeLabels('time:day', at('2026-11-02T00:00:00Z'), at('2026-11-02T00:00:00Z'), 'UTC')).toEqual([])
    expect(timeLabels('time:hour', at('2026-01-01T00:00:00Z'), at('2026-12-01T00:00:00Z'), 'UTC', 50)).toHaveLength(50)
  })
})
