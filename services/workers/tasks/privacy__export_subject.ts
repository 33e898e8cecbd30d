import type { Task } from 'graphile-worker'
import { ExportSubjectPayload } from '../../../domains/privacy/export-schemas.js'
import { failExport, produceExport } from '../../../domains/privacy/export.js'
import type { TaskDeps } from './task-deps.js'

/**
 * Writes the document of one subject-access export (domains/privacy/export.ts). Idempotent: a ready export is left
 * as it is, and an attempt that failed rolled back its pieces. A request that no longer exists (erased with its
 * lead) is done. After the last attempt fails the request is marked failed, with an error code only: the error
 * could quote a row.
 */
export const exportSubjectTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  const { tenantId, exportId } = ExportSubjectPayload.parse(payload)
  try {
    const outcome = await produceExport(deps.sql, tenantId, exportId, deps.config.PRIVACY_EXPORT_TTL_DAYS)
    helpers.logger.info(`export ${exportId}: ${outcome}`)
  } catch (err) {
    if (helpers.job.attempts >= helpers.job.max_attempts) {
      await failExport(deps.sql, tenantId, exportId, 'export_failed')
      helpers.logger.error(`export ${exportId} failed after ${helpers.job.attempts} attempts`)
      return
    }
    throw err
  }
}
