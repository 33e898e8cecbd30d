import { readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import type { Logger } from 'pino'
import { createSql, type Tx } from '../lib/db.js'
import * as demoAnalytics from './seeds/0004_demo_analytics.js'
import * as demoAssessments from './seeds/0005_demo_assessments.js'

export const SEEDS_DIR = fileURLToPath(new URL('./seeds/', import.meta.url))

/** A seed written in TypeScript: for data that must go through the domains' functions (analytics history). */
interface CodeSeed { seed: (tx: Tx) => Promise<unknown> }

/**
 * The TypeScript seeds, imported with this module rather than on demand: under `npm start` a Ctrl-C reaches tsx's
 * compiler process too, and a module still to be compiled after it would fail to load instead of shutting down.
 */
const CODE_SEEDS: Record<string, CodeSeed> = { '0004_demo_analytics.ts': demoAnalytics, '0005_demo_assessments.ts': demoAssessments }

const isSeedFile = (n: string) => n.endsWith('.sql') || (n.endsWith('.ts') && !n.endsWith('.test.ts') && !n.endsWith('.d.ts'))

/**
 * Applies db/seeds/*.sql (and *.ts, whose `seed(tx)` runs in the same kind of transaction) as the owner, in name order. Every seed is idempotent (`on conflict do nothing`), so running them again
 * changes nothing. With `onlyNew`, seeds already recorded are skipped: that is the "first boot" behaviour, which
 * leaves alone demo data a user has since edited or deleted.
 */
export async function runSeeds(ownerUrl: string, options: { onlyNew: boolean; log?: Logger; dir?: string }): Promise<string[]> {
  const dir = options.dir ?? SEEDS_DIR
  const names = (await readdir(dir)).filter(isSeedFile).sort()
  const sql = postgres(ownerUrl, { max: 1, onnotice: () => {} })
  // Domain functions expect the services' column mapping (camelCase), which the plain connection above lacks.
  let code: ReturnType<typeof createSql> | null = null
  const applied: string[] = []
  try {
    await sql`create table if not exists app_private.seeds_applied (name text primary key, applied_at timestamptz not null default now())`
    const done = new Set((await sql<{ name: string }[]>`select name from app_private.seeds_applied`).map((r) => r.name))
    for (const name of names) {
      if (options.onlyNew && done.has(name)) continue
      const file = path.join(dir, name)
      if (name.endsWith('.sql')) {
        const text = await readFile(file, 'utf8')
        await sql.begin(async (tx) => {
          await tx.unsafe(text)
          await tx`insert into app_private.seeds_applied (name) values (${name}) on conflict (name) do update set applied_at = now()`
        })
      } else {
        const mod = CODE_SEEDS[name]
        if (!mod) throw new Error(`seed ${name} is not registered in db/seed.ts CODE_SEEDS`)
        code ??= createSql(ownerUrl, { max: 1, quiet: true, applicationName: 'seed' })
        await code.begin(async (tx) => {
          await mod.seed(tx)
          await tx`insert into app_private.seeds_applied (name) values (${name}) on conflict (name) do update set applied_at = now()`
        })
      }
      applied.push(name)
      options.log?.info({ seed: name }, 'applied seed')
    }
  } finally {
    await Promise.all([sql.end({ timeout: 5 }), code?.end({ timeout: 5 })])
  }
  return applied
}
