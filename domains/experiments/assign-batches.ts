import type { Sql } from '../../lib/db.js'
import { GroupCommit } from '../../lib/group-commit.js'
import * as q from './queries.js'

interface UnitRead { tenantId: string; leadId: string | null; anonymousId: string | null }
interface Store { tenantId: string; rows: q.AssignmentInsert[] }

// Waiting requests go in one statement at most this many at a time; the statement is an index probe (read) or an
// insert of about one row per running experiment (write) per member.
const MAX_BATCH = 200
// A flush slower than this answers 503 (the route's own timeout is HTTP_REQUEST_TIMEOUT_MS, 15 s).
const TIMEOUT_MS = 10_000

const byTenant = <T extends { tenantId: string }>(items: T[]) => {
  const groups = new Map<string, number[]>()
  items.forEach((item, i) => {
    const g = groups.get(item.tenantId)
    if (g) g.push(i)
    else groups.set(item.tenantId, [i])
  })
  return groups
}

/**
 * The assign route's two statements, shared by the requests that arrive together (lib/group-commit.ts): one
 * experiments.unit_assignments call per waiting unit in one statement, and the new assignments of every waiting
 * request in one experiments.insert_assignments call (a plain insert into experiments.assignments: its triggers fire;
 * on conflict the first row stays). A request is answered when its own statement has committed; a batch that fails
 * is retried member by member, so one bad member fails alone. Under load this turns N round trips and N commits into
 * one; alone, a request waits for nothing.
 */
export class AssignBatches {
  private readonly reads: GroupCommit<UnitRead, q.UnitAssignments>
  private readonly writes: GroupCommit<Store, Map<string, Date>>

  constructor(sql: Sql) {
    this.reads = new GroupCommit<UnitRead, q.UnitAssignments>(async (items) => {
      const out: q.UnitAssignments[] = new Array(items.length)
      await Promise.all([...byTenant(items)].map(async ([tenantId, idx]) => {
        const rows = await q.unitAssignmentsMany(sql, tenantId, idx.map((i) => ({ leadId: items[i]!.leadId, anonymousId: items[i]!.anonymousId })))
        rows.forEach((u, k) => { out[idx[k]!] = u })
      }))
      return out
    }, { noun: 'assignment read', maxBatch: MAX_BATCH, maxConcurrentFlushes: 2, timeoutMs: TIMEOUT_MS })

    this.writes = new GroupCommit<Store, Map<string, Date>>(async (items) => {
      const out: Map<string, Date>[] = items.map(() => new Map())
      await Promise.all([...byTenant(items)].map(async ([tenantId, idx]) => {
        const inserted = await q.insertAssignments(sql, tenantId, idx.flatMap((i) => items[i]!.rows))
        // Two members may name the same unit (two requests for one lead at once): the first to ask gets the new row.
        const fresh = new Map<string, Date[]>()
        for (const r of inserted) {
          const k = `${r.experimentId}:${r.unitId}`
          fresh.set(k, [...(fresh.get(k) ?? []), r.assignedAt])
        }
        for (const i of idx) {
          for (const row of items[i]!.rows) {
            const at = fresh.get(`${row.experiment_id}:${row.unit_id}`)?.shift()
            if (at) out[i]!.set(row.experiment_id, at)
          }
        }
      }))
      return out
    }, { noun: 'assignment', maxBatch: MAX_BATCH, timeoutMs: TIMEOUT_MS })
  }

  readUnit(tenantId: string, leadId: string | null, anonymousId: string | null): Promise<q.UnitAssignments> {
    return this.reads.add({ tenantId, leadId, anonymousId })
  }

  /** Stores the rows; resolves once committed with the experiments whose row is new (their assigned_at). */
  store(tenantId: string, rows: q.AssignmentInsert[]): Promise<Map<string, Date>> {
    return this.writes.add({ tenantId, rows })
  }
}
