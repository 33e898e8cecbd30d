import { randomBytes, randomUUID } from 'node:crypto'
import { sha256 } from '../../lib/crypto.js'
import { type Sql, withTenant } from '../../lib/db.js'
import type { TestTenant } from './tenants.js'

/** One row in each onboarding table, owned by the tenant (as once business_info has created it), for the RLS test. */
export async function populateOnboardingRows(sql: Sql, tenant: TestTenant): Promise<void> {
  await withTenant(sql, tenant.id, async (tx) => {
    const id = randomUUID()
    const tokenHash = sha256(randomBytes(32))
    await tx`
      insert into onboarding.sessions (id, tenant_id, token_hash, token_expires_at, steps_version, origin, created_by, completed_steps)
      values (${id}, ${tenant.id}, ${tokenHash}, now() + interval '7 days', 1, 'signup', 'test', '{"business_info": "2026-01-01T00:00:00Z"}')`
    await tx`insert into onboarding.step_activities (session_id, tenant_id, step, kind) values (${id}, ${tenant.id}, 'business_info', 'completed')`
    await tx`insert into onboarding.webhook_events (session_id, tenant_id, type, payload) values (${id}, ${tenant.id}, 'onboarding.nudge', '{}')`
    // A view is appended only through the definer function that looks the token up (migration 0038).
    await tx`select id from onboarding.view_session(${tokenHash}, ${tx.json({ 1: ['business_info', 'whatsapp_connect'] })}::jsonb)`
  })
}
