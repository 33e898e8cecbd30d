import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { useTestDatabase } from '../../../test/db.js'
import { makeForm } from '../../../test/factories/marketing-rows.js'
import { makeTenant } from '../../../test/factories/tenants.js'
import { drainJobs } from '../../../test/whatsapp.js'
import { SubmissionInbox, type PendingSubmission } from './inbox.js'

/**
 * Defence in depth behind the boundary checks (lib/http/safe-json.ts): a submission that reaches the inbox with
 * text PostgreSQL cannot store makes its group commit fail; only that one submission may fail with it.
 */
describe('submission inbox with a poisoned submission among others', () => {
  const db = useTestDatabase()
  let forms: { tenantId: string; formId: string }[]
  beforeAll(async () => {
    forms = []
    for (let i = 0; i < 4; i++) {
      const tenant = await makeTenant(db.current.sql)
      const form = await makeForm(db.current.sql, tenant)
      forms.push({ tenantId: tenant.id, formId: form.id })
    }
  })

  const submission = (n: number, name = `Person ${n}`): PendingSubmission => {
    const { tenantId, formId } = forms[n % forms.length]!
    return {
      id: randomUUID(), tenantId, formId,
      submission: {
        lead: { email: `p${n}@example.com`, phoneE164: null, name, company: null },
        answers: { name, email: `p${n}@example.com` }, customFields: {}, utm: {}, pageUrl: null, referrer: null, fillSeconds: null, consent: null,
      },
      ip: '127.0.0.1', userAgent: 'test', referer: null, requestId: `req-${n}`, receivedAt: new Date(),
    }
  }
  const inboxIds = async (ids: string[]) =>
    (await db.current.owner<{ id: string }[]>`select id from marketing.form_submission_inbox where id = any(${ids}::uuid[])`).map((r) => r.id).sort()

  it.each([
    ['a NUL character', 'Mallory\u0000'],
    ['a lone high surrogate', 'Mallory \ud800'],
    ['a lone low surrogate first', '\udc00Mallory'],
  ])('stores and answers every submission from other tenants when one carries %s, and fails only that one', async (_, poison) => {
    const errors: unknown[] = []
    const inbox = new SubmissionInbox(db.current.sql, { onError: (err) => errors.push(err) })
    const good = Array.from({ length: 40 }, (_, n) => submission(n))
    // Mid-batch: the first add starts a flush alone, the others are written together by the next one.
    const bad = submission(1, poison)
    const all = [...good.slice(0, 20), bad, ...good.slice(20)]
    const results = await Promise.allSettled(all.map((s) => inbox.store(s)))

    const failed = all.filter((_, i) => results[i]!.status === 'rejected')
    expect(failed.map((s) => s.id)).toEqual([bad.id])
    // Every answered submission is committed, with its job; the offender is not.
    expect(await inboxIds(all.map((s) => s.id))).toEqual(good.map((s) => s.id).sort())
    const reason = (results[all.indexOf(bad)] as PromiseRejectedResult).reason
    expect(reason).toMatchObject({ code: 'BAD_REQUEST', status: 400 })
    // The batch failure was reported; it was not an outage.
    expect(errors.length).toBeGreaterThan(0)
  })

  it('applies the stored neighbours of a poisoned submission: their jobs were committed with them', async () => {
    const inbox = new SubmissionInbox(db.current.sql)
    const good = Array.from({ length: 8 }, (_, n) => submission(100 + n))
    const all = [good[0]!, good[1]!, submission(3, 'x\u0000'), ...good.slice(2)]
    await Promise.allSettled(all.map((s) => inbox.store(s)))
    await drainJobs(db.current)
    const applied = await db.current.owner<{ id: string }[]>`select id from marketing.form_submissions where id = any(${good.map((s) => s.id)}::uuid[])`
    expect(applied).toHaveLength(good.length)
  })
})
