/**
 * graphile-worker crontab. One line per recurring task, each with an id (`id=`) so renames keep their history,
 * and a comment saying why it runs when it does.
 */
export const crontab: string[] = []
