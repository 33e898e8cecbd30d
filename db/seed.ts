import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import type { Logger } from 'pino'

export const SEEDS_DIR = fileURLToPath(new URL('./seeds/', import.meta.url))

/**
 * Applies db/seeds/*.sql as the owner. Every seed is idempotent (`on conflict do nothing`), so running them again
 * changes nothing. With `onlyNew`, seeds already recorded are skipped: that is the "first boot" behaviour, which
 * leaves alone demo data a user has since edited or deleted.
 */
export async function runSeeds(ownerUrl: string, options: { onlyNew: boolean; log?: Logger; dir?: string }): Promise<string[]> {
  const dir = options.dir ?? SEEDS_DIR
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort()
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  const applied: string[] = []
  try {
    await sql`create table if not exists app_private.seeds_applied (name text primary key, applied_at timestamptz not null default now())`
    const done = new Set((await sql<{ name: string }[]>`select name from app_private.seeds_applied`).map((r) => r.name))
    for (const name of names) {
      if (options.onlyNew && done.has(name)) continue
      const text = await readFile(path.join(dir, name), 'utf8')
      await sql.begin(async (tx) => {
        await tx.unsafe(text)
        await tx`insert into app_private.seeds_applied (name) values (${name}) on conflict (name) do update set applied_at = now()`
      })
      applied.push(name)
      options.log?.info({ seed: name }, 'applied seed')
    }
  } finally {
    await sql.end({ timeout: 5 })
  }
  return applied
}
