import { describe, expect, it } from 'vitest'
import type { Sql } from '../lib/db.js'
import { LEAD_REFERENCES, NOT_PERSONAL, type LeadReference } from '../domains/marketing/leads/lead-references.js'
import { MERGE_RULES } from '../domains/marketing/leads/service.js'
import { useTestDatabase } from './db.js'

/**
 * The lead-references catalog against the real schema, as test/rls.int.test.ts does for isolation: every foreign key
 * to marketing.leads and every column named like a person's data, in every schema (platform ones too), must be in
 * the catalog or declared not personal with its reason; and every name the catalog uses must exist, so it cannot rot.
 */

// graphile_worker is the queue's own schema (its job payloads are erasure's concern, searched by content).
const EXCLUDED_SCHEMAS = ['pg_catalog', 'information_schema', 'graphile_worker']

/**
 * Column names that hold, or usually hold, a person or their data. Bare `name` is included on purpose: a person's
 * name column in a future table is most likely called that, and the few business names are declared in NOT_PERSONAL.
 */
const PERSONAL_COLUMN_NAMES: RegExp[] = [
  /^lead_id$/, /_lead_id$/, /^survivor_id$/, /^merged_id$/, /^merged_into$/,
  /^phone/, /_phone/, /^email/, /_email/, /^wa_id$/, /_wa_id$/, /^recipient_id$/,
  /^ip$/, /^ip_/, /_ip$/, /^user_agent$/, /^referr?er$/,
  /^name$/, /_name$/, /^first_name$/, /^last_name$/, /^company$/,
]
export const looksPersonal = (column: string) => PERSONAL_COLUMN_NAMES.some((re) => re.test(column))

interface Column { table: string; column: string; hasTenantId: boolean }

export interface Catalog {
  references: readonly LeadReference[]
  notPersonal: Readonly<Record<string, string>>
  mergeRules: readonly string[]
}
const REAL_CATALOG: Catalog = { references: LEAD_REFERENCES, notPersonal: NOT_PERSONAL, mergeRules: Object.keys(MERGE_RULES) }

/**
 * Everything wrong between the catalog and the database, one line each (empty: they agree). Reads pg_catalog as
 * the owner, so it sees every schema whatever the runtime role may read.
 */
