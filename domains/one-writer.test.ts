import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

/**
 * One owner per table: a domain alone inserts, updates and deletes its tables, and the others call its functions.
 * This reads the source (no database) and fails, naming file and line, for any SQL that writes an owned table from
 * outside its owner, and for imports that run against the dependency direction (domains never import a service;
 * marketing never imports whatsapp: whatsapp → marketing).
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const OWNERS: { owner: string; tables: string[] }[] = [
  { owner: 'domains/marketing/leads/', tables: ['marketing.leads', 'marketing.lead_interactions', 'marketing.consents', 'marketing.lead_merges', 'marketing.lead_attributions'] },
  { owner: 'domains/analytics/', tables: ['analytics.events', 'analytics.event_keys', 'analytics.posthog_outbox', 'analytics.posthog_settings', 'analytics.event_aggregations', 'analytics.daily_uniques', 'analytics.rollup_dirty', 'analytics.rollup_state', 'analytics.metrics'] },
]

/** Where owned tables may be written directly, and why. Add an entry only with a reason a reviewer would accept. */
const EXEMPT: { prefix: string; why: string }[] = [
  { prefix: 'db/', why: 'migrations and seeds build the schema and its demo data' },
  { prefix: 'test/', why: 'factories and end-to-end helpers set up rows a test needs' },
  { prefix: 'ops/bench/', why: 'benchmarks seed their data sets in bulk (a million leads), as db/seeds does' },
]
const isTest = (file: string) => /\.test\.[cm]?[jt]s$/.test(file)
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'coverage', 'artifacts'])
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs|sql)$/

function sourceFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) return []
    const full = path.join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(full)
    return SOURCE.test(e.name) ? [path.relative(ROOT, full).split(path.sep).join('/')] : []
  })
}

/** `schema.table`, bare or quoted, as a write's target: insert into / update [only] / delete from [only] / merge into. */
function writePattern(table: string): RegExp {
  const [schema, name] = table.split('.') as [string, string]
  return new RegExp(`\\b(insert\\s+into|update(?:\\s+only)?|delete\\s+from(?:\\s+only)?|merge\\s+into)\\s+"?${schema}"?\\s*\\.\\s*"?${name}"?(?![\\w"])`, 'gi')
}

interface Write {
  file: string
  line: number
  table: string
  sql: string
}

/** The writes to owned tables in `text`, by table, with their line numbers. */
function findWrites(file: string, text: string): Write[] {
  const writes: Write[] = []
  for (const { tables } of OWNERS) {
    for (const table of tables) {
      for (const m of text.matchAll(writePattern(table))) {
        writes.push({ file, table, line: text.slice(0, m.index).split('\n').length, sql: m[0].replace(/\s+/g, ' ') })
      }
    }
  }
  return writes
}

const ownerOf = (table: string) => OWNERS.find((o) => o.tables.includes(table))!.owner

/** Writes outside their owner, exempt places and tests left out. */
function strayWrites(files: string[]): Write[] {
  return files
    .filter((f) => !isTest(f) && !EXEMPT.some((e) => f.startsWith(e.prefix)))
    .flatMap((f) => findWrites(f, readFileSync(path.join(ROOT, f), 'utf8')))
    .filter((w) => !w.file.startsWith(ownerOf(w.table)))
}

/** Every module a file imports (static, re-export or dynamic), as repository paths; packages are left out. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8')
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]!)
  return specs
    .filter((s) => s.startsWith('.'))
    .map((s) => path.relative(ROOT, path.resolve(ROOT, path.dirname(file), s)).split(path.sep).join('/'))
}

const show = (writes: Write[]) => writes.map((w) => `${w.file}:${w.line}  ${w.sql}  (owner: ${ownerOf(w.table)})`)

describe('one writer per table', () => {
  const files = sourceFiles()

  it('sees a write however the SQL spells it, and not a read or an upsert clause', () => {
    const sample = [
      'insert into marketing.leads (tenant_id) values ($1)',
      'insert into marketing.leads as l (tenant_id)',
      'INSERT INTO "marketing"."lead_interactions" (x)',
      'update marketing.leads l set status = $1',
      'update only marketing.consents set lead_id = $1',
      'delete from marketing.lead_merges where id = $1',
      'with e as (insert into analytics.events (name) select 1)',
      'merge into marketing.leads t using x on true',
    ].join('\n')
    expect(findWrites('sample.ts', sample).map((w) => [w.line, w.table])).toEqual([
      [1, 'marketing.leads'], [2, 'marketing.leads'], [4, 'marketing.leads'], [8, 'marketing.leads'],
      [3, 'marketing.lead_interactions'], [5, 'marketing.consents'], [6, 'marketing.lead_merges'], [7, 'analytics.events'],
    ])
    const reads = [
      'select id from marketing.leads where id = $1 for update',
      'on conflict (tenant_id, phone_key) do update set wa_id = excluded.wa_id',
      'update marketing.leads_archive set x = 1',
      'insert into marketing.form_submissions (lead_id) select id from marketing.leads',
      'join analytics.events e on e.lead_id = l.id',
    ].join('\n')
    expect(findWrites('sample.ts', reads)).toEqual([])
  })

  it('finds the writers it guards (the scan reaches the owners themselves)', () => {
    const owned = files.filter((f) => OWNERS.some((o) => f.startsWith(o.owner)) && !isTest(f))
    const writes = owned.flatMap((f) => findWrites(f, readFileSync(path.join(ROOT, f), 'utf8')))
    for (const table of OWNERS.flatMap((o) => o.tables)) {
      expect(writes.some((w) => w.table === table), `no write to ${table} found in its owner: the scan is blind`).toBe(true)
    }
  })

  it('lets only domains/marketing/leads write leads, interactions, consents and merges, and only domains/analytics write analytics.events', () => {
    expect(show(strayWrites(files)), 'call the owning domain\'s functions (recordInteractions, recordEvents, …) instead').toEqual([])
  })

  it('keeps domains free of services', () => {
    const offenders = files
      .filter((f) => f.startsWith('domains/') && !isTest(f))
      .flatMap((f) => importsOf(f).filter((i) => i.startsWith('services/')).map((i) => `${f} imports ${i}`))
    expect(offenders).toEqual([])
  })

  it('keeps marketing from importing whatsapp (whatsapp uses marketing, never the reverse)', () => {
    const offenders = files
      .filter((f) => f.startsWith('domains/marketing/') && !isTest(f))
      .flatMap((f) => importsOf(f).filter((i) => i.startsWith('domains/whatsapp/')).map((i) => `${f} imports ${i}`))
    expect(offenders).toEqual([])
  })
})
