import { z } from 'zod'
import { AppError } from '../../../../lib/errors.js'
import type { App } from '../../../../lib/http/create-server.js'
import { PageQuery } from '../../../../lib/pagination.js'
import { AddImageBody, CreateProductBody, PatchProductBody, ProductImageView, ProductView } from '../../../../domains/campaigns/schemas.js'
import * as catalog from '../../../../domains/campaigns/catalog.js'
import type { ApiDeps } from '../../app.js'
import { actorOf, tenantOf } from '../../plugins/auth.js'

const ProductParams = z.object({ productId: z.uuid() })
const ImageParams = ProductParams.extend({ imageId: z.uuid() })
const ProductDetail = ProductView.extend({ images: z.array(ProductImageView) })

/** Products the campaigns promote: price, SKU, URL, UTM codes, images (one primary) with their background versions. */
export default async function productRoutes(app: App, deps: ApiDeps) {
  const tags = ['products']

  app.post('/', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Add a product (SKU unique per tenant; price a decimal string with its currency).', body: CreateProductBody, response: { 201: ProductDetail } },
  }, async (req, reply) => reply.code(201).send(await catalog.createProduct(deps.sql, actorOf(req), req.body)))

  app.get('/', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'Products, newest first, with their images.', querystring: PageQuery.extend({ deleted: z.stringbool().optional() }), response: { 200: z.object({ data: z.array(ProductDetail), nextCursor: z.string().nullable() }) } },
  }, async (req) => catalog.listProducts(deps.sql, tenantOf(req).tenantId, req.query))

  app.get('/:productId', {
    config: { access: 'tenant:read' },
    schema: { tags, summary: 'One product with its images.', params: ProductParams, response: { 200: ProductDetail } },
  }, async (req) => (await catalog.getProduct(deps.sql, tenantOf(req).tenantId, req.params.productId)) ?? notFound(req.params.productId))

  app.patch('/:productId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Change a product.', params: ProductParams, body: PatchProductBody, response: { 200: ProductDetail } },
  }, async (req) => catalog.updateProduct(deps.sql, actorOf(req), req.params.productId, req.body))

  app.delete('/:productId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Soft-delete (campaigns keep pointing at it; new ones cannot).', params: ProductParams, response: { 200: ProductDetail } },
  }, async (req) => catalog.setProductDeleted(deps.sql, actorOf(req), req.params.productId, true))

  app.post('/:productId/restore', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Restore a soft-deleted product.', params: ProductParams, response: { 200: ProductDetail } },
  }, async (req) => catalog.setProductDeleted(deps.sql, actorOf(req), req.params.productId, false))

  app.post('/:productId/images', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Add an image (the first one is the primary unless another is marked), or a background version of one (kind background, parentImageId).', params: ProductParams, body: AddImageBody, response: { 201: ProductImageView } },
  }, async (req, reply) => reply.code(201).send(await catalog.addProductImage(deps.sql, actorOf(req), req.params.productId, req.body)))

  app.post('/:productId/images/:imageId/primary', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Make this image the primary one (the previous primary stops being so).', params: ImageParams, response: { 200: ProductImageView } },
  }, async (req) => catalog.makePrimaryImage(deps.sql, actorOf(req), req.params.productId, req.params.imageId))

  app.delete('/:productId/images/:imageId', {
    config: { access: 'tenant:write' },
    schema: { tags, summary: 'Remove an image and its background versions.', params: ImageParams, response: { 204: z.null() } },
  }, async (req, reply) => {
    await catalog.deleteProductImage(deps.sql, actorOf(req), req.params.productId, req.params.imageId)
    return reply.code(204).send(null)
  })
}

const notFound = (id: string): never => {
  throw new AppError('NOT_FOUND', `product ${id} not found`)
}
