import type { Config } from '../../../lib/config.js'
import type { Sql } from '../../../lib/db.js'
import type { Logger } from '../../../lib/logger.js'

/** What a task may use. Tasks reach the database only through domain functions, given the runtime role's pool and `withTenant`. */
export interface TaskDeps {
  config: Config
  sql: Sql
  log: Logger
}
