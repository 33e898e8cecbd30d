import { describe, expect, it } from 'vitest'
import { useTestDatabase } from '../../test/db.js'
import { committedVisibleIn, parseSnapshot } from './live.js'

describe('live feed cursors', () => {
  const db = useTestDatabase()

  it("decides visibility of committed transactions exactly as PostgreSQL's pg_visible_in_snapshot", async () => {
    const sql = db.current.owner
    // Transactions in progress while the snapshot is taken (they end up in its xip list), some committed before it.
    const xids: bigint[] = []
    const hold: (() => void)[] = []
    const open = () => new Promise<{ done: Promise<unknown> }>((resolve) => {
      const done = sql.begin(async (tx) => {
        const [row] = await tx<{ xid: string }[]>`select pg_current_xact_id()::text as xid`
        xids.push(BigInt(row!.xid))
        await new Promise<void>((release) => { hold.push(release); resolve({ done }) })
      })
    })
    const before = await sql<{ xid: string }[]>`select pg_current_xact_id()::text as xid`.then((r) => BigInt(r[0]!.xid))
    xids.push(before)
    const a = await open()
    const b = await open()
    // b commits while a (the lower id) is still in progress: a is in the snapshot's xip list, below its xmax.
    hold[1]!()
    await b.done
    const snapshot = await sql<{ snapshot: string }[]>`select pg_current_snapshot()::text as snapshot`.then((r) => r[0]!.snapshot)
    hold[0]!()
    await a.done
    const after = await sql<{ xid: string }[]>`select pg_current_xact_id()::text as xid`.then((r) => BigInt(r[0]!.xid))
    xids.push(after)

    const s = parseSnapshot(snapshot)
    expect(s.xip.size).toBeGreaterThan(0)
    const theirs = await sql<{ xid: string; visible: boolean }[]>`
      select x::text as xid, pg_visible_in_snapshot(x::xid8, ${snapshot}::pg_snapshot) as visible from unnest(${xids.map(String)}::text[]) x`
    expect(theirs.map((r) => committedVisibleIn(BigInt(r.xid), s))).toEqual(theirs.map((r) => r.visible))
    // The cases are all there: committed before (visible), in progress at the time (not), committed after a lower
    // id began (visible), begun after (not).
    expect(theirs.map((r) => r.visible)).toEqual([true, false, true, false])
  })
})
