import type { TaskList } from 'graphile-worker'
import { unlockStaleJobsTask } from './ops__unlock_stale_jobs.js'
import type { TaskDeps } from './task-deps.js'
import { processDeliveriesTask } from './whatsapp__process_deliveries.js'
import { processDeliveryTask } from './whatsapp__process_delivery.js'

/** Every task the worker runs, by name (`<domain>__<action>`). One file per task in this folder. */
export function buildTaskList(deps: TaskDeps): TaskList {
  return {
    whatsapp__process_deliveries: processDeliveriesTask(deps),
    whatsapp__process_delivery: processDeliveryTask(deps),
    ops__unlock_stale_jobs: unlockStaleJobsTask(deps),
  }
}