export async function checkLeadReferences(owner: Sql, catalog: Catalog = REAL_CATALOG): Promise<string[]> {
  const columns = await owner<Column[]>`
    select n.nspname || '.' || c.relname as table, a.attname as column,
           exists (select 1 from pg_attribute t where t.attrelid = c.oid and t.attname = 'tenant_id' and not t.attisdropped) as has_tenant_id
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and not c.relispartition and a.attnum > 0 and not a.attisdropped
       and n.nspname <> all(${EXCLUDED_SCHEMAS}) and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast%'
     order by 1, 2`
  // Partitions carry their parent's foreign keys; the parent is the table the catalog names.
  const leadKeys = await owner<{ table: string; column: string }[]>`
    select n.nspname || '.' || c.relname as table, a.attname as column
      from pg_constraint k
      join pg_class c on c.oid = k.conrelid
      join pg_namespace n on n.oid = c.relnamespace
      cross join lateral unnest(k.conkey) as key(attnum)
      join pg_attribute a on a.attrelid = k.conrelid and a.attnum = key.attnum
     where k.contype = 'f' and k.confrelid = 'marketing.leads'::regclass and not c.relispartition
     order by 1, 2`

  // The leading key columns of every index: a lead column must lead one (alone or after tenant_id, which RLS supplies).
  const indexes = await owner<{ table: string; columns: string[] }[]>`
    select n.nspname || '.' || c.relname as table,
           array(select a.attname from unnest(i.indkey[0:1]) with ordinality as k(attnum, ord)
                   join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum order by k.ord) as columns
      from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
     where n.nspname <> all(${EXCLUDED_SCHEMAS})`
  const indexed = (table: string, column: string) =>
    indexes.some((i) => i.table === table && (i.columns[0] === column || (i.columns[0] === 'tenant_id' && i.columns[1] === column)))

  const problems: string[] = []
  const tables = new Map<string, { columns: Set<string>; hasTenantId: boolean }>()
  for (const c of columns) {
    const t = tables.get(c.table) ?? { columns: new Set<string>(), hasTenantId: c.hasTenantId }
    t.columns.add(c.column)
    tables.set(c.table, t)
  }
  const exists = (table: string, column: string) => tables.get(table)?.columns.has(column) ?? false
  const isLeadKey = (table: string, column: string) =>
    (table === 'marketing.leads' && column === 'id') || leadKeys.some((k) => k.table === table && k.column === column)
  const entriesOf = (table: string) => catalog.references.filter((r) => r.table === table)

  // 1. Every foreign key to marketing.leads is an entry's reach column.
  for (const k of leadKeys) {
    const entries = entriesOf(k.table)
    if (entries.length === 0) problems.push(`${k.table} has a foreign key to marketing.leads (${k.column}) and no entry in LEAD_REFERENCES`)
    else if (!entries.some((r) => r.reach.by === 'lead' && r.reach.column === k.column)) {
      problems.push(`${k.table}.${k.column} references marketing.leads but no entry reaches the lead through it`)
    }
  }

  // 2. Every column named like a person's data is catalogued or declared not personal.
  const covered = (table: string, column: string) =>
    entriesOf(table).some((r) =>
      r.personal.includes(column) ||
      (r.reach.by === 'lead' && r.reach.column === column) ||
      (r.reach.by === 'parent' && r.reach.column === column) ||
      (r.reach.by === 'content' && r.reach.columns.includes(column)))
  for (const c of columns) {
    if (!looksPersonal(c.column)) continue
    const key = `${c.table}.${c.column}`
    if (!covered(c.table, c.column) && !(key in catalog.notPersonal)) {
      problems.push(`${key} looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason`)
    }
  }

  // 3. Every name the catalog uses exists, and every policy is one merge and erasure can carry out.
  const seen = new Set<string>()
  for (const r of catalog.references) {
    const where = `${r.table} (reach ${r.reach.by}${'column' in r.reach ? ` ${r.reach.column}` : ''})`
    if (!tables.has(r.table)) {
      problems.push(`${where}: table ${r.table} does not exist`)
      continue
    }
    const column = (name: string, role: string) => {
      if (!exists(r.table, name)) problems.push(`${where}: ${role} column ${r.table}.${name} does not exist`)
    }
    const id = `${r.table}|${r.reach.by}|${'column' in r.reach ? r.reach.column : r.reach.columns.join(',')}`
    if (seen.has(id)) problems.push(`${where}: listed twice`)
    seen.add(id)
    switch (r.reach.by) {
      case 'lead':
        column(r.reach.column, 'reach')
        if (exists(r.table, r.reach.column) && !isLeadKey(r.table, r.reach.column)) problems.push(`${where}: ${r.reach.column} is not a foreign key to marketing.leads`)
        if (exists(r.table, r.reach.column) && !indexed(r.table, r.reach.column)) {
          problems.push(`${where}: no index leads with ${r.reach.column} (or tenant_id, ${r.reach.column}), so every merge and erasure scans the table`)
        }
        break
      case 'parent': {
        const { parent, parentColumn } = r.reach
        column(r.reach.column, 'reach')
        if (!catalog.references.some((p) => p.table === parent)) problems.push(`${where}: parent ${parent} is not catalogued`)
        if (!exists(parent, parentColumn)) problems.push(`${where}: parent column ${parent}.${parentColumn} does not exist`)
        if (exists(r.table, r.reach.column) && !indexed(r.table, r.reach.column)) {
          problems.push(`${where}: no index leads with ${r.reach.column} (or tenant_id, ${r.reach.column}), so erasure scans the table for each parent`)
        }
        break
      }
      case 'content':
        for (const c of r.reach.columns) column(c, 'content')
        if (r.reach.keys.length === 0) problems.push(`${where}: a content reach must say which identity keys to search for`)
        break
    }
    for (const c of r.personal) column(c, 'personal')
    if (r.erase.kind === 'anonymise') {
      for (const c of r.erase.null) column(c, 'erase null')
      for (const c of r.erase.redact) column(c, 'erase redact')
    }
    if (r.merge.kind === 'move' && r.reach.by !== 'lead') problems.push(`${where}: only rows holding a lead id can be moved; use follows`)
    if (r.merge.kind === 'follows' && r.reach.by === 'lead') problems.push(`${where}: rows holding a lead id must be moved, kept or combined by a merge, not follow`)
    if (r.merge.kind === 'combine' && !catalog.mergeRules.includes(r.merge.rule)) problems.push(`${where}: merge rule ${r.merge.rule} does not exist`)
    if (r.merge.kind === 'keep' && !r.merge.why.trim()) problems.push(`${where}: keep needs its reason`)
    const hasTenantId = tables.get(r.table)!.hasTenantId
    if (r.platform && hasTenantId) problems.push(`${where}: marked platform but has tenant_id`)
    if (!r.platform && !hasTenantId) problems.push(`${where}: has no tenant_id, so it must be marked platform`)
  }
  for (const [key, why] of Object.entries(catalog.notPersonal)) {
    const [schema, table, col] = key.split('.')
    if (!col || !exists(`${schema}.${table}`, col)) problems.push(`NOT_PERSONAL names ${key}, which does not exist`)
    if (!why.trim()) problems.push(`NOT_PERSONAL ${key} has no reason`)
    if (col && covered(`${schema}.${table}`, col)) problems.push(`${key} is both catalogued and declared not personal`)
  }
  return problems
}

