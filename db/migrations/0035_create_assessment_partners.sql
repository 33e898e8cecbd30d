-- Partners (a tenant's distributors), their links with click and touch attribution, and the money that follows: products,
-- purchases, commissions, withdrawals and an append-only ledger whose running balance the database itself keeps >= 0.
create table assessments.partners (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  code text not null check (code ~ '^[a-z0-9][a-z0-9_-]{1,39}$'),
  name text not null check (length(name) between 1 and 200),
  -- The partner's default share of a sale (0.1000 = 10 %), used for products without their own rate.
  commission_rate numeric(5, 4) not null check (commission_rate >= 0 and commission_rate <= 1),
  tier text not null default 'standard' check (tier in ('standard', 'silver', 'gold', 'platinum')),
  status text not null default 'active' check (status in ('active', 'suspended', 'terminated')),
  currency char(3) not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  -- The available balance: written only by the ledger trigger below, under this row's lock; never negative.
  balance numeric(14, 2) not null default 0 check (balance >= 0),
  -- Reversed commissions the balance could not cover when the refund came (already withdrawn): settled from the next credits.
  clawback_due numeric(14, 2) not null default 0 check (clawback_due >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, code),
  unique (tenant_id, id)
);

create table assessments.links (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  partner_id uuid not null,
  assessment_id uuid not null,
  -- In public URLs (/l/<code>) before any tenant is known: unique across tenants.
  link_code text not null unique check (link_code ~ '^[A-Za-z0-9_-]{4,64}$'),
  campaign_name text not null default '' check (length(campaign_name) <= 200),
  type text not null default 'customer' check (type in ('customer', 'campaign')),
  target_audience text not null default '' check (length(target_audience) <= 500),
  focus_area text not null default '' check (length(focus_area) <= 200),
  -- Where GET /l/<code> sends a visitor by default: the assessment's web start, or a wa.me chat with the business.
  destination text not null default 'web' check (destination in ('web', 'whatsapp')),
  -- The business number of the wa.me link (null: the tenant's first active number).
  phone_number_id uuid references whatsapp.phone_numbers (id) on delete set null,
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, id),
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete cascade,
  foreign key (assessment_id) references assessments.assessments (id) on delete cascade
);
create index links_partner_idx on assessments.links (tenant_id, partner_id);

-- Sessions name the link and partner they came through (the columns are core's, 0034).
alter table assessments.sessions
  add constraint sessions_link_fk foreign key (link_id) references assessments.links (id) on delete set null,
  add constraint sessions_partner_fk foreign key (partner_id) references assessments.partners (id) on delete set null;

-- One row per visit of /l/<code>, including visits of an inactive link (outcome 'inactive', answered 404).
-- Privacy: the address is kept only truncated (IPv4 /24, IPv6 /48) plus a keyed hash of the full one (unique
-- visitors without the address); the user agent and referrer are cut to 500 / 1000 characters.
create table assessments.link_clicks (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  link_id uuid not null,
  partner_id uuid not null,
  outcome text not null check (outcome in ('web', 'whatsapp', 'inactive')),
  visitor_id text check (length(visitor_id) <= 64),
  -- Filled when the visitor becomes a known lead (a web session of this visitor gets a lead).
  lead_id uuid references marketing.leads (id) on delete set null,
  ip_prefix inet,
  ip_hash text,
  user_agent text check (length(user_agent) <= 500),
  referrer text check (length(referrer) <= 1000),
  is_bot boolean not null default false,
  clicked_at timestamptz not null default now(),
  foreign key (tenant_id, link_id) references assessments.links (tenant_id, id) on delete cascade
);
create index link_clicks_link_idx on assessments.link_clicks (tenant_id, link_id, clicked_at);
create index link_clicks_partner_idx on assessments.link_clicks (tenant_id, partner_id, clicked_at);
create index link_clicks_lead_idx on assessments.link_clicks (tenant_id, lead_id) where lead_id is not null;
create index link_clicks_visitor_idx on assessments.link_clicks (tenant_id, visitor_id) where visitor_id is not null;

-- First- and last-touch attribution of a subject (a lead, or a web visitor not yet a lead) to partner links. Each
-- touch (a click, a WhatsApp message carrying ref:<code>, a session started through a link) updates `last_*`;
-- `first_*` is written once.
create table assessments.attributions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  lead_id uuid references marketing.leads (id) on delete cascade,
  visitor_id text check (length(visitor_id) <= 64),
  conversation_id uuid references conversations.conversations (id) on delete set null,
  first_partner_id uuid not null,
  first_link_id uuid,
  first_channel text not null check (first_channel in ('web', 'whatsapp')),
  first_at timestamptz not null,
  last_partner_id uuid not null,
  last_link_id uuid,
  last_channel text not null check (last_channel in ('web', 'whatsapp')),
  last_at timestamptz not null,
  touches integer not null default 1,
  check ((lead_id is null) <> (visitor_id is null)),
  foreign key (tenant_id, first_partner_id) references assessments.partners (tenant_id, id) on delete cascade,
  foreign key (tenant_id, last_partner_id) references assessments.partners (tenant_id, id) on delete cascade,
  foreign key (first_link_id) references assessments.links (id) on delete set null,
  foreign key (last_link_id) references assessments.links (id) on delete set null
);
create unique index attributions_lead_key on assessments.attributions (tenant_id, lead_id) where lead_id is not null;
create unique index attributions_visitor_key on assessments.attributions (tenant_id, visitor_id) where visitor_id is not null;
create index attributions_conversation_idx on assessments.attributions (conversation_id) where conversation_id is not null;

create table assessments.products (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- The shop's own product id, as its webhook names it.
  sku text not null check (sku ~ '^[A-Za-z0-9._:-]{1,100}$'),
  title text not null check (length(title) between 1 and 200),
  price numeric(14, 2) not null check (price >= 0),
  currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
  -- A product-specific rate overrides the partner's (null: the partner's rate applies).
  commission_rate numeric(5, 4) check (commission_rate is null or (commission_rate >= 0 and commission_rate <= 1)),
  active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, sku),
  unique (tenant_id, id)
);

