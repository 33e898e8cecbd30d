import { randomBytes, randomUUID } from 'node:crypto'
import { withTenant, type Sql, type Tx } from '../../lib/db.js'
import type { FormDefinition, FormFieldInput } from '../../domains/marketing/forms/schemas.js'
import { createForm } from '../../domains/marketing/forms/service.js'
import { FormDefinition as FormDefinitionSchema } from '../../domains/marketing/forms/schemas.js'
import type { FormView } from '../../domains/marketing/forms/views.js'
import type { TestTenant } from './tenants.js'

/** A lead form created as the API does; by default name + email + phone, open to https://clinic.example. */
export async function makeForm(
  sql: Sql,
  tenant: TestTenant,
  overrides: Partial<Omit<FormDefinition, 'fields'>> & { fields?: FormFieldInput[] } = {},
): Promise<FormView> {
  const definition = FormDefinitionSchema.parse({
    name: 'Book a visit',
    fields: [
      { name: 'name', label: 'Your name', type: 'text', required: true },
      { name: 'email', label: 'Email', type: 'email' },
      { name: 'phone', label: 'WhatsApp', type: 'phone' },
    ],
    allowedOrigins: ['https://clinic.example'],
    minFillSeconds: 0,
    ...overrides,
  })
  return createForm(sql, { tenantId: tenant.id, actor: 'test', requestId: null }, definition)
}

/** A lead row as any channel may leave it. */
export async function makeLead(
  tx: Tx,
  tenantId: string,
  overrides: { email?: string | null; phoneE164?: string | null; phoneKey?: string | null; waId?: string | null; name?: string | null; source?: string; status?: string; tags?: string[]; createdAt?: Date } = {},
): Promise<{ id: string }> {
  const [row] = await tx<{ id: string }[]>`
    insert into marketing.leads (tenant_id, email, phone_e164, phone_key, wa_id, name, source, status, tags, created_at, first_seen_at)
    values (${tenantId}, ${overrides.email ?? null}, ${overrides.phoneE164 ?? null}, ${overrides.phoneKey ?? overrides.phoneE164 ?? null},
            ${overrides.waId ?? null}, ${overrides.name ?? null}, ${overrides.source ?? 'web_form'}, ${overrides.status ?? 'new'},
            ${overrides.tags ?? []}::text[], ${overrides.createdAt ?? new Date()}, ${overrides.createdAt ?? new Date()})
    returning id`
  return row!
}

/** One row in each marketing table this domain adds (forms, submissions, consents, merges), for the RLS test. */
export async function populateMarketingRows(sql: Sql, tenant: TestTenant): Promise<void> {
  const form = await makeForm(sql, tenant, { consent: { required: false, text: 'Contact me on WhatsApp', policyVersion: 'v1' } })
  await withTenant(sql, tenant.id, async (tx) => {
    const survivor = await makeLead(tx, tenant.id, { email: `rows-${randomBytes(4).toString('hex')}@example.com` })
    const merged = await makeLead(tx, tenant.id, { name: 'Merged away' })
    await tx`update marketing.leads set merged_into = ${survivor.id} where id = ${merged.id}`
    const submissionId = randomUUID()
    await tx`
      insert into marketing.form_submissions (id, tenant_id, form_id, lead_id, answers, ip, user_agent)
      values (${submissionId}, ${tenant.id}, ${form.id}, ${survivor.id}, '{"name":"Ana"}', '203.0.113.7', 'test')`
    await tx`
      insert into marketing.consents (tenant_id, lead_id, channel, form_id, submission_id, granted, purpose, policy_version, occurred_at)
      values (${tenant.id}, ${survivor.id}, 'web_form', ${form.id}, ${submissionId}, true, 'Contact me on WhatsApp', 'v1', now())`
    await tx`
      insert into marketing.lead_merges (tenant_id, survivor_id, merged_id, reason, merged_snapshot, actor)
      values (${tenant.id}, ${survivor.id}, ${merged.id}, 'manual', '{}', 'test')`
    // A submission parked in the inbox (applied ones leave it).
    await tx`
      insert into marketing.form_submission_inbox (id, tenant_id, form_id, submission, ip, user_agent, received_at, status, attempts, last_error)
      values (${randomUUID()}, ${tenant.id}, ${form.id}, '{}', '203.0.113.7', 'test', now(), 'parked', 8, 'test')`
  })
}
