import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildTestWebhooks } from '../../../../test/apps.js'
import { useTestDatabase } from '../../../../test/db.js'
import { makeForm } from '../../../../test/factories/marketing-rows.js'
import { makeTenant } from '../../../../test/factories/tenants.js'
import { drainJobs } from '../../../../test/whatsapp.js'
import type { App } from '../../../../lib/http/create-server.js'
import { MAX_BODY_DEPTH } from '../../../../lib/http/safe-json.js'
import type { FormView } from '../../../../domains/marketing/forms/views.js'

const ORIGIN = 'https://clinic.example'
const NUL = 'contains a NUL character (\\u0000), which cannot be stored'
const LONE = 'contains a lone surrogate, which is not valid Unicode'

/** A JSON text `levels` arrays deep (built as text: JSON.stringify itself would overflow the stack). */
const deepJson = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`

/**
 * The public form endpoint needs no authentication: one submission carrying text PostgreSQL cannot store used to
 * fail the group commit it was written with, answering 503 to legitimate submitters of other tenants.
 */
describe('public form submissions mixed with poisoned ones', () => {
  const db = useTestDatabase()
  let app: App
  let forms: FormView[]
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current, { FORM_RATE_LIMIT_PER_IP_PER_MINUTE: '100000', FORM_RATE_LIMIT_PER_FORM_PER_MINUTE: '100000' })
    forms = []
    for (let i = 0; i < 4; i++) forms.push(await makeForm(db.current.sql, await makeTenant(db.current.sql)))
  })
  afterAll(() => app.close())

  const json = (form: FormView, payload: string | object) =>
    app.inject({ method: 'POST', url: `/forms/${form.publicKey}/submissions`, headers: { origin: ORIGIN, 'content-type': 'application/json' }, payload })
  const urlencoded = (form: FormView, payload: string) =>
    app.inject({
      method: 'POST', url: `/forms/${form.publicKey}/submissions`, payload,
      headers: { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    })
  const inboxCount = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submission_inbox`)[0]!.n
  const leadsWithEmail = async (emails: string[]) =>
    (await db.current.owner<{ n: number }[]>`select count(*)::int as n from marketing.leads where email = any(${emails}::text[])`)[0]!.n

  /** Each poisoned request, the field its 400 must name, and why. */
  const poisoned = (form: FormView, n: number) => [
    { send: () => json(form, { name: 'Mallory\u0000', email: `bad${n}.a@example.com` }), in: 'body', path: 'name', message: NUL },
    // Serialized as the escape \ud800: exactly what a script can send.
    { send: () => json(form, { name: 'Mallory \ud800', email: `bad${n}.b@example.com` }), in: 'body', path: 'name', message: LONE },
    { send: () => json(form, `{"name":"Mallory","email":"bad${n}.c@example.com","\\u0000x":"1"}`), in: 'body', path: '\\u0000x', message: `has a field name that ${NUL}` },
    { send: () => json(form, `{"name":"Mallory","email":"bad${n}.d@example.com","extra":${deepJson(20_000)}}`), in: 'body', path: `extra${'.0'.repeat(MAX_BODY_DEPTH - 1)}`, message: `is nested deeper than ${MAX_BODY_DEPTH} levels` },
    { send: () => urlencoded(form, `name=Mallory%00&email=bad${n}.e%40example.com`), in: 'body', path: 'name', message: NUL },
    { send: () => urlencoded(form, `name=Mallory&email=bad${n}.f%40example.com&name=%00`), in: 'body', path: 'name.1', message: NUL },
  ]
  const poisonedEmails = (n: number) => ['a', 'b', 'c', 'd', 'e', 'f'].map((s) => `bad${n}.${s}@example.com`)

  it('stores every one of 80 legitimate submissions from four tenants and refuses each poisoned one with a 400 naming its field', async () => {
    const before = await inboxCount()
    const legit = Array.from({ length: 80 }, (_, n) => {
      const form = forms[n % forms.length]!
      return n % 2 === 0
        ? () => json(form, { name: `Person ${n} 😀`, email: `p${n}@example.com` })
        : () => urlencoded(form, `name=Person+${n}&email=p${n}%40example.com`)
    })
    const bad = forms.flatMap((form, n) => poisoned(form, n))
    // Interleaved and concurrent, so poisoned and legitimate submissions share group commits.
    const requests = legit.flatMap((send, i) => (i % 3 === 0 && bad[i / 3] ? [send, bad[i / 3]!.send] : [send]))
    expect(requests).toHaveLength(legit.length + bad.length)
    const responses = await Promise.all(requests.map((send) => send()))

    const legitResponses = responses.filter((_, i) => legit.includes(requests[i]!))
    expect(legitResponses.map((r) => r.statusCode)).toEqual(Array(80).fill(201))
    const badResponses = responses.filter((_, i) => !legit.includes(requests[i]!))
    for (const [i, res] of badResponses.entries()) {
      const want = bad[i]!
      expect(res.statusCode, want.path).toBe(400)
      expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: want.in, path: want.path, message: want.message }], requestId: expect.any(String) })
      expect(res.json().error.message).toContain(`body.${want.path}`)
    }

    expect(await inboxCount()).toBe(before + 80)
    await drainJobs(db.current)
    const stored = await db.current.owner<{ n: number }[]>`select count(*)::int as n from marketing.form_submissions where answers->>'email' like 'p%@example.com'`
    expect(stored[0]!.n).toBe(80)
    expect(await leadsWithEmail(forms.flatMap((_, n) => poisonedEmails(n)))).toBe(0)
  })

  it('refuses a NUL in the form key with a 400 before looking the form up', async () => {
    const res = await app.inject({ method: 'POST', url: '/forms/abc%00/submissions', headers: { origin: ORIGIN }, payload: { name: 'x' } })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: 'params', path: 'publicKey', message: NUL }] })
  })

  it('refuses a NUL in the query string of a form page', async () => {
    const res = await app.inject({ method: 'GET', url: `/forms/${forms[0]!.publicKey}/thanks?ref=%00` })
    expect(res.statusCode).toBe(400)
    expect(res.json().error).toMatchObject({ code: 'BAD_REQUEST', details: [{ in: 'querystring', path: 'ref', message: NUL }] })
  })

  it('still accepts emoji, accents and valid surrogate pairs', async () => {
    const res = await json(forms[0]!, `{"name":"Jo\\u00e3o \\ud83d\\ude00 Conceição 👍🏽","email":"emoji@example.com"}`)
    expect(res.statusCode).toBe(201)
  })
})