-- Signed purchase webhooks from the tenant's shop (Standard Webhooks signatures): the public key names the endpoint
-- in the URL, the sealed secret (lib/crypto SecretBox) verifies it.
create table assessments.shop_endpoints (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null unique references core.tenants (id) on delete cascade,
  public_key text not null unique,
  secret_sealed text not null,
  created_at timestamptz not null default now(),
  rotated_at timestamptz not null default now()
);

create table assessments.purchases (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  -- The shop's transaction id: the same purchase sent twice is stored once.
  external_id text not null check (length(external_id) between 1 and 200),
  source text not null check (source in ('api', 'webhook')),
  product_id uuid not null,
  quantity integer not null check (quantity >= 1),
  amount numeric(14, 2) not null check (amount >= 0),
  currency char(3) not null,
  lead_id uuid references marketing.leads (id) on delete set null,
  session_id uuid references assessments.sessions (id) on delete set null,
  visitor_id text check (length(visitor_id) <= 64),
  -- The attribution when the purchase was recorded: the commission goes to the last touch; the first is kept for reports.
  partner_id uuid,
  link_id uuid references assessments.links (id) on delete set null,
  first_partner_id uuid,
  first_link_id uuid references assessments.links (id) on delete set null,
  status text not null default 'completed' check (status in ('completed', 'refunded')),
  purchased_at timestamptz not null,
  refunded_at timestamptz,
  created_at timestamptz not null default now(),
  unique (tenant_id, external_id),
  unique (tenant_id, id),
  foreign key (tenant_id, product_id) references assessments.products (tenant_id, id) on delete restrict,
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete restrict,
  foreign key (tenant_id, first_partner_id) references assessments.partners (tenant_id, id) on delete restrict
);
create index purchases_partner_idx on assessments.purchases (tenant_id, partner_id, purchased_at) where partner_id is not null;
create index purchases_link_idx on assessments.purchases (tenant_id, link_id) where link_id is not null;
create index purchases_lead_idx on assessments.purchases (tenant_id, lead_id) where lead_id is not null;
create index purchases_session_idx on assessments.purchases (session_id) where session_id is not null;

