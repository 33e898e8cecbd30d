import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { useTestDatabase } from '../../test/db.js'
import { broadcastQueueName, BROADCAST_QUEUES, LEGACY_BROADCAST_QUEUE_PATTERN } from '../campaigns/broadcasts/queries.js'
import { BOT_QUEUES, botQueueName, botQueueNameSql, LEGACY_BOT_QUEUE_PATTERN } from './queries.js'

/**
 * The bot's queue is named in two places: enqueueRunBot (TypeScript) and the inbound hook's set-based add_jobs (SQL).
 * If they disagreed, one conversation's jobs would sit in two queues and could run at once; if the hash changed
 * between versions, the same would happen during a rolling deploy. So: both agree over many ids, and known ids keep
 * their queues.
 */
describe('shared hashed job queues', () => {
  const db = useTestDatabase()

  it('names the same bot queue in SQL as in TypeScript for every conversation id', async () => {
    const ids = Array.from({ length: 10_000 }, () => randomUUID())
    const rows = await db.current.sql<{ id: string; queue: string }[]>`
      select u.id::text as id, ${botQueueNameSql(db.current.sql, db.current.sql`u.id`)} as queue from unnest(${ids}::uuid[]) as u(id)`
    expect(rows).toHaveLength(ids.length)
    const mismatched = rows.filter((r) => r.queue !== botQueueName(r.id))
    expect(mismatched).toEqual([])

    // Spread over all the queues, about evenly; never a name the legacy sweep would take.
    const perQueue = new Map<string, number>()
    for (const r of rows) perQueue.set(r.queue, (perQueue.get(r.queue) ?? 0) + 1)
    expect([...perQueue.keys()].sort()).toEqual(Array.from({ length: BOT_QUEUES }, (_, i) => `bot:${i}`).sort())
    for (const n of perQueue.values()) expect(n).toBeGreaterThan((ids.length / BOT_QUEUES) * 0.6)
    for (const r of rows) expect(r.queue).not.toMatch(new RegExp(LEGACY_BOT_QUEUE_PATTERN))
  })

  it('keeps known ids in the queues they had, whatever the case of their text (a new hash would split a conversation across a deploy)', () => {
    expect(botQueueName('00000000-0000-0000-0000-000000000000')).toBe('bot:18')
    expect(botQueueName('9b2f7c1e-3d4a-4f5b-8c6d-7e8f9a0b1c2d')).toBe('bot:43')
    expect(botQueueName('9B2F7C1E-3D4A-4F5B-8C6D-7E8F9A0B1C2D')).toBe('bot:43')
    expect(broadcastQueueName('9b2f7c1e-3d4a-4f5b-8c6d-7e8f9a0b1c2d')).toBe('broadcast:235')
    const id = randomUUID()
    expect(broadcastQueueName(id)).toMatch(new RegExp(`^broadcast:([0-9]|[1-9][0-9]+)$`))
    expect(Number(broadcastQueueName(id).split(':')[1])).toBeLessThan(BROADCAST_QUEUES)
    expect(broadcastQueueName(id)).not.toMatch(new RegExp(LEGACY_BROADCAST_QUEUE_PATTERN))
    expect(`broadcast:${id}`).toMatch(new RegExp(LEGACY_BROADCAST_QUEUE_PATTERN))
    expect(`bot:${id}`).toMatch(new RegExp(LEGACY_BOT_QUEUE_PATTERN))
  })
})
