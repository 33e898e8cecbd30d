-- Clicks of partner links whose visitor never became a lead kept their network, address hash, user agent and
-- referrer forever. A tenant's retention settings now say how long (link_click_details_days, default 30), and
-- assessments__prune_click_details nulls those columns past it, in batches across tenants; the click row stays for
-- the counts. Clicks that name a lead keep theirs until the person is erased (the lead-references catalog).

alter table privacy.retention_settings
  add column link_click_details_days integer not null default 30 check (link_click_details_days between 1 and 3650);

-- Only what is still to prune: unlinked clicks that have a detail left. Pruned rows leave it.
create index link_clicks_details_to_prune_idx on assessments.link_clicks (clicked_at)
  where lead_id is null and (ip_prefix is not null or ip_hash is not null or user_agent is not null or referrer is not null);

-- Cross-tenant: nulls the details of up to p_limit clicks of any tenant that name no lead and are older than their
-- tenant's link_click_details_days (p_default_days for a tenant without settings), oldest first, skipping rows
-- another transaction holds (a visitor being joined to a lead right now). The first condition on clicked_at only
-- bounds the index range by the shortest period anyone has. Returns how many were pruned. Security definer because
-- both tables are RLS-forced; it touches such clicks' four detail columns only.
create function assessments.prune_link_click_details(p_limit integer, p_default_days integer)
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with doomed as (
    select c.id
      from assessments.link_clicks c
      left join privacy.retention_settings s on s.tenant_id = c.tenant_id
     where c.lead_id is null
       and (c.ip_prefix is not null or c.ip_hash is not null or c.user_agent is not null or c.referrer is not null)
       and c.clicked_at < now() - make_interval(days => least(p_default_days, (select min(link_click_details_days) from privacy.retention_settings)))
       and c.clicked_at < now() - make_interval(days => coalesce(s.link_click_details_days, p_default_days))
     order by c.clicked_at
     limit greatest(p_limit, 0)
       for update of c skip locked
  ), pruned as (
    update assessments.link_clicks c set ip_prefix = null, ip_hash = null, user_agent = null, referrer = null
      from doomed d
     where c.id = d.id and c.lead_id is null
    returning 1
  )
  select count(*)::integer from pruned
$$;
revoke execute on function assessments.prune_link_click_details(integer, integer) from public;
grant execute on function assessments.prune_link_click_details(integer, integer) to app_user;
