-- The demo clinic's media plan (issue 13): the summer whitening campaign's budget split across Meta, Google and
-- click-to-WhatsApp ads, at version 2 after the clinic's review, with two named snapshots (the first draft and the
-- approved plan), so GET /v1/media-plans/…/diff and …/rollback have something to show. The campaign is the one
-- 0005_demo_campaign.sql seeds (fixed id …c4, utm_campaign `clareamento-verao`); it is created here, bare, only if
-- that seed is absent. Idempotent.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into campaigns.campaigns (id, tenant_id, name, type, status, budget, currency, utm_campaign, created_by)
values ('00000000-0000-4000-8000-0000000000c4', '00000000-0000-4000-8000-000000000001', 'Clareamento de verão', 'lead_generation', 'scheduled',
        6000.00, 'BRL', 'clareamento-verao', 'seed')
on conflict do nothing;

insert into campaigns.media_plans (id, tenant_id, campaign_id, name, budget, currency, market, goal, niche, lead_to_sale_pct, revenue_per_sale,
                                   manual_split, full_state, template_ref, version, created_by)
select '00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-000000000001', c.id, 'Plano de mídia: clareamento de verão',
       6000.00, 'BRL', 'BR', 'leads', 'health', 18, 1290.00, false, '{"step": "review", "notes": "Aprovado pela clínica em reunião"}',
       'builtin:health-clinic', 2, 'seed'
  from campaigns.campaigns c
 where c.tenant_id = '00000000-0000-4000-8000-000000000001' and c.utm_campaign = 'clareamento-verao'
on conflict do nothing;

insert into campaigns.media_plan_allocations (tenant_id, plan_id, platform, position, percent, cpl)
select '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000d1', a.platform, a.position, a.percent, a.cpl
  from (values ('meta', 0, 45.0, 28.0), ('google', 1, 25.0, 55.0), ('whatsapp', 2, 30.0, 14.0)) a(platform, position, percent, cpl)
 where exists (select 1 from campaigns.media_plans where id = '00000000-0000-4000-8000-0000000000d1')
on conflict do nothing;

-- The snapshots hold the plan document as the API writes it (domains/campaigns/media-plans/service.ts, documentOf).
insert into campaigns.media_plan_snapshots (id, tenant_id, plan_id, name, plan_version, state, created_by, created_at)
select s.id, '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000d1', s.name, s.plan_version, s.state::jsonb, 'seed', now() - s.age
  from (values
    ('00000000-0000-4000-8000-0000000000d2'::uuid, 'Rascunho inicial', 1, interval '2 days',
     '{"name": "Plano de mídia: clareamento de verão", "campaignId": "00000000-0000-4000-8000-0000000000c4", "budget": "5000.00", "currency": "BRL",
       "market": "BR", "goal": "leads", "niche": "health", "leadToSalePct": "15", "revenuePerSale": "1290.00", "manualSplit": false,
       "allocations": [{"platform": "google", "percent": "40"}, {"platform": "meta", "percent": "30"}, {"platform": "whatsapp", "percent": "30"}],
       "fullState": {"step": "budget"}}'),
    ('00000000-0000-4000-8000-0000000000d3'::uuid, 'Aprovado pela clínica', 2, interval '1 day',
     '{"name": "Plano de mídia: clareamento de verão", "campaignId": "00000000-0000-4000-8000-0000000000c4", "budget": "6000.00", "currency": "BRL",
       "market": "BR", "goal": "leads", "niche": "health", "leadToSalePct": "18", "revenuePerSale": "1290.00", "manualSplit": false,
       "allocations": [{"platform": "meta", "percent": "45", "cpl": "28"}, {"platform": "google", "percent": "25", "cpl": "55"}, {"platform": "whatsapp", "percent": "30", "cpl": "14"}],
       "fullState": {"step": "review", "notes": "Aprovado pela clínica em reunião"}}')
  ) s(id, name, plan_version, age, state)
 where exists (select 1 from campaigns.media_plans where id = '00000000-0000-4000-8000-0000000000d1')
on conflict do nothing;

insert into core.audit_log (tenant_id, actor, action, target_type, target_id, details)
select '00000000-0000-4000-8000-000000000001', 'seed', a.action, 'media_plan', '00000000-0000-4000-8000-0000000000d1', a.details::jsonb
  from (values (1, 'media_plan.created', '{"version": 1, "templateId": "builtin:health-clinic"}'),
               (2, 'media_plan.snapshot_created', '{"name": "Rascunho inicial", "version": 1}'),
               (3, 'media_plan.updated', '{"version": 2, "fields": ["budget", "leadToSalePct", "allocations", "fullState"]}'),
               (4, 'media_plan.snapshot_created', '{"name": "Aprovado pela clínica", "version": 2}')) a(n, action, details)
 where exists (select 1 from campaigns.media_plans where id = '00000000-0000-4000-8000-0000000000d1')
   and not exists (select 1 from core.audit_log where target_id = '00000000-0000-4000-8000-0000000000d1' and action = a.action and details = a.details::jsonb)
 order by a.n;
