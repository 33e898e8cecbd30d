import type { Sql } from '../../lib/db.js'
import * as q from './queries.js'
import { stepsOf, type StepName } from './steps.js'

export interface FunnelStep {
  step: StepName
  /** Sessions for which this step became current (every step before it completed). */
  reached: number
  completed: number
  /** Reached and not completed (still in progress, or given up). */
  dropOff: number
  dropOffRate: number
  /** Sessions abandoned (now) while this was their current step. */
  abandonedHere: number
  /** Median time from the step becoming current to its completion, over the sessions that completed it. */
  medianSeconds: number | null
}

export interface Funnel {
  from: string
  to: string
  started: number
  completed: number
  inProgress: number
  abandoned: number
  /** Sessions ever abandoned (now, or abandoned then resumed), over started. */
  abandonmentRate: number
  /** Of the sessions ever abandoned, the share that came back. */
  resumeRate: number
  steps: FunnelStep[]
}

const median = (values: number[]): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const rate = (n: number, d: number) => (d === 0 ? 0 : Math.round((n / d) * 10000) / 10000)

/** The onboarding funnel of the sessions started in [from, to), across tenants (operators only). */
export async function onboardingFunnel(sql: Sql, from: Date, to: Date): Promise<Funnel> {
  const rows = await q.funnelRows(sql, from, to)
  const steps = stepsOf(1).map((s) => s.name)
  const out: FunnelStep[] = steps.map((step) => ({ step, reached: 0, completed: 0, dropOff: 0, dropOffRate: 0, abandonedHere: 0, medianSeconds: null }))
  const durations: number[][] = steps.map(() => [])
  for (const row of rows) {
    let becameCurrent = row.createdAt.getTime()
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!
      const doneAt = row.completedSteps[step]
      out[i]!.reached += 1
      if (!doneAt) {
        if (row.status === 'abandoned' && row.abandonedStep === step) out[i]!.abandonedHere += 1
        break
      }
      out[i]!.completed += 1
      const at = new Date(doneAt).getTime()
      durations[i]!.push(Math.max(0, (at - becameCurrent) / 1000))
      becameCurrent = at
    }
  }
  for (let i = 0; i < out.length; i++) {
    const s = out[i]!
    s.dropOff = s.reached - s.completed
    s.dropOffRate = rate(s.dropOff, s.reached)
    const m = median(durations[i]!)
    s.medianSeconds = m === null ? null : Math.round(m * 10) / 10
  }
  const everAbandoned = rows.filter((r) => r.status === 'abandoned' || r.resumedCount > 0).length
  const resumed = rows.filter((r) => r.resumedCount > 0).length
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    started: rows.length,
    completed: rows.filter((r) => r.status === 'completed').length,
    inProgress: rows.filter((r) => r.status === 'in_progress').length,
    abandoned: rows.filter((r) => r.status === 'abandoned').length,
    abandonmentRate: rate(everAbandoned, rows.length),
    resumeRate: rate(resumed, everAbandoned),
    steps: out,
  }
}
