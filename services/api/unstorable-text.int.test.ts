import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, buildTestApi } from '../../test/apps.js'
import { useTestDatabase } from '../../test/db.js'
import { makeLead } from '../../test/factories/marketing-rows.js'
import { makeTenant, type TestTenant } from '../../test/factories/tenants.js'
import { withTenant } from '../../lib/db.js'
import type { App } from '../../lib/http/create-server.js'
import { MAX_BODY_DEPTH } from '../../lib/http/safe-json.js'

const NUL = 'contains a NUL character (\\u0000), which cannot be stored'
const LONE = 'contains a lone surrogate, which is not valid Unicode'

/**
 * Text PostgreSQL cannot store (NUL), invalid Unicode (a lone surrogate) and absurdly deep bodies used to reach the
 * database and come back as 500s (or, for a lone surrogate in a text column, be stored silently mangled into U+FFFD).
 * Every API route now refuses them with the product's 400, naming the field, and changes nothing.
 */
describe('API requests holding text that cannot be stored', () => {
  const db = useTestDatabase()
  let app: App
  let tenant: TestTenant
  let lead: string
  beforeAll(async () => {
    app = await buildTestApi(db.current)
    tenant = await makeTenant(db.current.sql)
    lead = (await withTenant(db.current.sql, tenant.id, (tx) => makeLead(tx, tenant.id, { name: 'Ana Souza', email: 'ana@example.com', tags: ['vip'] }))).id
  })
  afterAll(() => app.close())

  const send = (method: 'POST' | 'PATCH' | 'GET', url: string, payload?: string | object) =>
    app.inject({ method, url, headers: { ...bearer(tenant.adminKey), ...(typeof payload === 'string' ? { 'content-type': 'application/json' } : {}) }, payload })
  const snapshot = async () => ({
    lead: (await db.current.owner`select name, company, status, tags, updated_at from marketing.leads where id = ${lead}`)[0],
    interactions: (await db.current.owner`select count(*)::int as n from marketing.lead_interactions where lead_id = ${lead}`)[0]!.n,
    forms: (await db.current.owner`select count(*)::int as n from marketing.forms where tenant_id = ${tenant.id}`)[0]!.n,
    flows: (await db.current.owner`select count(*)::int as n from conversations.flows where tenant_id = ${tenant.id}`)[0]!.n,
  })
  const expectRefused = (res: Awaited<ReturnType<typeof send>>, detail: { in: string; path: string; message: string }) => {
    expect(res.statusCode).toBe(400)
    const error = res.json().error
    expect(error).toMatchObject({ code: 'BAD_REQUEST', details: [detail], requestId: res.headers['x-request-id'] })
    expect(error.message).toBe(`invalid ${detail.in}.${detail.path}: ${detail.message}`)
  }

  it.each<[string, 'POST' | 'PATCH', () => string, string | object, { path: string; message: string }]>([
    ['a note with a NUL', 'POST', () => `/v1/leads/${lead}/notes`, { text: 'call after 5\u0000' }, { path: 'text', message: NUL }],
    ['a note with a lone surrogate', 'POST', () => `/v1/leads/${lead}/notes`, '{"text":"call \\ud800 later"}', { path: 'text', message: LONE }],
    ['a lead name with a NUL', 'PATCH', () => `/v1/leads/${lead}`, { name: 'Ana\u0000' }, { path: 'name', message: NUL }],
    ['a lead name with a lone low surrogate first', 'PATCH', () => `/v1/leads/${lead}`, '{"name":"\\udc00Ana"}', { path: 'name', message: LONE }],
    ['a tag with a NUL, beside a good change', 'PATCH', () => `/v1/leads/${lead}`, { status: 'qualified', tags: ['vip', 'b\u0000d'] }, { path: 'tags.1', message: NUL }],
    ['a form whose field label has a NUL', 'POST', () => '/v1/forms', { name: 'Contact', fields: [{ name: 'name', label: 'Na\u0000me', type: 'text' }] }, { path: 'fields.0.label', message: NUL }],
    ['a form whose name has a lone surrogate', 'POST', () => '/v1/forms', '{"name":"Contact \\ud83d","fields":[{"name":"name","label":"Name","type":"text"}]}', { path: 'name', message: LONE }],
    ['a flow document nested 20,000 levels deep', 'POST', () => '/v1/flows', `{"document":${'['.repeat(20_000)}1${']'.repeat(20_000)}}`, { path: Array(MAX_BODY_DEPTH - 1).fill('0').join('.').replace(/^/, 'document.'), message: `is nested deeper than ${MAX_BODY_DEPTH} levels` }],
    ['a flow document with a NUL in a key', 'POST', () => '/v1/flows', '{"document":{"name":"x","no\\u0000des":[]}}', { path: 'document.no\\u0000des', message: `has a field name that ${NUL}` }],
  ])('refuses %s with a 400 naming the field and changes nothing', async (_story, method, url, payload, detail) => {
    const before = await snapshot()
    expectRefused(await send(method, url(), payload), { in: 'body', ...detail })
    expect(await snapshot()).toEqual(before)
  })

  it('refuses a search for a NUL with a 400 naming the query parameter', async () => {
    expectRefused(await send('GET', '/v1/leads?q=%00'), { in: 'querystring', path: 'q', message: NUL })
    expectRefused(await send('GET', '/v1/leads?q=ana&q=%00'), { in: 'querystring', path: 'q.1', message: NUL })
  })

  it('refuses a NUL in a path parameter', async () => {
    expectRefused(await send('GET', `/v1/leads/${lead}%00/timeline`), { in: 'params', path: 'leadId', message: NUL })
  })

  it('still stores emoji, accents and valid surrogate pairs', async () => {
    const res = await send('POST', `/v1/leads/${lead}/notes`, '{"text":"Jo\\u00e3o prefers 😀 and \\ud83d\\udc4d\\ud83c\\udffd"}')
    expect(res.statusCode).toBe(201)
    const [row] = await db.current.owner<{ details: { text: string } }[]>`
      select details from marketing.lead_interactions where lead_id = ${lead} and type = 'note' order by occurred_at desc limit 1`
    expect(JSON.stringify(row)).toContain('😀')
  })
})
