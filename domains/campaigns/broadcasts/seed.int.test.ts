import { describe, expect, it } from 'vitest'
import { runSeeds } from '../../../db/seed.js'
import { DEMO_TENANT_ID } from '../../../db/demo-history.js'
import { useTestDatabase } from '../../../test/db.js'
import { getBroadcast } from './service.js'

describe('the demo broadcast seed', () => {
  const db = useTestDatabase()

  it('leaves a finished broadcast with realistic outcomes, and changes nothing when run again', async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const first = await getBroadcast(db.current.sql, DEMO_TENANT_ID, '00000000-0000-4000-8000-0000000000d1')
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const second = await getBroadcast(db.current.sql, DEMO_TENANT_ID, '00000000-0000-4000-8000-0000000000d1')
    expect(second.stats).toEqual(first.stats)
    expect(first).toMatchObject({ status: 'completed', allowedTransitions: [], template: { name: 'december_checkup' } })
    // 60 patients: 3 opted out and 2 nameless skipped; of 55 sent, 4 failed (131026), 7 replied, the rest read/delivered/sent.
    expect(first.stats).toMatchObject({ recipients: 60, skipped: 5, skippedBy: { opted_out: 3, missing_parameter: 2 }, failed: 4, failedBy: { 131026: 4 }, replied: 7, pending: 0, queued: 0 })
    expect(first.stats!.read + first.stats!.delivered + first.stats!.sent + first.stats!.replied).toBe(51)
  }, 180_000)
})
