import type { Tx } from '../../../lib/db.js'

// ---------------------------------------------------------------------------------------------------------
// Set-based identity resolution and recording of a batch of sightings (see resolve-batch.ts). Each statement takes
// the whole batch as one jsonb parameter: one round trip whatever the batch size.

/** A live lead as the batch resolver needs it: its keys and the columns a sighting may fill. */
export interface BatchLead {
  id: string
  email: string | null
  phoneE164: string | null
  phoneKey: string | null
  name: string | null
  company: string | null
}

/**
 * Every live lead holding one of the batch's emails or phone keys, locked, in one statement. Each key is one lookup
 * in its unique index (joined from the key list: an `or` of `= any(…)` let the planner walk a whole tenant's index);
 * the leads found are then locked in phone key order like WhatsApp ingestion's upsert (then id), so a form batch and
 * a WhatsApp batch take shared leads in the same order.
 */
export const lockLeadsByKeys = (tx: Tx, emails: string[], phoneKeys: string[]) =>
  tx<BatchLead[]>`
    with found as materialized (
      select l.id from unnest(${emails}::text[]) k(email) join marketing.leads l on l.email = k.email and l.merged_into is null
      union
      select l.id from unnest(${phoneKeys}::text[]) k(phone_key) join marketing.leads l on l.phone_key = k.phone_key and l.merged_into is null
    )
    select l.id, l.email, l.phone_e164, l.phone_key, l.name, l.company
      from marketing.leads l
     where l.id = any(array(select id from found)) and l.merged_into is null
     order by l.phone_key, l.id
       for update`

export interface NewLeadRow {
  id: string
  email: string | null
  phone_e164: string | null
  phone_key: string | null
  name: string | null
  company: string | null
  source: string
  source_details: unknown
  fields: Record<string, unknown>
  first_seen_at: string
  last_seen_at: string
}

/**
 * The batch's new people, in one statement, with ids chosen by the caller. Like every writer here it is sent when
 * called (not when awaited), so statements called in order are pipelined in that order. `on conflict do nothing` (both partial
 * unique indexes): a key another writer claimed since the leads were read is not taken twice; the caller sees the
 * missing id and resolves again.
 */
export const insertNewLeads = (tx: Tx, tenantId: string, rows: NewLeadRow[]) =>
  rows.length === 0
    ? Promise.resolve([] as { id: string }[])
    : tx<{ id: string }[]>`
        insert into marketing.leads (id, tenant_id, email, phone_e164, phone_key, name, company, source, source_details, fields, first_seen_at, last_seen_at)
        select x.id, ${tenantId}, x.email, x.phone_e164, x.phone_key, x.name, x.company, x.source, x.source_details, x.fields, x.first_seen_at, x.last_seen_at
          from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
               as x(id uuid, email text, phone_e164 text, phone_key text, name text, company text, source text, source_details jsonb, fields jsonb,
                    first_seen_at timestamptz, last_seen_at timestamptz)
         order by x.phone_key, x.email
        on conflict do nothing
        returning id`.then((r) => [...r])

export interface LeadFillRow {
  id: string
  email: string | null
  phone_e164: string | null
  phone_key: string | null
  name: string | null
  company: string | null
  /** The batch's custom fields for this lead, later sightings winning: they win over the lead's too. */
  fields: Record<string, unknown>
  first_seen_at: string
  last_seen_at: string
}

/** Known people seen again, in one statement: fill what each lead lacks, never overwrite (as applySighting). */
export const fillLeads = (tx: Tx, rows: LeadFillRow[]) =>
  rows.length === 0
    ? Promise.resolve()
    : tx`
        update marketing.leads l set
          email = coalesce(l.email, x.email),
          phone_e164 = coalesce(l.phone_e164, x.phone_e164),
          phone_key = coalesce(l.phone_key, x.phone_key),
          name = coalesce(l.name, x.name),
          company = coalesce(l.company, x.company),
          fields = l.fields || x.fields,
          first_seen_at = least(l.first_seen_at, x.first_seen_at),
          last_seen_at = greatest(l.last_seen_at, x.last_seen_at),
          updated_at = now()
        from jsonb_to_recordset(${tx.json(rows as never)}::jsonb)
             as x(id uuid, email text, phone_e164 text, phone_key text, name text, company text, fields jsonb, first_seen_at timestamptz, last_seen_at timestamptz)
        where l.id = x.id`.then(() => undefined)
