import type { TaskList } from 'graphile-worker'
import type { TaskDeps } from './task-deps.js'

/** Every task the worker runs, by name (`<domain>__<action>`). One file per task in this folder. */
export function buildTaskList(_deps: TaskDeps): TaskList {
  return {}
}