create table assessments.commissions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  purchase_id uuid not null unique,
  partner_id uuid not null,
  -- How the amount was computed (domains/assessments/partners/commission-rule.ts): kept, so a later rate change
  -- never rewrites an earned commission.
  base_amount numeric(14, 2) not null,
  base_rate numeric(5, 4) not null,
  rate_source text not null check (rate_source in ('product', 'partner')),
  tier text not null,
  tier_multiplier numeric(4, 2) not null,
  rate numeric(5, 4) not null,
  amount numeric(14, 2) not null check (amount >= 0),
  currency char(3) not null,
  status text not null default 'pending' check (status in ('pending', 'approved', 'paid', 'rejected', 'reversed')),
  decided_by text,
  reason text check (length(reason) <= 500),
  approved_at timestamptz,
  paid_at timestamptz,
  rejected_at timestamptz,
  reversed_at timestamptz,
  created_at timestamptz not null default now(),
  unique (tenant_id, id),
  foreign key (tenant_id, purchase_id) references assessments.purchases (tenant_id, id) on delete restrict,
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete restrict
);
create index commissions_partner_idx on assessments.commissions (tenant_id, partner_id, status, approved_at);

create table assessments.withdrawals (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  partner_id uuid not null,
  amount numeric(14, 2) not null check (amount > 0),
  currency char(3) not null,
  status text not null default 'requested' check (status in ('requested', 'approved', 'completed', 'rejected')),
  requested_by text not null,
  decided_by text,
  -- The payout's reference (a bank transfer id) once completed; the reason when rejected.
  reference text check (length(reference) <= 200),
  reason text check (length(reason) <= 500),
  requested_at timestamptz not null default now(),
  approved_at timestamptz,
  completed_at timestamptz,
  rejected_at timestamptz,
  unique (tenant_id, id),
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete restrict
);
create index withdrawals_partner_idx on assessments.withdrawals (tenant_id, partner_id, requested_at);

-- Every movement of a partner's money, append-only. `balance_after` is not given by the writer: the trigger takes the
-- partner's row lock, adds `amount` to the balance and stores the result, so concurrent writers queue on the partner
-- and a movement that would take the balance below zero fails (check_violation) instead of being recorded.
create table assessments.ledger_entries (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references core.tenants (id) on delete cascade,
  partner_id uuid not null,
  kind text not null check (kind in ('commission_approved', 'commission_reversed', 'clawback', 'withdrawal_requested', 'withdrawal_released')),
  amount numeric(14, 2) not null check (amount <> 0),
  balance_after numeric(14, 2) not null check (balance_after >= 0),
  currency char(3) not null,
  commission_id uuid,
  withdrawal_id uuid,
  actor text not null,
  created_at timestamptz not null default now(),
  -- One entry of each kind per commission and per withdrawal: a retried approval cannot credit twice.
  unique (commission_id, kind),
  unique (withdrawal_id, kind),
  foreign key (tenant_id, partner_id) references assessments.partners (tenant_id, id) on delete restrict,
  foreign key (tenant_id, commission_id) references assessments.commissions (tenant_id, id) on delete restrict,
  foreign key (tenant_id, withdrawal_id) references assessments.withdrawals (tenant_id, id) on delete restrict
);
create index ledger_entries_partner_idx on assessments.ledger_entries (tenant_id, partner_id, id);

-- security definer: the runtime role may not write partners.balance itself (column grants below), only through this.
create function assessments.apply_ledger_entry() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pg_temp
as $$
declare
  current_balance numeric(14, 2);
  partner_currency char(3);
