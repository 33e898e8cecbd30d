-- Bind each webhook delivery to the Meta app whose secret verified it (an own-app secret reaches only that app's numbers), and keep signed deliveries that can never be stored as jsonb as raw bytes instead of failing their batch.

-- ---------------------------------------------------------------------------------------------------------
-- An app's identity is a keyed fingerprint of its secret (HMAC under SECRETS_KEY; domains/whatsapp/app-secrets.ts),
-- not the meta_app_id a tenant types in: anyone can claim an app id, only the app's owner can sign with its secret.
-- Registrations with the same secret are the same app. Own-app numbers registered before this migration get their
-- key the first time the webhook opens their secret (whatsapp.bind_own_app_keys below).
alter table whatsapp.phone_numbers add column app_key bytea;
alter table whatsapp.phone_numbers add constraint phone_numbers_app_key_own_only check (app_mode = 'own' or app_key is null);

-- Who signed a delivery: 'platform', 'own:<hex app key>', or 'unbound' (stored before this migration or written
-- outside the inbox: nobody can say which app signed it, so processing refuses its items).
alter table whatsapp.webhook_deliveries add column signed_by text not null default 'unbound'
  constraint webhook_deliveries_signed_by_check check (signed_by in ('platform', 'unbound') or signed_by ~ '^own:[0-9a-f]{64}$');
-- Deduplication is per (bytes, signer): the same bytes signed by another app are another delivery, so nobody can
-- pre-empt a genuine delivery by posting its bytes first under their own app (the genuine one would have been
-- taken for a duplicate of the forgery and bound to the wrong app).
alter table whatsapp.webhook_deliveries drop constraint webhook_deliveries_body_sha256_key;
create unique index webhook_deliveries_body_signer_uidx on whatsapp.webhook_deliveries (body_sha256, signed_by);

-- ---------------------------------------------------------------------------------------------------------
-- Correctly signed deliveries that PostgreSQL can never store as jsonb (a \u0000 escape, a lone surrogate, nesting
-- beyond the stack limit). Acknowledged so Meta stops retrying, kept byte for byte for operators. A platform table:
-- no tenant is known for bytes that were never routed.
create table whatsapp.unparseable_deliveries (
  id bigint generated always as identity primary key,
  body_sha256 bytea not null,
  signed_by text not null check (signed_by = 'platform' or signed_by ~ '^own:[0-9a-f]{64}$'),
  raw_body bytea not null,
  reason text not null,
  received_at timestamptz not null default now(),
  unique (body_sha256, signed_by)
);
create index unparseable_deliveries_received_idx on whatsapp.unparseable_deliveries (received_at);
grant select, insert, delete on whatsapp.unparseable_deliveries to app_user;

-- ---------------------------------------------------------------------------------------------------------
-- Routing answers "whose is this id, and under which app": processing checks the app against the delivery's signer.
drop function whatsapp.route_phone_numbers(text[]);
create function whatsapp.route_phone_numbers(p_phone_number_ids text[])
  returns table (phone_number_id text, tenant_id uuid, id uuid, status text, app_mode text, app_key text)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select p.phone_number_id, p.tenant_id, p.id, p.status, p.app_mode, encode(p.app_key, 'hex') from whatsapp.phone_numbers p
   where p.phone_number_id = any(p_phone_number_ids)
$$;

-- A WABA is under an app when one of its numbers is registered under it.
drop function whatsapp.route_business_accounts(text[]);
create function whatsapp.route_business_accounts(p_waba_ids text[])
  returns table (waba_id text, tenant_id uuid, id uuid, platform boolean, app_keys text[])
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select b.waba_id, b.tenant_id, b.id,
         exists (select 1 from whatsapp.phone_numbers p where p.business_account_id = b.id and p.app_mode = 'platform'),
         array(select distinct encode(p.app_key, 'hex') from whatsapp.phone_numbers p
                where p.business_account_id = b.id and p.app_key is not null)
    from whatsapp.business_accounts b where b.waba_id = any(p_waba_ids)
$$;

-- Candidate secrets for an own-app signature, with their registration (to bind keys of older rows). Which app
-- verified a delivery is decided by the secret that matched, never by the ids the unverified body names.
drop function whatsapp.own_app_secrets(text[], text[]);
create function whatsapp.own_app_secrets(p_phone_number_ids text[], p_waba_ids text[])
  returns table (phone_id uuid, app_secret_sealed text, bound boolean)
  language sql stable security definer set search_path = pg_catalog, pg_temp
as $$
  select p.id, p.app_secret_sealed, p.app_key is not null
    from whatsapp.phone_numbers p join whatsapp.business_accounts b on b.id = p.business_account_id
   where p.app_mode = 'own' and (p.phone_number_id = any(p_phone_number_ids) or b.waba_id = any(p_waba_ids))
$$;

-- Sets the app key of own-app numbers that have none, only for the exact sealed secret it was computed from.
create function whatsapp.bind_own_app_keys(p_phone_ids uuid[], p_sealed text[], p_keys bytea[])
  returns integer
  language sql volatile security definer set search_path = pg_catalog, pg_temp
as $$
  with bound as (
    update whatsapp.phone_numbers p set app_key = k.app_key
      from unnest(p_phone_ids, p_sealed, p_keys) as k(id, sealed, app_key)
     where p.id = k.id and p.app_mode = 'own' and p.app_key is null and p.app_secret_sealed = k.sealed
    returning 1
  )
  select count(*)::int from bound
$$;

revoke execute on function whatsapp.route_phone_numbers(text[]), whatsapp.route_business_accounts(text[]),
  whatsapp.own_app_secrets(text[], text[]), whatsapp.bind_own_app_keys(uuid[], text[], bytea[]) from public;
grant execute on function whatsapp.route_phone_numbers(text[]), whatsapp.route_business_accounts(text[]),
  whatsapp.own_app_secrets(text[], text[]), whatsapp.bind_own_app_keys(uuid[], text[], bytea[]) to app_user;
