-- Draft autosave flushes looked their campaigns up through the tenant's index (every campaign of the tenant hashed per flush, as jsonb_to_recordset's rows are guessed at 100): now by primary key, one probe per draft saved.

-- Same contract as 0052's campaigns.save_drafts (see there); only how the campaigns and live drafts are found changed:
-- `= any(array(...))` over the flush's ids is an index probe per id whatever the statistics say, where `in (select …)`
-- let the planner scan and hash all of the tenant's campaigns.
create or replace function campaigns.save_drafts(p_batches jsonb, p_ttl_days integer)
  returns table (tenant_id uuid, campaign_id uuid, base_version integer, saves integer, saved_at timestamptz, expires_at timestamptz, implicit_base integer)
  language plpgsql volatile security invoker set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  caller_tenant text := current_setting('app.tenant_id', true);
  b jsonb;
begin
  for b in select value from jsonb_array_elements(p_batches) loop
    -- Transaction-local, as withTenant sets it; the statement below runs under this tenant's policies only.
    perform set_config('app.tenant_id', b->>'tenantId', true);
    return query
      with input as (
        select r.campaign_id, r.step, r.data, r.base_version, r.n
          from jsonb_to_recordset(b->'rows') as r(campaign_id uuid, step text, data jsonb, base_version integer, n integer)
      ), target as (
        select c.id, c.tenant_id, c.version from campaigns.campaigns c
         where c.id = any(array(select i.campaign_id from input i)) and c.deleted_at is null
      ), prior as (
        -- The statement's snapshot: a draft another process inserts meanwhile is still met by on conflict below (so
        -- what is stored is right); only the answers of saves folded before the last could show the campaign's version.
        select d.campaign_id, d.base_version from campaigns.campaign_drafts d
         where d.campaign_id = any(array(select t.id from target t)) and d.expires_at > now()
      ), saved as (
        insert into campaigns.campaign_drafts as d (campaign_id, tenant_id, step, data, base_version, saves, saved_at, expires_at)
        select t.id, t.tenant_id, i.step, i.data, coalesce(i.base_version, t.version), i.n, now(), now() + make_interval(days => p_ttl_days)
          from input i join target t on t.id = i.campaign_id
         -- One lock order for every flush, so two processes' (or lanes') flushes touching the same drafts cannot deadlock.
         order by t.id
        on conflict (campaign_id) do update
           set step = excluded.step, data = excluded.data, saves = d.saves + excluded.saves, saved_at = excluded.saved_at,
               expires_at = excluded.expires_at,
               -- A save naming its base version sets it; otherwise a live draft keeps its own, and an expired one (not
               -- yet swept) is a new one, starting from the campaign as it is now.
               base_version = case when (select i.base_version from input i where i.campaign_id = d.campaign_id) is not null then excluded.base_version
                                   when d.expires_at <= now() then excluded.base_version else d.base_version end
        returning d.tenant_id, d.campaign_id, d.base_version, d.saves, d.saved_at, d.expires_at
      )
      select s.tenant_id, s.campaign_id, s.base_version, s.saves, s.saved_at, s.expires_at, coalesce(p.base_version, t.version)
        from saved s join target t on t.id = s.campaign_id left join prior p on p.campaign_id = s.campaign_id;
  end loop;
  perform set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
end $$;
revoke execute on function campaigns.save_drafts(jsonb, integer) from public;
grant execute on function campaigns.save_drafts(jsonb, integer) to app_user;