describe('the lead-references catalog covers every table and column that refers to a person', () => {
  const db = useTestDatabase()

  it('agrees with the schema: every lead foreign key and personal-looking column is catalogued, every catalogued name exists', async () => {
    expect(await checkLeadReferences(db.current.owner)).toEqual([])
  })

  it('sees every schema, including platform tables and the migrations bookkeeping', async () => {
    // The discovery would pass vacuously if it saw nothing; these are the columns it must have judged.
    const [seen] = await db.current.owner<{ n: number }[]>`
      select count(*)::int as n from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace s on s.oid = c.relnamespace
       where s.nspname || '.' || c.relname || '.' || a.attname in ('whatsapp.webhook_deliveries.payload', 'marketing.leads.phone_e164', 'app_private.schema_migrations.name')`
    expect(seen!.n).toBe(3)
  })

  describe('fails when the database and the catalog drift apart', () => {
    // What the checker reports beyond the real schema's own state (which the first test holds at none).
    const newProblems = async (catalog?: Catalog) => {
      const baseline = new Set(await checkLeadReferences(db.current.owner))
      return (await checkLeadReferences(db.current.owner, catalog)).filter((p) => !baseline.has(p))
    }

    it('reports a new table with a lead foreign key and personal columns that nobody catalogued', async () => {
      const o = db.current.owner
      await o`
        create table marketing.catalog_probe (
          id bigint generated always as identity primary key,
          tenant_id uuid not null references core.tenants (id) on delete cascade,
          lead_id uuid references marketing.leads (id) on delete cascade,
          contact_phone text,
          visitor_ip inet
        )`
      await o`create table analytics.catalog_probe_sessions (id bigint primary key, tenant_id uuid, user_agent text, email_hash text)`
      let baseline: Set<string> = new Set()
      try {
        const problems = await checkLeadReferences(o)
        expect(problems).toEqual(expect.arrayContaining([
          'marketing.catalog_probe has a foreign key to marketing.leads (lead_id) and no entry in LEAD_REFERENCES',
          'marketing.catalog_probe.lead_id looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
          'marketing.catalog_probe.contact_phone looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
          'marketing.catalog_probe.visitor_ip looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
          'analytics.catalog_probe_sessions.user_agent looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
          'analytics.catalog_probe_sessions.email_hash looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
        ]))
        expect(problems.filter((p) => p.includes('catalog_probe'))).toHaveLength(6)
        baseline = new Set(problems.filter((p) => !p.includes('catalog_probe')))
        const withoutBaseline = async (catalog: Catalog) => (await checkLeadReferences(o, catalog)).filter((p) => !baseline.has(p))

        // Catalogued (and indexed for merge and erasure), the table passes; a second lead key on it must be catalogued too.
        const probe: LeadReference = {
          table: 'marketing.catalog_probe', reach: { by: 'lead', column: 'lead_id' }, personal: ['contact_phone', 'visitor_ip'],
          merge: { kind: 'move' }, erase: { kind: 'delete' },
        }
        const sessions: LeadReference = {
          table: 'analytics.catalog_probe_sessions', reach: { by: 'content', columns: ['user_agent'], keys: ['name'] }, personal: [],
          merge: { kind: 'follows' }, erase: { kind: 'delete' },
        }
        const withProbe = { ...REAL_CATALOG, references: [...LEAD_REFERENCES, probe, sessions], notPersonal: { ...NOT_PERSONAL, 'analytics.catalog_probe_sessions.email_hash': 'a test' } }
        expect(await withoutBaseline(withProbe)).toEqual([
          'marketing.catalog_probe (reach lead lead_id): no index leads with lead_id (or tenant_id, lead_id), so every merge and erasure scans the table',
        ])
        await o`create index on marketing.catalog_probe (tenant_id, lead_id)`
        expect(await withoutBaseline(withProbe)).toEqual([])
        await o`alter table marketing.catalog_probe add column referred_by_lead_id uuid references marketing.leads (id) on delete set null`
        expect(await withoutBaseline(withProbe)).toEqual([
          'marketing.catalog_probe.referred_by_lead_id references marketing.leads but no entry reaches the lead through it',
          'marketing.catalog_probe.referred_by_lead_id looks personal and is neither in LEAD_REFERENCES nor declared in NOT_PERSONAL with a reason',
        ])
      } finally {
        await o`drop table marketing.catalog_probe`
        await o`drop table analytics.catalog_probe_sessions`
      }
      expect((await checkLeadReferences(o)).filter((p) => !baseline.has(p))).toEqual([])
    })

    it('reports entries and declarations naming tables, columns or rules that do not exist', async () => {
      const rotten: LeadReference[] = [
        { table: 'marketing.lead_scores', reach: { by: 'lead', column: 'lead_id' }, personal: [], merge: { kind: 'move' }, erase: { kind: 'delete' } },
        { table: 'marketing.consents', reach: { by: 'lead', column: 'person_id' }, personal: ['ip_address'], merge: { kind: 'move' }, erase: { kind: 'delete' } },
        { table: 'marketing.forms', reach: { by: 'lead', column: 'id' }, personal: [], merge: { kind: 'combine', rule: 'mergeForms' }, erase: { kind: 'delete' } },
        {
          table: 'whatsapp.management_events', reach: { by: 'parent', column: 'item_key', parent: 'whatsapp.calls', parentColumn: 'wamid' }, personal: [],
          merge: { kind: 'move' }, erase: { kind: 'anonymise', null: ['recipient'], redact: [], why: 'counts' },
        },
      ]
      const problems = await newProblems({
        ...REAL_CATALOG, references: [...LEAD_REFERENCES, ...rotten], notPersonal: { ...NOT_PERSONAL, 'whatsapp.phone_numbers.owner_phone': 'gone' },
      })
      expect(problems).toEqual([
        'marketing.lead_scores (reach lead lead_id): table marketing.lead_scores does not exist',
        'marketing.consents (reach lead person_id): reach column marketing.consents.person_id does not exist',
        'marketing.consents (reach lead person_id): personal column marketing.consents.ip_address does not exist',
        'marketing.forms (reach lead id): id is not a foreign key to marketing.leads',
        'marketing.forms (reach lead id): merge rule mergeForms does not exist',
        'whatsapp.management_events (reach parent item_key): parent whatsapp.calls is not catalogued',
        'whatsapp.management_events (reach parent item_key): parent column whatsapp.calls.wamid does not exist',
        'whatsapp.management_events (reach parent item_key): erase null column whatsapp.management_events.recipient does not exist',
        'whatsapp.management_events (reach parent item_key): only rows holding a lead id can be moved; use follows',
        'NOT_PERSONAL names whatsapp.phone_numbers.owner_phone, which does not exist',
      ])
    })
  })
})
