import { randomInt, randomUUID } from 'node:crypto'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Sql, withTenant } from '../../../lib/db.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeForm, makeLead } from '../../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../../test/factories/tenants.js'
import { count } from '../../../test/whatsapp.js'
import { processSubmissions } from '../forms/process-submissions.js'
import { storeInboxBatches } from '../forms/queries.js'
import type { FormView } from '../forms/views.js'
import { phoneMatchKey } from './identity/phone.js'

interface Person {
  email?: string
  phone?: string
  name?: string
}

describe('a batch of form submissions resolves its people set-based: one person, one lead', () => {
  const db = useTestDatabase()
  let tenant: TestTenant
  let form: FormView
  beforeAll(async () => {
    tenant = await makeTenant(db.current.sql, { defaultCountry: 'BR' })
    form = await makeForm(db.current.sql, tenant, { consent: { required: true, text: 'Contact me', policyVersion: 'v1' } })
    // A database-level failure for one submission: the kind of error processing cannot fix by itself.
    await db.current.owner.unsafe(`
      create function public.refuse_poison() returns trigger language plpgsql as $$
      begin raise exception 'poison submission %', new.id; end $$;
      create trigger refuse_poison before insert on marketing.form_submissions for each row
        when (new.answers->>'name' like 'POISON%') execute function public.refuse_poison();`)
  })

  const unique = () => `${Date.now()}${randomInt(1e6)}`
  const newPhone = () => `+55119${randomInt(1000, 9999)}${randomInt(1000, 9999)}`

  /** Stores one group commit's worth of submissions (in this order, a millisecond apart) and returns their ids. */
  const stage = async (people: Person[]) => {
    const start = Date.now() - 60_000
    const rows = people.map((p, i) => ({
      id: randomUUID(), formId: form.id, ip: '203.0.113.7', userAgent: 'test', referer: null, requestId: `req-${i}`, receivedAt: new Date(start + i),
      submission: {
        lead: { email: p.email ?? null, phoneE164: p.phone ?? null, name: p.name ?? null, company: null },
        answers: { name: p.name ?? 'Someone', ...(p.email ? { email: p.email } : {}), ...(p.phone ? { phone: p.phone } : {}) },
        customFields: {}, utm: { utm_source: 'test' }, pageUrl: null, referrer: null, fillSeconds: 12,
        consent: { granted: true, purpose: 'Contact me', policyVersion: 'v1', policyUrl: null },
      },
    }))
    await storeInboxBatches(db.current.sql, [{ tenantId: tenant.id, rows }])
    return rows.map((r) => r.id)
  }
  const leadOf = async (submissionId: string) =>
    (await db.current.owner<{ leadId: string }[]>`select lead_id from marketing.form_submissions where id = ${submissionId}`)[0]?.leadId
  const liveLeads = async (p: Person) =>
    (await db.current.owner<{ id: string }[]>`
      select id from marketing.leads
       where tenant_id = ${tenant.id} and merged_into is null
         and (email = ${p.email ?? null} or phone_key = ${p.phone ? phoneMatchKey(p.phone) : null})`).map((r) => r.id)
  const interaction = async (submissionId: string) =>
    (await db.current.owner<{ leadId: string; details: { leadCreated: boolean; mergedLeadIds: string[] } }[]>`
      select lead_id, details from marketing.lead_interactions where dedupe_key = ${`form:sub:${submissionId}`}`)[0]
  const effects = async (id: string) => ({
    submissions: await count(db.current, 'marketing.form_submissions', `id = '${id}'`),
    interactions: await count(db.current, 'marketing.lead_interactions', `dedupe_key = 'form:sub:${id}'`),
    events: await count(db.current, 'analytics.events', `dedupe_key = 'form:sub:${id}'`),
    consents: await count(db.current, 'marketing.consents', `submission_id = '${id}'`),
    inbox: await count(db.current, 'marketing.form_submission_inbox', `id = '${id}'`),
  })
  const applied = { submissions: 1, interactions: 1, events: 1, consents: 1, inbox: 0 }

  it('makes one lead of the same new email five times in one batch, created by the first', async () => {
    const email = `five${unique()}@example.com`
    const ids = await stage(Array.from({ length: 5 }, (_, i) => ({ email, name: `Name ${i}` })))
    const result = await processSubmissions(db.current.sql, tenant.id, ids)
    expect(result).toEqual({ processed: ids, failed: [] })
    const leadIds = await Promise.all(ids.map(leadOf))
    expect(new Set(leadIds).size).toBe(1)
    expect(await liveLeads({ email })).toEqual([leadIds[0]])
    expect((await Promise.all(ids.map(interaction))).map((i) => i!.details.leadCreated)).toEqual([true, false, false, false, false])
    // The name given first stays.
    expect(await db.current.owner`select name from marketing.leads where id = ${leadIds[0]!}`).toEqual([{ name: 'Name 0' }])
    for (const id of ids) expect(await effects(id)).toEqual(applied)
  })

  it('fills a returning person with the new phone they give, and knows them by it in the same batch', async () => {
    const email = `back${unique()}@example.com`
    const phone = newPhone()
    const known = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { email, name: 'Ana' }))
    const ids = await stage([{ email, phone, name: 'Someone else' }, { phone }])
    expect(await processSubmissions(db.current.sql, tenant.id, ids)).toEqual({ processed: ids, failed: [] })
    expect(await Promise.all(ids.map(leadOf))).toEqual([known.id, known.id])
    expect(await db.current.owner`select name, phone_e164, phone_key from marketing.leads where id = ${known.id}`).toEqual([
      { name: 'Ana', phoneE164: phone, phoneKey: phoneMatchKey(phone) },
    ])
    expect(await liveLeads({ email, phone })).toEqual([known.id])
    expect((await interaction(ids[0]!))!.details.leadCreated).toBe(false)
  })

  it('merges an email lead and a phone lead that two submissions of the batch prove one person, newer into older', async () => {
    const email = `join${unique()}@example.com`
    const phone = newPhone()
    const emailLead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { email, createdAt: new Date(Date.now() - 3_600_000) }))
    const phoneLead = await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { phoneE164: phone, phoneKey: phoneMatchKey(phone) }))
    const other = `other${unique()}@example.com`
    // The first only updates the email lead; the second names both keys; the third comes after the merge.
    const ids = await stage([{ email, name: 'Bia' }, { email, phone }, { phone }, { email: other }])
    expect(await processSubmissions(db.current.sql, tenant.id, ids)).toEqual({ processed: ids, failed: [] })
    expect(await Promise.all(ids.slice(0, 3).map(leadOf))).toEqual([emailLead.id, emailLead.id, emailLead.id])
    expect(await liveLeads({ email, phone })).toEqual([emailLead.id])
    expect(await db.current.owner`select merged_into from marketing.leads where id = ${phoneLead.id}`).toEqual([{ mergedInto: emailLead.id }])
    expect(await db.current.owner`select survivor_id, merged_id, reason, actor, request_id from marketing.lead_merges where merged_id = ${phoneLead.id}`).toEqual([
      { survivorId: emailLead.id, mergedId: phoneLead.id, reason: 'form_submission', actor: `form:${form.id}`, requestId: 'req-1' },
    ])
    expect((await interaction(ids[1]!))!.details.mergedLeadIds).toEqual([phoneLead.id])
    expect(await db.current.owner`select name, email, phone_key from marketing.leads where id = ${emailLead.id}`).toEqual([{ name: 'Bia', email, phoneKey: phoneMatchKey(phone) }])
    // The person unrelated to the merge was resolved with the batch as usual.
    expect(await liveLeads({ email: other })).toEqual([await leadOf(ids[3]!)])
  })

  it('merges two people first seen in the same batch when a later submission there names both', async () => {
    const email = `pair${unique()}@example.com`
    const phone = newPhone()
    const ids = await stage([{ email }, { phone }, { email, phone }, { email }])
    expect(await processSubmissions(db.current.sql, tenant.id, ids)).toEqual({ processed: ids, failed: [] })
    const leadIds = await Promise.all(ids.map(leadOf))
    const [survivor] = await liveLeads({ email, phone })
    expect(await liveLeads({ email, phone })).toHaveLength(1)
    // Every submission, also those resolved before the merge, points at the lead that survived it.
    expect(leadIds).toEqual([survivor, survivor, survivor, survivor])
    expect(await count(db.current, 'marketing.lead_merges', `survivor_id = '${survivor}'`)).toBe(1)
  })

  it('applies every neighbour of a poisoned submission, which alone fails and stays in the inbox', async () => {
    const email = `near${unique()}@example.com`
    const people: Person[] = [
      { email }, { email: `a${unique()}@example.com` }, { email, name: 'POISON three' }, { email: `b${unique()}@example.com` }, { email, phone: newPhone() },
      { email: `c${unique()}@example.com` }, { phone: newPhone() },
    ]
    const ids = await stage(people)
    const bad = ids[2]!
    const result = await processSubmissions(db.current.sql, tenant.id, ids)
    expect(result.processed.sort()).toEqual(ids.filter((id) => id !== bad).sort())
    expect(result.failed).toEqual([{ submissionId: bad, error: expect.stringContaining(`poison submission ${bad}`) }])
    for (const id of ids) expect(await effects(id)).toEqual(id === bad ? { submissions: 0, interactions: 0, events: 0, consents: 0, inbox: 1 } : applied)
    expect(await liveLeads({ email })).toHaveLength(1)
  })

  it('resolves two overlapping batches at once without a duplicate lead or a failure', async () => {
    for (let round = 0; round < 4; round++) {
      const people = Array.from({ length: 24 }, () => ({ email: `both${unique()}@example.com`, phone: newPhone() }))
      // Some of them are already two leads (one by email, one by phone): both batches prove it and merge them.
      await withTenant(db.current.sql, tenant.id, async (tx) => {
        for (const p of people.filter((_, i) => i % 4 === 0)) {
          await makeLead(tx, tenant.id, { email: p.email, createdAt: new Date(Date.now() - 60_000) })
          await makeLead(tx, tenant.id, { phoneE164: p.phone, phoneKey: phoneMatchKey(p.phone) })
        }
      })
      // One batch knows people by one key or the other, the other by both, in the opposite order.
      const a = await stage(people.map((p, i) => (i % 2 ? { email: p.email } : { phone: p.phone })))
      const b = await stage([...people].reverse().map((p) => ({ email: p.email, phone: p.phone })))
      const results = await Promise.all([processSubmissions(db.current.sql, tenant.id, a), processSubmissions(db.current.sql, tenant.id, b)])
      expect(results.flatMap((r) => r.failed)).toEqual([])
      expect(results.flatMap((r) => r.processed).sort()).toEqual([...a, ...b].sort())
      for (const p of people) {
        const live = await liveLeads(p)
        expect(live, 'one live lead per person').toHaveLength(1)
        const [held] = await db.current.owner`select email, phone_key from marketing.leads where id = ${live[0]!}`
        expect(held).toEqual({ email: p.email, phoneKey: phoneMatchKey(p.phone) })
      }
      const submissionLeads = new Set((await Promise.all([...a, ...b].map(leadOf))))
      expect(submissionLeads.size).toBe(people.length)
    }
  })

  it('takes the lead of a writer that claimed the key between the read and the insert, instead of a second one', async () => {
    const email = `race${unique()}@example.com`
    // Alone in its batch, so that only a retry (never a split) can save it.
    const ids = await stage([{ email, name: 'Late' }])
    // Another writer that takes no advisory lock (as WhatsApp ingestion) inserts the person and has not committed.
    const other = await db.current.sql.reserve()
    try {
      await other`begin`
      await other`select set_config('app.tenant_id', ${tenant.id}, true)`
      const [theirs] = await other<{ id: string }[]>`insert into marketing.leads (tenant_id, email, source) values (${tenant.id}, ${email}, 'other') returning id`
      const processing = processSubmissions(db.current.sql, tenant.id, ids)
      // The batch read no lead for the email, so it inserts one: that insert waits on the other writer's key.
      for (let i = 0; i < 500; i++) {
        const waiting = await db.current.owner`
          select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%insert into marketing.leads%jsonb_to_recordset%'`
        if (waiting.length > 0) break
        await new Promise((r) => setTimeout(r, 20))
      }
      await other`commit`
      expect(await processing).toEqual({ processed: ids, failed: [] })
      expect(await leadOf(ids[0]!)).toBe(theirs!.id)
      expect(await liveLeads({ email })).toEqual([theirs!.id])
      expect(await db.current.owner`select name from marketing.leads where id = ${theirs!.id}`).toEqual([{ name: 'Late' }])
    } finally {
      other.release()
    }
  })

  describe('round trips', () => {
    let counted: Sql
    let statements = 0
    beforeAll(async () => {
      counted = postgres(db.current.runtimeUrl, {
        max: 2, transform: { column: { from: postgres.toCamel, to: postgres.fromCamel }, undefined: null }, onnotice: () => {},
        debug: () => { statements++ },
      }) as unknown as Sql
      // Connecting reads the server's types once: not part of any batch.
      await Promise.all([counted`select 1`, counted`select 1`])
    })
    afterAll(() => counted.end({ timeout: 5 }))

    const statementsFor = async (people: Person[]) => {
      const ids = await stage(people)
      statements = 0
      const result = await processSubmissions(counted, tenant.id, ids)
      expect(result.failed).toEqual([])
      return statements
    }

    it('applies a batch in as many statements for 40 people as for 4, new or returning', async () => {
      const newPeople = (n: number) => Array.from({ length: n }, () => ({ email: `rt${unique()}@example.com`, phone: newPhone() }))
      const few = newPeople(4)
      const many = newPeople(40)
      const forFew = await statementsFor(few)
      expect(await statementsFor(many)).toBe(forFew)
      // Seen again, with a name to fill.
      expect(await statementsFor(many.map((p) => ({ ...p, name: 'Back' })))).toBe(await statementsFor(few.map((p) => ({ ...p, name: 'Back' }))))
      // begin, tenant, inbox rows, the suppression screen (privacy), key locks, known leads, new leads, their
      // lead.created events, fills, submissions, consents, interactions, events, inbox delete, commit (statements with
      // no rows are not sent), in six round trips.
      expect(forFew).toBeLessThanOrEqual(14)
    })
  })
})
