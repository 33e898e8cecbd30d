import { describe, expect, it } from 'vitest'
import { runSeeds } from '../../db/seed.js'
import { useTestDatabase } from '../../test/db.js'
import { CampaignConfig } from './schemas.js'
import { getCampaign } from './service.js'
import { getProduct } from './catalog.js'

const DEMO_TENANT = '00000000-0000-4000-8000-000000000001'

describe('the demo seed of the campaign builder', () => {
  const db = useTestDatabase()

  it('gives the demo tenant a product with images and a valid scheduled campaign, and a second run changes nothing', async () => {
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    const campaign = await getCampaign(db.current.sql, DEMO_TENANT, '00000000-0000-4000-8000-0000000000c4')
    expect(campaign).toMatchObject({ status: 'scheduled', budget: '6000.00', currency: 'BRL', utmCampaign: 'clareamento-verao', productId: '00000000-0000-4000-8000-0000000000c1' })
    // The seeded configuration is one the API itself would accept.
    expect(CampaignConfig.safeParse(campaign!.config).success).toBe(true)
    const product = await getProduct(db.current.sql, DEMO_TENANT, campaign!.productId!)
    expect(product!.images.map((i) => [i.kind, i.isPrimary])).toEqual([['image', true], ['background', false]])
    const snapshot = async () => JSON.stringify(await db.current.owner`
      select (select json_agg(c order by id) from campaigns.campaigns c) as c, (select json_agg(p order by id) from campaigns.products p) as p,
             (select json_agg(i order by id) from campaigns.product_images i) as i,
             (select count(*) from core.audit_log where target_type = 'campaign') as a`)
    const before = await snapshot()
    await runSeeds(db.current.ownerUrl, { onlyNew: false })
    expect(await snapshot()).toBe(before)
  })
})
