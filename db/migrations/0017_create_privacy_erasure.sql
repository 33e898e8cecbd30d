-- Erasure with a receipt: erasure requests and their per-table receipt, suppressions (keyed hashes only) for erased people, the narrow doors erasure needs into platform tables, and the verification sweep over every column of the database.

create schema if not exists privacy;
grant usage on schema privacy to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- One erasure of one subject (a lead id, an email or a phone), done by the privacy__erase_subject job in steps.
-- Nothing here names the person: the subject is a keyed hash (HMAC under SECRETS_KEY), and while the work runs the
-- subject itself is kept sealed (AES-GCM under SECRETS_KEY) so a crashed job can resume; it is cleared when the
-- request completes or fails. erased_lead_ids are the ids of leads that no longer exist once the request completes.
create table privacy.erasure_requests (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  subject_kind text not null check (subject_kind in ('lead', 'email', 'phone')),
  subject_hash text not null,
  status text not null default 'pending' check (status in ('pending', 'running', 'completed', 'failed')),
  requested_by text not null,
  request_id text,
  subject_sealed text,
  erased_lead_ids uuid[] not null default '{}',
  -- The steps already applied, each committed with its receipt lines (so a resumed job skips them).
  steps_done text[] not null default '{}',
  -- The receipt: { "<schema.table>": { "deleted": n, "anonymised": n } }, only tables where something was done.
  tables jsonb not null default '{}',
  attempts integer not null default 0,
  error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  verified_at timestamptz,
  updated_at timestamptz not null default now(),
  check (status <> 'completed' or (verified_at is not null and subject_sealed is null))
);
-- One open request per subject: a second request while one runs is the same request.
create unique index erasure_requests_open_uidx on privacy.erasure_requests (tenant_id, subject_hash) where status in ('pending', 'running');
create index erasure_requests_subject_idx on privacy.erasure_requests (tenant_id, subject_hash, created_at desc);
create index erasure_requests_list_idx on privacy.erasure_requests (tenant_id, created_at desc, id desc);

-- An erased person's identity keys, as keyed hashes only, so that nobody contacts or recreates them silently.
create table privacy.suppressions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  key_kind text not null check (key_kind in ('email', 'phone', 'wa_id')),
  key_hash text not null,
  erasure_request_id uuid references privacy.erasure_requests (id) on delete set null,
  -- Form submissions dropped because they came without fresh consent (nothing of them is kept but this count).
  blocked_submissions integer not null default 0,
  last_blocked_at timestamptz,
  created_at timestamptz not null default now(),
  unique (tenant_id, key_hash)
);
create index suppressions_list_idx on privacy.suppressions (tenant_id, created_at desc, id desc);

do $$
declare t text;
begin
  foreach t in array array['privacy.erasure_requests', 'privacy.suppressions'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

grant select, insert, update on privacy.erasure_requests to app_user;
grant select, insert, update, delete on privacy.suppressions to app_user;

-- A person who comes back after being erased (a new WhatsApp message, or a form with fresh consent) is a new lead,
-- marked so: the business sees why a known-looking number has no history.
alter table marketing.leads add column returning_after_erasure_at timestamptz;

-- Erasure finds a person's leads by their keys, merged-away leads included (they keep their keys; the unique indexes
-- cover only live leads), and their analytics events by lead.
create index leads_merged_email_idx on marketing.leads (tenant_id, email) where merged_into is not null;
create index leads_merged_phone_key_idx on marketing.leads (tenant_id, phone_key) where merged_into is not null;
create index events_erasure_lead_idx on analytics.events (tenant_id, lead_id) where lead_id is not null;

-- ---------------------------------------------------------------------------------------------------------
-- Erasure removes or anonymises rows that are otherwise append-only for the services (histories and logs). Only
-- the erasure path deletes from them; the tenant policy still applies, so it reaches only its own tenant's rows.
grant delete on marketing.lead_interactions, marketing.form_submissions, marketing.consents, marketing.lead_merges,
  whatsapp.message_statuses to app_user;
grant update (lead_id, properties) on analytics.events to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- Platform tables (no tenant_id, outside RLS) hold raw payloads that mention people. Erasure reaches them only
-- through these functions, each scoped to the numbers (and business accounts) of the transaction's tenant
-- (core.current_tenant_id(), set by withTenant), and matching rows by the subject's identity strings (lowercase;
-- compared with the lowercased text of the row).

-- The tenant's Meta phone number ids and WABA ids.
create function privacy.tenant_route_keys()
  returns text[]
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select coalesce(array_agg(k), '{}') from (
    select p.phone_number_id as k from whatsapp.phone_numbers p where p.tenant_id = core.current_tenant_id()
    union
    select b.waba_id from whatsapp.business_accounts b where b.tenant_id = core.current_tenant_id()
  ) keys
