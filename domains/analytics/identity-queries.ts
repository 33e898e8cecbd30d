import type { Tx } from '../../lib/db.js'

/** A link as the insert takes it (snake_case for jsonb_to_recordset). */
export interface IdentityRecord { anonymous_id: string; lead_id: string; via: 'form' | 'whatsapp' | 'api' }

/**
 * Links anonymous ids to leads (the live one: a merged lead's survivor), the first link of an id winning, and enqueues
 * one backfill job for the ids linked now, in one statement, so the job commits with the link or not at all. Returns
 * the ids that were new. The task name is schemas.ts LINK_ANONYMOUS_TASK.
 */
export const insertIdentities = (tx: Tx, task: string, rows: IdentityRecord[]) =>
  tx<{ anonymousId: string; leadId: string }[]>`
    with input as (
      select distinct on (r.anonymous_id) r.anonymous_id, coalesce(l.merged_into, l.id) as lead_id, r.via
        from jsonb_to_recordset(${tx.json(rows as never)}::jsonb) as r(anonymous_id text, lead_id uuid, via text)
        join marketing.leads l on l.id = r.lead_id
       order by r.anonymous_id
    ), linked as (
      insert into analytics.identities (tenant_id, anonymous_id, lead_id, via)
      select (select core.current_tenant_id()), anonymous_id, lead_id, via from input
      on conflict (tenant_id, anonymous_id) do nothing
      returning anonymous_id, lead_id
    ), job as (
      select graphile_worker.add_job(${task}, json_build_object('tenantId', core.current_tenant_id(), 'anonymousIds', array_agg(anonymous_id order by anonymous_id)))
        from linked having count(*) > 0
    )
    select linked.anonymous_id, linked.lead_id from linked left join job on true`

/** The live lead of each linked anonymous id. */
export const findLeadsForAnonymous = (tx: Tx, anonymousIds: readonly string[]) =>
  tx<{ anonymousId: string; leadId: string }[]>`
    select i.anonymous_id, coalesce(l.merged_into, l.id) as lead_id
      from analytics.identities i join marketing.leads l on l.id = i.lead_id
     where i.anonymous_id = any(${anonymousIds as string[]}::text[])`

export const findAnonymousIdsOfLead = (tx: Tx, leadId: string) =>
  tx<{ anonymousId: string }[]>`
    select anonymous_id from analytics.identities where lead_id = ${leadId} order by linked_at, anonymous_id`

/**
 * Backfill, one bounded batch: up to `limit` events of these visitors recorded before the link (no lead yet) get the
 * linked lead. Returns how many were updated; 0 when the visitors have no unlinked events left.
 */
export const linkEventsOfAnonymous = (tx: Tx, anonymousIds: readonly string[], limit: number) =>
  tx`
    update analytics.events e set lead_id = i.lead_id
      from analytics.identities i
     where e.id in (select x.id from analytics.events x
                     where x.anonymous_id = any(${anonymousIds as string[]}::text[]) and x.lead_id is null
                     limit ${limit})
       and i.tenant_id = e.tenant_id and i.anonymous_id = e.anonymous_id`.then((r) => r.count)
