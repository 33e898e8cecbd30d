import { setTenant, type Sql } from '../../lib/db.js'
import { assessmentAbandoned, recordPlatformEvents } from '../analytics/platform-events.js'
import * as q from './queries.js'

export interface AbandonOptions {
  /** Idle this long (no answer, back, profile or completion) and a session in progress is abandoned. */
  idleMs: number
  /** Sessions per transaction. */
  batch: number
  /** Batches until the run stops (the next run carries on). */
  budgetMs?: number
  /** The clock (tests). */
  now?: () => Date
}

export interface AbandonOutcome { abandoned: number; batches: number; incomplete: boolean }

/**
 * Cross-tenant: marks in-progress sessions idle for `idleMs` as abandoned, in batches of one transaction each. A
 * batch claims the idle sessions through the definer door (migration 0053: oldest first, locked, skipping sessions
 * an answer holds), then per tenant, under its row-level security, marks those still idle (status, abandoned_at) and
 * records one `assessment.abandoned` event per session (keyed by the session: a retried batch, or a session that is
 * abandoned again after coming back, adds none). A participant's next action reopens the session
 * (service.ts resumeIfAbandoned).
 */
export async function abandonIdleSessions(sql: Sql, o: AbandonOptions): Promise<AbandonOutcome> {
  const clock = o.now ?? (() => new Date())
  const started = Date.now()
  let abandoned = 0
  for (let batches = 1; ; batches++) {
    const { claimed, marked } = await sql.begin(async (tx) => {
      const now = clock()
      const idleBefore = new Date(now.getTime() - o.idleMs)
      const rows = await q.claimIdleSessions(tx, idleBefore, o.batch)
      const byTenant = new Map<string, string[]>()
      for (const r of rows) byTenant.set(r.tenantId, [...(byTenant.get(r.tenantId) ?? []), r.id])
      let marked = 0
      for (const tenantId of [...byTenant.keys()].sort()) {
        const [, sessions] = await Promise.all([setTenant(tx, tenantId), q.abandonSessions(tx, byTenant.get(tenantId)!, idleBefore)])
        await recordPlatformEvents(tx, sessions.map((s) => assessmentAbandoned({
          assessmentId: s.assessmentId, sessionId: s.id, channel: s.channel, leadId: s.leadId, linkId: s.linkId, partnerId: s.partnerId, at: now,
          questionId: s.currentQuestionId, progress: s.progress, idleSeconds: Math.round((now.getTime() - new Date(s.lastActivityAt).getTime()) / 1000),
        })))
        marked += sessions.length
      }
      return { claimed: rows.length, marked }
    })
    abandoned += marked
    if (claimed < o.batch) return { abandoned, batches, incomplete: false }
    if (Date.now() - started >= (o.budgetMs ?? 30_000)) return { abandoned, batches, incomplete: true }
  }
}
