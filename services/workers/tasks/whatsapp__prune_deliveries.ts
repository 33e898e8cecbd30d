import type { Task } from 'graphile-worker'
import { z } from 'zod'
import { pruneUnparseableDeliveries } from '../../../domains/whatsapp/queries.js'
import type { TaskDeps } from './task-deps.js'

const Payload = z.object({}).loose()
/** Rows deleted per statement: keeps each transaction short on a large backlog. */
const CHUNK = 5000

/**
 * Cross-tenant: deletes raw deliveries processed more than WEBHOOK_RETENTION_DAYS ago. What they carried lives on in
 * the tenant tables; the raw copy is only for replays and audits, and holding leads' messages longer than needed
 * is a privacy cost. Failed, parked and quarantined-item deliveries are kept until an operator deals with them.
 * Raw unparseable deliveries (bytes that could never be stored as jsonb) go after the same retention from receipt.
 */
export const pruneDeliveriesTask = (deps: TaskDeps): Task => async (payload, helpers) => {
  Payload.parse(payload ?? {})
  let total = 0
  for (;;) {
    const deleted = await deps.sql`
      delete from whatsapp.webhook_deliveries
       where id in (
         select d.id from whatsapp.webhook_deliveries d
          where d.status = 'processed' and d.processed_at < now() - make_interval(days => ${deps.config.WEBHOOK_RETENTION_DAYS})
            and not exists (select 1 from whatsapp.quarantined_items q where q.delivery_id = d.id and q.released_at is null)
          limit ${CHUNK})`
    total += deleted.count
    if (deleted.count < CHUNK) break
  }
  if (total > 0) helpers.logger.info(`pruned ${total} processed deliveries`)
  const unparseable = await pruneUnparseableDeliveries(deps.sql, deps.config.WEBHOOK_RETENTION_DAYS)
  if (unparseable > 0) helpers.logger.info(`pruned ${unparseable} unparseable deliveries`)
}