begin
  select p.balance, p.currency into current_balance, partner_currency
    from assessments.partners p where p.id = new.partner_id and p.tenant_id = new.tenant_id for no key update;
  if not found then
    raise exception 'partner % not found', new.partner_id using errcode = 'foreign_key_violation';
  end if;
  if new.currency <> partner_currency then
    raise exception 'ledger entry in % for a partner kept in %', new.currency, partner_currency using errcode = 'check_violation';
  end if;
  -- The id is drawn again under the lock: ids of one partner's entries then follow the order their balances were
  -- computed in (the first id was drawn before the wait), so reading by id replays the running balance.
  new.id := nextval(pg_get_serial_sequence('assessments.ledger_entries', 'id'));
  new.balance_after := current_balance + new.amount;
  if new.balance_after < 0 then
    raise exception 'insufficient balance' using errcode = 'check_violation', constraint = 'ledger_entries_balance_after_check';
  end if;
  update assessments.partners set balance = new.balance_after where id = new.partner_id;
  return new;
end $$;
create trigger ledger_entries_apply before insert on assessments.ledger_entries
  for each row execute function assessments.apply_ledger_entry();

create function assessments.refuse_ledger_change() returns trigger
  language plpgsql set search_path = pg_catalog, pg_temp
as $$
begin
  raise exception 'the ledger is append-only' using errcode = 'insufficient_privilege';
end $$;
create trigger ledger_entries_append_only before update or delete on assessments.ledger_entries
  for each row execute function assessments.refuse_ledger_change();

do $$
declare t text;
begin
  foreach t in array array['assessments.partners', 'assessments.links', 'assessments.link_clicks', 'assessments.attributions',
                           'assessments.products', 'assessments.shop_endpoints', 'assessments.purchases', 'assessments.commissions',
                           'assessments.withdrawals', 'assessments.ledger_entries'] loop
    execute format('alter table %s enable row level security', t);
    execute format('alter table %s force row level security', t);
    execute format('create policy tenant_isolation on %s using (tenant_id = core.current_tenant_id()) with check (tenant_id = core.current_tenant_id())', t);
  end loop;
end $$;

-- partners.balance is the ledger's: the runtime role neither inserts nor updates it directly.
grant select, delete on assessments.partners to app_user;
grant insert (tenant_id, code, name, commission_rate, tier, status, currency) on assessments.partners to app_user;
grant update (name, commission_rate, tier, status, clawback_due, updated_at) on assessments.partners to app_user;
grant select, insert, update, delete on assessments.links, assessments.products, assessments.shop_endpoints to app_user;
grant select, insert, update, delete on assessments.link_clicks, assessments.attributions to app_user;
grant select, insert, update on assessments.purchases, assessments.commissions, assessments.withdrawals to app_user;
-- The ledger: insert and read only (the trigger refuses the rest even to the owner).
grant select, insert on assessments.ledger_entries to app_user;

-- The public door of /l/<code> and POST /assessments/links/<code>/sessions: a link by its code, before any tenant is known.
create function assessments.find_public_link(p_code text)
  returns table (id uuid, tenant_id uuid, tenant_status text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select l.id, l.tenant_id, t.status from assessments.links l join core.tenants t on t.id = l.tenant_id where l.link_code = p_code
$$;
revoke execute on function assessments.find_public_link(text) from public;
grant execute on function assessments.find_public_link(text) to app_user;

-- The shop webhook's endpoint by its public key (its tenant and sealed secret), before any tenant is known.
create function assessments.find_shop_endpoint(p_public_key text)
  returns table (tenant_id uuid, secret_sealed text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$ select e.tenant_id, e.secret_sealed from assessments.shop_endpoints e where e.public_key = p_public_key $$;
revoke execute on function assessments.find_shop_endpoint(text) from public;
grant execute on function assessments.find_shop_endpoint(text) to app_user;
