import { CreatedExport, CreateExportBody, ExportParams, ExportView } from '../../../../domains/privacy/export-schemas.js'
import { readExport, requestExport } from '../../../../domains/privacy/export.js'
import type { App } from '../../../../lib/http/create-server.js'
import type { ApiDeps } from '../../app.js'
import { actorOf } from '../../plugins/auth.js'


/** Subject-access exports. Both routes need an admin key: the document is everything held about a person. */
export default async function exportRoutes(app: App, deps: ApiDeps) {
  app.post('/', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['privacy'],
      summary: 'Ask for everything held about one person (by leadId, email or phone: exactly one). Prepared by a job; poll GET.',
      body: CreateExportBody,
      response: { 202: CreatedExport },
    },
  }, async (req, reply) => reply.code(202).send(await requestExport(deps.sql, actorOf(req), req.body)))

  app.get('/:exportId', {
    config: { access: 'tenant:write' },
    schema: {
      tags: ['privacy'],
      summary: 'The request while it is prepared (status pending, running, failed, expired); once ready, the JSON document itself, streamed (schemaVersion 1).',
      params: ExportParams,
      response: { 200: ExportView },
    },
  }, async (req, reply) => {
    const read = await readExport(deps.sql, actorOf(req), req.params.exportId, (err) => req.log.error({ err, exportId: req.params.exportId }, 'export stream failed'))
    if (read.kind === 'status') return read.view
    return reply
      .type('application/json; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-disposition', `attachment; filename="export-${read.view.id}.json"`)
      // A stream is sent as it is, never through the response schema (which describes the status answer).
      .send(read.stream as never)
  })
}