$$;

-- True when some needle occurs in the text.
create function privacy.mentions(p_text text, p_needles text[])
  returns boolean
  language sql immutable parallel safe set search_path = pg_catalog, pg_temp
as $$ select exists (select 1 from unnest(p_needles) n where strpos(lower(p_text), n) > 0) $$;

-- Deliveries for the tenant's numbers that mention the subject and are not applied yet ('received' or 'failed'
-- and retrying): erasure waits for them, so what they create is erased too.
create function privacy.count_pending_deliveries(p_needles text[])
  returns integer
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select count(*)::int from whatsapp.webhook_deliveries d
   where d.status in ('received', 'failed')
     and jsonb_path_query_array(d.payload, '$.entry[*].changes[*].value.metadata.phone_number_id') ?| privacy.tenant_route_keys()
     and privacy.mentions(d.payload::text, p_needles)
$$;

-- Applied (or parked) deliveries for the tenant's numbers that mention the subject: deleted (with their quarantined
-- items, by cascade; those are counted apart first by erase_quarantined_items).
create function privacy.erase_webhook_deliveries(p_needles text[])
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with gone as (
    delete from whatsapp.webhook_deliveries d
     where d.status in ('processed', 'parked')
       and jsonb_path_query_array(d.payload, '$.entry[*].changes[*].value.metadata.phone_number_id') ?| privacy.tenant_route_keys()
       and privacy.mentions(d.payload::text, p_needles)
    returning 1
  )
  select count(*)::int from gone
$$;

-- Raw bytes never routed: those naming one of the tenant's numbers and the subject.
create function privacy.erase_unparseable_deliveries(p_needles text[])
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with gone as (
    delete from whatsapp.unparseable_deliveries u
     where privacy.mentions(encode(u.raw_body, 'escape'), p_needles)
       and exists (select 1 from unnest(privacy.tenant_route_keys()) k where strpos(encode(u.raw_body, 'escape'), k) > 0)
    returning 1
  )
  select count(*)::int from gone
$$;

-- Quarantined items addressed to a number or WABA this tenant has registered since.
create function privacy.erase_quarantined_items(p_needles text[])
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with gone as (
    delete from whatsapp.quarantined_items q
     where q.route_key = any(privacy.tenant_route_keys()) and privacy.mentions(q.item::text, p_needles)
    returning 1
  )
  select count(*)::int from gone
$$;

