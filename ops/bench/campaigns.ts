/**
 * Campaigns (issue 13), against baselines in the same run, bounded, loopback only. The parts live in
 * ops/bench/campaigns/*.ts, one file each (draft-autosave.ts: the builder's autosave; the media plan and broadcast
 * parts add their own files there), found here without a list to edit. One migrated database for all of them, a
 * tenant of its own for each.
 *
 * Environment: BENCH_SECTIONS (comma-separated part names; all by default), and each part's own (see its file).
 */
import { readdir } from 'node:fs/promises'
import { parseConfig } from '../../lib/config.js'
import { createLogger } from '../../lib/logger.js'
import { createTenantWithFirstKey } from '../../domains/tenancy/service.js'
import { startBenchDatabase } from './harness.js'
import type { BenchSection } from './campaigns/section.js'

const dir = new URL('./campaigns/', import.meta.url)
const files = (await readdir(dir)).filter((f) => f.endsWith('.ts') && f !== 'section.ts' && !f.endsWith('.test.ts')).sort()
const loaded = await Promise.all(files.map(async (f) => ({ file: f, section: (await import(new URL(f, dir).href)).default as BenchSection | undefined })))
for (const { file } of loaded.filter((l) => !l.section?.run)) console.warn(`ops/bench/campaigns/${file} has no default BenchSection export (ops/bench/campaigns/section.ts): not run`)
const sections = loaded.flatMap((l) => (l.section?.run ? [l.section] : []))
const wanted = process.env.BENCH_SECTIONS?.split(',').map((s) => s.trim()).filter(Boolean)
const chosen = wanted ? sections.filter((s) => wanted.includes(s.name)) : sections
if (wanted && chosen.length !== wanted.length) {
  console.error(`unknown BENCH_SECTIONS: ${wanted.filter((w) => !sections.some((s) => s.name === w)).join(', ')} (known: ${sections.map((s) => s.name).join(', ')})`)
  process.exit(2)
}

const log = createLogger({ level: 'warn', service: 'bench' })
const config = parseConfig({ NODE_ENV: 'development', LOG_LEVEL: 'warn', API_RATE_LIMIT_PER_MINUTE: '100000000' })
const db = await startBenchDatabase({ poolMax: Number(process.env.BENCH_POOL_MAX ?? 20) })
const summary: string[] = []
let failed = false
try {
  let n = 0
  const tenant = async () => {
    const { tenant: t, apiKey } = await createTenantWithFirstKey(db.sql, { name: `Bench ${++n}`, slug: `bench-${n}`, defaultCountry: 'BR', timezone: 'UTC', firstKeyName: 'k' })
    return { tenantId: t.id, apiKey: apiKey.key }
  }
  for (const s of chosen) {
    console.log(`\n== ${s.title} ==`)
    const result = await s.run({ db, config, log, tenant })
    failed ||= !result.passed
    summary.push(...result.summary.map((line) => `${result.passed ? 'ok  ' : 'MISS'} ${s.name}: ${line}`))
  }
} finally {
  await db.close()
}
console.log(`\n${summary.join('\n')}`)
if (failed) process.exitCode = 1
