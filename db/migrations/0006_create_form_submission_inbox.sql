-- Public form submissions are committed to an inbox (group commit, one job per batch) and applied by the worker, so answering does not wait for identity resolution.

-- A validated submission waiting to be applied: the request's answer came after this row and its job committed.
-- The id is the submissionId the submitter was given and becomes the marketing.form_submissions row's id. Applying a
-- submission deletes its row in the same transaction (a replayed job finds nothing); rows that keep failing stay,
-- parked with their error.
create table marketing.form_submission_inbox (
  id uuid primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  form_id uuid not null references marketing.forms (id) on delete cascade,
  -- Everything validation produced (lead keys, answers, custom fields, UTM, pages, fill time, consent), as one
  -- document the worker parses with its zod schema.
  submission jsonb not null,
  ip inet,
  user_agent text,
  referer text,
  request_id text,
  received_at timestamptz not null,
  status text not null default 'received' check (status in ('received', 'failed', 'parked')),
  attempts integer not null default 0,
  last_error text
);
create index form_submission_inbox_status_idx on marketing.form_submission_inbox (tenant_id, status, received_at) where status <> 'received';

alter table marketing.form_submission_inbox enable row level security;
alter table marketing.form_submission_inbox force row level security;
create policy tenant_isolation on marketing.form_submission_inbox
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());

grant select, insert, update, delete on marketing.form_submission_inbox to app_user;

-- One group commit in one statement (one round trip, no BEGIN/COMMIT round trips while requests wait): for each
-- tenant in the batch, set the tenant transaction-locally, insert its rows and enqueue one job for them (the outbox:
-- all commit or none does). Invoker's rights: the caller's role and the table's policies apply as to any insert; the
-- caller's own tenant setting, if any, is put back before returning.
create function marketing.store_form_submissions(p_batches jsonb)
  returns table (stored integer, jobs integer)
  language plpgsql volatile security invoker set search_path = pg_catalog, pg_temp
as $$
declare
  caller_tenant text := current_setting('app.tenant_id', true);
  b jsonb;
  n integer;
  j integer;
begin
  stored := 0;
  jobs := 0;
  for b in select value from jsonb_array_elements(p_batches) loop
    perform set_config('app.tenant_id', b->>'tenantId', true);
    with inserted as (
      insert into marketing.form_submission_inbox (id, tenant_id, form_id, submission, ip, user_agent, referer, request_id, received_at)
      select r.id, (b->>'tenantId')::uuid, r.form_id, r.submission, r.ip, r.user_agent, r.referer, r.request_id, r.received_at
        from jsonb_to_recordset(b->'rows')
             as r(id uuid, form_id uuid, submission jsonb, ip inet, user_agent text, referer text, request_id text, received_at timestamptz)
      returning id
    ), job as (
      -- The task name is domains/marketing/forms/schemas.ts PROCESS_SUBMISSIONS_TASK.
      select graphile_worker.add_job('marketing__process_submissions', json_build_object('tenantId', b->>'tenantId', 'submissionIds', array_agg(id))) as added
        from inserted having count(*) > 0
    )
    select count(*)::int, (select count(*)::int from job) into n, j from inserted;
    stored := stored + n;
    jobs := jobs + j;
  end loop;
  perform set_config('app.tenant_id', coalesce(caller_tenant, ''), true);
  return next;
end $$;
revoke execute on function marketing.store_form_submissions(jsonb) from public;
grant execute on function marketing.store_form_submissions(jsonb) to app_user;
