-- A demo business with two API keys, so a fresh `npm start` has someone to be. Idempotent: safe to run again.
-- The keys below are for local development only; AUTO_SEED never runs with NODE_ENV=production.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into core.tenants (id, name, slug, default_country, timezone)
values ('00000000-0000-4000-8000-000000000001', 'Bright Smile Dental (demo)', 'demo', 'BR', 'America/Sao_Paulo')
on conflict (id) do nothing;

insert into core.api_keys (id, tenant_id, name, role, prefix, key_hash, created_by)
values
  ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'demo admin key', 'admin',
   'wak_demo0000', sha256(convert_to('wak_demo0000_local-development-only-demo-admin-key-00001', 'UTF8')), 'seed'),
  ('00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-000000000001', 'demo read-only key', 'read_only',
   'wak_demo0001', sha256(convert_to('wak_demo0001_local-development-only-demo-reader-key-0001', 'UTF8')), 'seed')
on conflict (id) do nothing;

insert into core.audit_log (tenant_id, actor, action, target_type, target_id, details)
select '00000000-0000-4000-8000-000000000001', 'seed', 'tenant.created', 'tenant', '00000000-0000-4000-8000-000000000001', '{"slug":"demo"}'
where not exists (select 1 from core.audit_log where tenant_id = '00000000-0000-4000-8000-000000000001' and action = 'tenant.created');