-- A lead id of another tenant: the API answers 404 for it (an unknown id of one's own is an empty erasure).
create function privacy.lead_of_another_tenant(p_lead_id uuid)
  returns boolean
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select exists (select 1 from marketing.leads l where l.id = p_lead_id and l.tenant_id is distinct from core.current_tenant_id())
$$;

-- Pending jobs (not running) whose payload names one of the given ids (the subject's leads, messages,
-- conversations, submissions): cancelled by deletion. A job naming several people (a batch) is left alone: the rows
-- it names are gone, so it finds nothing of the subject; the verification pass proves no payload holds them.
-- plpgsql: graphile_worker's tables are installed after the SQL migrations, and this body is resolved when it runs.
create function privacy.cancel_jobs_naming(p_ids text[])
  returns integer
  language plpgsql volatile security definer set search_path = pg_catalog, pg_temp
as $$
declare n integer;
begin
  with gone as (
    delete from graphile_worker._private_jobs j
     where j.locked_at is null
       and case when json_typeof(j.payload) = 'object' then
             j.payload->>'tenantId' = core.current_tenant_id()::text
             and exists (select 1 from json_each_text(j.payload) e
                          where e.key in ('leadId', 'messageId', 'conversationId', 'submissionId') and e.value = any(p_ids))
           else false end
    returning 1
  )
  select count(*)::int into n from gone;
  return n;
end $$;

-- ---------------------------------------------------------------------------------------------------------
-- The verification pass: every text, varchar, char, json, jsonb and bytea column (and arrays of them) of every
-- table in every schema but PostgreSQL's own, discovered from pg_catalog when it runs, searched for the needles.
-- Tenant tables are searched in the current tenant's rows; the three raw whatsapp inboxes in rows for the tenant's
-- numbers; every other table (graphile_worker's, app_private's, platform tables) whole. Answers table and column
-- with a hit, never the value. Owner's rights, so no policy hides a row.
create function privacy.find_mentions(p_needles text[])
  returns table (table_name text, column_name text)
  language plpgsql stable security definer set search_path = pg_catalog, pg_temp
as $$
declare
  t record;
  c record;
  scope text;
  exprs text[];
  names text[];
  tests text;
  hit boolean;
  i integer;
  tenant uuid;
  route_keys text[];
begin
  if coalesce(array_length(p_needles, 1), 0) = 0 then return; end if;
  tenant := core.current_tenant_id();
  route_keys := privacy.tenant_route_keys();
  -- The needles as literal tests on one lowercased text `x`: strpos per needle, no function call per row.
  select string_agg(format('strpos(x, %L) > 0', lower(n)), ' or ') into tests from unnest(p_needles) n;
  for t in
    select cl.oid, n.nspname, cl.relname,
           exists (select 1 from pg_attribute a where a.attrelid = cl.oid and a.attname = 'tenant_id' and not a.attisdropped) as tenant_owned
      from pg_class cl join pg_namespace n on n.oid = cl.relnamespace
     where cl.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'
       and n.nspname not like 'pg_temp%'
     order by 2, 3
  loop
    exprs := '{}';
    names := '{}';
    for c in
      select a.attname, ty.typcategory, coalesce(el.typname, ty.typname) as base
        from pg_attribute a join pg_type ty on ty.oid = a.atttypid left join pg_type el on el.oid = ty.typelem and ty.typcategory = 'A'
       where a.attrelid = t.oid and a.attnum > 0 and not a.attisdropped
         and coalesce(el.typname, ty.typname) in ('text', 'varchar', 'bpchar', 'json', 'jsonb', 'bytea', 'citext', 'name')
       order by a.attnum
    loop
      exprs := exprs || case when c.base = 'bytea' and c.typcategory <> 'A' then format('encode(t.%I, ''escape'')', c.attname) else format('t.%I::text', c.attname) end;
      names := names || c.attname::text;
    end loop;
    if array_length(exprs, 1) is null then continue; end if;
    -- Literals, not function calls, so that the scans can run in parallel.
    scope := case
      when t.tenant_owned then format('t.tenant_id = %L::uuid', tenant)
      when t.nspname = 'whatsapp' and t.relname = 'webhook_deliveries' then
        format($s$jsonb_path_query_array(t.payload, '$.entry[*].changes[*].value.metadata.phone_number_id') ?| %L::text[]$s$, route_keys)
      when t.nspname = 'whatsapp' and t.relname = 'quarantined_items' then format('t.route_key = any(%L::text[])', route_keys)
      when t.nspname = 'whatsapp' and t.relname = 'unparseable_deliveries' then
        format($s$exists (select 1 from unnest(%L::text[]) k where strpos(encode(t.raw_body, 'escape'), k) > 0)$s$, route_keys)
      else 'true' end;
    -- One pass over the table with the row's columns joined (the usual case: no hit, and a full scan is the cost:
    -- a count, not exists(), so that PostgreSQL may scan in parallel; lower() under the "C" collation, which folds
    -- ASCII only but is several times faster than the locale's, and identity strings are stored normalised) ...
    execute format('select count(*) > 0 from %I.%I t cross join lateral (select lower(concat_ws(chr(1), %s) collate "C") as x) r where %s and (%s)',
                   t.nspname, t.relname, array_to_string(exprs, ', '), scope, tests) into hit;
    if not hit then continue; end if;
    -- ... and only for a table with a hit, which columns.
    for i in 1 .. array_length(exprs, 1) loop
      execute format('select exists (select 1 from %I.%I t cross join lateral (select lower(%s collate "C") as x) r where %s and (%s))',
                     t.nspname, t.relname, exprs[i], scope, tests) into hit;
      if hit then
        table_name := t.nspname || '.' || t.relname;
        column_name := names[i];
        return next;
      end if;
    end loop;
  end loop;
end $$;

revoke execute on function privacy.tenant_route_keys(), privacy.count_pending_deliveries(text[]), privacy.erase_webhook_deliveries(text[]),
  privacy.erase_unparseable_deliveries(text[]), privacy.erase_quarantined_items(text[]), privacy.lead_of_another_tenant(uuid),
  privacy.cancel_jobs_naming(text[]), privacy.find_mentions(text[]) from public;
grant execute on function privacy.mentions(text, text[]), privacy.count_pending_deliveries(text[]), privacy.erase_webhook_deliveries(text[]),
  privacy.erase_unparseable_deliveries(text[]), privacy.erase_quarantined_items(text[]), privacy.lead_of_another_tenant(uuid),
  privacy.cancel_jobs_naming(text[]), privacy.find_mentions(text[]) to app_user;
