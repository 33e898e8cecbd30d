import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { App } from '../../../lib/http/create-server.js'
import { buildTestWebhooks } from '../../../test/apps.js'
import { useTestDatabase } from '../../../test/db.js'
import { makeAssessment } from '../../../test/factories/assessments-rows.js'
import { makeTenant } from '../../../test/factories/tenants.js'
import { ASSESSMENT_PAGE_CSP } from './routes.js'

const ASSETS = [
  ['/assessments/page/app.js', 'text/javascript'],
  ['/assessments/page/api.js', 'text/javascript'],
  ['/assessments/page/questions.js', 'text/javascript'],
  ['/assessments/page/style.css', 'text/css'],
] as const

describe('the assessment page files (webhooks service)', () => {
  const db = useTestDatabase()
  let app: App
  let publicKey: string
  let draftKey: string
  beforeAll(async () => {
    app = await buildTestWebhooks(db.current)
    const tenant = await makeTenant(db.current.sql)
    publicKey = (await makeAssessment(db.current.sql, tenant)).publicKey
    draftKey = (await makeAssessment(db.current.sql, tenant, { draft: true })).publicKey
  })
  afterAll(async () => { await app?.close() })

  const sessions = async () => (await db.current.owner<{ n: number }[]>`select count(*)::int as n from assessments.sessions`)[0]!.n
  const expectPageHeaders = (headers: Record<string, unknown>) => {
    expect(headers['content-security-policy']).toBe(ASSESSMENT_PAGE_CSP)
    expect(headers['x-content-type-options']).toBe('nosniff')
    expect(headers['x-frame-options']).toBe('DENY')
    expect(headers['referrer-policy']).toBe('no-referrer')
    expect(headers['cross-origin-opener-policy']).toBe('same-origin')
    expect(headers['cache-control']).toBe('no-cache')
    expect(headers['set-cookie']).toBeUndefined()
  }

  it('serves the page at the partner links\' web start under a strict CSP, revalidated by ETag, starting nothing', async () => {
    const before = await sessions()
    const res = await app.inject({ method: 'GET', url: `/assessments/${publicKey}/start?link=ana-spring&utm_source=ig` })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expectPageHeaders(res.headers)
    for (const part of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "form-action 'none'", "frame-ancestors 'none'", "require-trusted-types-for 'script'"]) {
      expect(ASSESSMENT_PAGE_CSP).toContain(part)
    }
    expect(ASSESSMENT_PAGE_CSP).not.toMatch(/unsafe-|\*|https?:/)
    expect(res.body).toContain('<script type="module" src="../page/app.js">')
    // The page is the same file whatever the key or link: nothing of the request is written into it.
    expect(res.body).not.toContain(publicKey)
    expect(res.body).not.toContain('ana-spring')
    const etag = res.headers.etag as string
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/)
    const again = await app.inject({ method: 'GET', url: `/assessments/${publicKey}/start`, headers: { 'if-none-match': etag } })
    expect(again.statusCode).toBe(304)
    expect(again.body).toBe('')
    expectPageHeaders(again.headers)
    // Opening the page is not starting the assessment: that waits for the person's Start.
    expect(await sessions()).toBe(before)
  })

  it.each(ASSETS)('serves %s as %s under the same headers', async (url, type) => {
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe(`${type}; charset=utf-8`)
    expectPageHeaders(res.headers)
    expect(res.body.length).toBeGreaterThan(500)
    const stale = await app.inject({ method: 'GET', url, headers: { 'if-none-match': '"not-this-one"' } })
    expect(stale.statusCode).toBe(200)
  })

  it('has no inline script or style, nothing from another origin, and no way to write markup from a string', async () => {
    const html = (await app.inject({ method: 'GET', url: `/assessments/${publicKey}/start` })).body
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="../page/app.js">'])
    expect(html).not.toMatch(/<style\b|\sstyle=|\son[a-z]+=/i)
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i)
    for (const [url] of ASSETS.filter(([u]) => u.endsWith('.js'))) {
      const js = (await app.inject({ method: 'GET', url })).body
      for (const [, from] of js.matchAll(/from '([^']+)'/g)) expect(from!, url).toMatch(/^\.\/[a-z-]+\.js$/)
      // The token in session storage only; markup never from strings (Trusted Types would refuse it anyway).
      expect(js, url).not.toMatch(/localStorage|document\.cookie|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/)
      expect(js, url).not.toMatch(/[?&#]token=/)
    }
  })

  it.each([
    ['a key the engine never issues', '/assessments/not-a-key/start'],
    ['a key with a character keys never have', `/assessments/${'ak_'}${'x'.repeat(23)}!/start`],
    ['a key of a URL cut in the middle', '/assessments/ak_x/start'],
  ])('answers %s with a 404 in the one error shape, and starts nothing', async (_, url) => {
    const before = await sessions()
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(404)
    expect(res.headers['content-type']).toContain('application/json')
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND', message: 'assessment not found', requestId: expect.any(String) } })
    expect(res.headers['content-security-policy']).toBeUndefined()
    expect(await sessions()).toBe(before)
  })

  it('answers a key longer than any path segment may be with the router\'s 400, in the one shape', async () => {
    const res = await app.inject({ method: 'GET', url: `/assessments/ak_${'x'.repeat(300)}/start` })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toMatchObject({ error: { code: 'BAD_REQUEST', requestId: expect.any(String) } })
  })

  it('keeps the session routes beside the page: /assessments/<key>/sessions still starts', async () => {
    const before = await sessions()
    const res = await app.inject({ method: 'POST', url: `/assessments/${publicKey}/sessions`, payload: {} })
    expect(res.statusCode).toBe(201)
    expect(await sessions()).toBe(before + 1)
  })

  it('serves the page for a well-formed key it cannot vouch for; the start then answers the 404 the page shows', async () => {
    for (const key of [`ak_${'0'.repeat(24)}`, draftKey]) {
      const page = await app.inject({ method: 'GET', url: `/assessments/${key}/start` })
      expect(page.statusCode).toBe(200)
      const start = await app.inject({ method: 'POST', url: `/assessments/${key}/sessions`, payload: {} })
      expect(start.statusCode).toBe(404)
      expect(start.json()).toMatchObject({ error: { code: 'NOT_FOUND', message: 'assessment not found' } })
    }
  })

  it.each([
    ['/assessments/page/nope.js'],
    ['/assessments/page/../../package.json'],
    ['/assessments/page/%2e%2e/%2e%2e/package.json'],
    ['/assessments/page/index.html'],
    ['/assessments/page/public/app.js'],
  ])('answers %s with a 404, not a file', async (url) => {
    const res = await app.inject({ method: 'GET', url })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
  })

  it('refuses a link parameter longer than any link code, and a write to the page', async () => {
    const long = await app.inject({ method: 'GET', url: `/assessments/${publicKey}/start?link=${'x'.repeat(201)}` })
    expect(long.statusCode).toBe(400)
    expect(long.json().error.details[0]).toMatchObject({ in: 'querystring', path: 'link' })
    const post = await app.inject({ method: 'POST', url: `/assessments/${publicKey}/start`, payload: {} })
    expect(post.statusCode).toBe(404)
  })
})
