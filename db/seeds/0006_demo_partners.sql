-- A demo partner (a distributor) with a link to the demo health check (seeded by 0005), a product with its own
-- commission rate, so `curl -i localhost:3001/l/demo-ana-health` redirects and the partner API has something to show.
-- Idempotent (fixed ids, on conflict do nothing); the link only when the health check exists.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into assessments.partners (id, tenant_id, code, name, commission_rate, tier, currency)
values ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-000000000001', 'ana-wellness', 'Ana Lima Wellness (demo)', 0.1000, 'silver', 'USD')
on conflict do nothing;

insert into assessments.links (id, tenant_id, partner_id, assessment_id, link_code, campaign_name, type, target_audience, focus_area, destination)
select '00000000-0000-4000-8000-0000000000f2', a.tenant_id, '00000000-0000-4000-8000-0000000000f1', a.id, 'demo-ana-health',
       'Spring check-ups', 'campaign', 'adults 30-55 who run', 'sleep and activity', 'web'
  from assessments.assessments a
 where a.tenant_id = '00000000-0000-4000-8000-000000000001' and a.key = 'health_check'
on conflict do nothing;

insert into assessments.products (id, tenant_id, sku, title, price, currency, commission_rate)
values ('00000000-0000-4000-8000-0000000000f3', '00000000-0000-4000-8000-000000000001', 'coaching-3m', 'Three months of health coaching', 240.00, 'USD', 0.1500)
on conflict do nothing;
