-- The AI analysis cache (0036) reclaimed an expired entry only when the same pattern came again: patterns that never
-- recur stayed forever. assessments__prune_analysis_cache deletes expired entries, and claims left by a job that
-- died, in batches across tenants.

create index analysis_cache_ready_expiry_idx on assessments.analysis_cache (expires_at) where status = 'ready';
create index analysis_cache_claim_idx on assessments.analysis_cache (claimed_at) where status = 'pending';

-- Cross-tenant: deletes up to p_limit entries of any tenant that expired, or whose claim is older than
-- p_stale_seconds (the claiming job died; claimCache would take such a claim over too), skipping rows a job holds.
-- Returns how many went. Security definer because the cache is RLS-forced; it touches such entries only, and the
-- delete re-checks, so an entry claimed or filled meanwhile stays.
create function assessments.prune_analysis_cache(p_limit integer, p_stale_seconds integer)
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with doomed as (
    (select tenant_id, pattern_hash from assessments.analysis_cache
      where status = 'ready' and expires_at <= now() order by expires_at limit greatest(p_limit, 0))
    union all
    (select tenant_id, pattern_hash from assessments.analysis_cache
      where status = 'pending' and claimed_at < now() - make_interval(secs => p_stale_seconds) order by claimed_at limit greatest(p_limit, 0))
  ), locked as (
    select c.tenant_id, c.pattern_hash from assessments.analysis_cache c join doomed d using (tenant_id, pattern_hash)
     limit greatest(p_limit, 0) for update of c skip locked
  ), gone as (
    delete from assessments.analysis_cache c using locked l
     where c.tenant_id = l.tenant_id and c.pattern_hash = l.pattern_hash
       and ((c.status = 'ready' and c.expires_at <= now())
         or (c.status = 'pending' and c.claimed_at < now() - make_interval(secs => p_stale_seconds)))
    returning 1
  )
  select count(*)::integer from gone
$$;
revoke execute on function assessments.prune_analysis_cache(integer, integer) from public;
grant execute on function assessments.prune_analysis_cache(integer, integer) to app_user;
