import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runSeeds } from './seed.js'
import { DEMO_TENANT_ID } from './demo-history.js'
import type { App } from '../lib/http/create-server.js'
import { buildTestWebhooks } from '../test/apps.js'
import { useTestDatabase } from '../test/db.js'

describe('the demo partner seed', () => {
  const db = useTestDatabase()
  let webhooks: App
  beforeAll(async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    webhooks = await buildTestWebhooks(db.current)
  })
  afterAll(() => webhooks.close())

  it('gives the demo tenant a partner whose link redirects to the health check, and seeding again adds nothing', async () => {
    const count = async () => (await db.current.owner<{ partners: number; links: number; products: number }[]>`
      select (select count(*)::int from assessments.partners where tenant_id = ${DEMO_TENANT_ID}) as partners,
             (select count(*)::int from assessments.links where tenant_id = ${DEMO_TENANT_ID}) as links,
             (select count(*)::int from assessments.products where tenant_id = ${DEMO_TENANT_ID}) as products`)[0]
    expect(await count()).toEqual({ partners: 1, links: 1, products: 1 })
    const res = await webhooks.inject({ method: 'GET', url: '/l/demo-ana-health', headers: { 'user-agent': 'Mozilla/5.0 Firefox/128.0' } })
    expect(res.statusCode).toBe(302)
    expect(res.headers.location).toContain('/assessments/ak_demo_health_check_000001/start?link=demo-ana-health')
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    expect(await count()).toEqual({ partners: 1, links: 1, products: 1 })
  })
})
