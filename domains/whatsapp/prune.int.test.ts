import { describe, expect, it } from 'vitest'
import { useTestDatabase } from '../../test/db.js'
import { count, drainJobs } from '../../test/whatsapp.js'

describe('pruning raw deliveries', () => {
  const db = useTestDatabase()

  it('deletes processed deliveries past retention, and keeps recent, failed, parked and quarantine-holding ones', async () => {
    const o = db.current.owner
    const insert = (status: string, processedDaysAgo: number | null) =>
      o<{ id: string }[]>`
        insert into whatsapp.webhook_deliveries (body_sha256, payload, status, processed_at)
        values (sha256(gen_random_uuid()::text::bytea), '{}', ${status}, ${processedDaysAgo === null ? null : o`now() - make_interval(days => ${processedDaysAgo})`})
        returning id::text`.then((r) => r[0]!.id)
    const old = await insert('processed', 30)
    const recent = await insert('processed', 1)
    const parked = await insert('parked', null)
    const failed = await insert('failed', null)
    const holding = await insert('processed', 30)
    await o`insert into whatsapp.quarantined_items (delivery_id, item_key, route_key, kind, reason, item) values (${holding}, 'k', 'r', 'message', 'unknown phone_number_id', '{}')`

    await o`select graphile_worker.add_job('whatsapp__prune_deliveries', '{}'::json)`
    await drainJobs(db.current)

    const left = (await o<{ id: string }[]>`select id::text from whatsapp.webhook_deliveries order by id`).map((r) => r.id)
    expect(left).toEqual([recent, parked, failed, holding])
    expect(left).not.toContain(old)
    expect(await count(db.current, 'whatsapp.quarantined_items')).toBe(1)
  })

  it('deletes raw unparseable deliveries past retention, and keeps recent ones', async () => {
    const o = db.current.owner
    const insert = (daysAgo: number) =>
      o<{ id: string }[]>`
        insert into whatsapp.unparseable_deliveries (body_sha256, signed_by, raw_body, reason, received_at)
        values (sha256(gen_random_uuid()::text::bytea), 'platform', '\\x00', 'a NUL character', now() - make_interval(days => ${daysAgo}))
        returning id::text`.then((r) => r[0]!.id)
    await insert(30)
    const recent = await insert(1)
    await o`select graphile_worker.add_job('whatsapp__prune_deliveries', '{}'::json)`
    await drainJobs(db.current)
    expect((await o<{ id: string }[]>`select id::text from whatsapp.unparseable_deliveries`).map((r) => r.id)).toEqual([recent])
  })
})
