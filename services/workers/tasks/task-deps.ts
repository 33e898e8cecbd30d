import type { Config } from '../../../lib/config.js'
import type { Sql } from '../../../lib/db.js'
import type { Logger } from '../../../lib/logger.js'

/** What a task may use. Tasks reach the database through `sql` (the runtime role) and `withTenant`. */
export interface TaskDeps {
  config: Config
  sql: Sql
  log: Logger
}
