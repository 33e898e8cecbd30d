-- A visitor's anonymous id (the site's page views, form views) is linked to the lead a form submission or a click-to-WhatsApp proves it to be, so earlier and later events of that visitor count for the lead.

create table analytics.identities (
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- As the page sent it (POST /v1/events anonymousId, a form's anonymous_id, a WhatsApp text's [ref:…] token).
  anonymous_id text not null check (length(anonymous_id) between 1 and 200),
  -- The live lead at link time; a merge moves it to the survivor (lead-references catalog), an erasure deletes the row.
  lead_id uuid not null references marketing.leads (id) on delete cascade,
  -- What proved the link: 'form' (a submission), 'whatsapp' (a message carrying the token), 'api' (an identify call).
  via text not null check (via in ('form', 'whatsapp', 'api')),
  linked_at timestamptz not null default now(),
  -- One visitor, one lead: the first link wins (a shared device does not move earlier page views to someone else).
  primary key (tenant_id, anonymous_id)
);
create index identities_lead_idx on analytics.identities (tenant_id, lead_id);
alter table analytics.identities enable row level security;
alter table analytics.identities force row level security;
create policy tenant_isolation on analytics.identities
  using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id());
grant select, insert, delete on analytics.identities to app_user;
grant update (lead_id) on analytics.identities to app_user;

