import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { jsonSchemaTransform } from 'fastify-type-provider-zod'
import type { App } from './create-server.js'

/** The OpenAPI document is generated from the same zod schemas that validate requests, so it cannot drift. */
export async function registerOpenApi(app: App, info: { title: string; description: string; version: string; bearer: boolean }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: info.title, description: info.description, version: info.version },
      components: info.bearer ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A tenant API key (wak_...) or the operator key' } } } : {},
      security: info.bearer ? [{ bearer: [] }] : [],
    },
    transform: jsonSchemaTransform,
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true }, config: { access: 'public' } }, async () => app.swagger())
}
