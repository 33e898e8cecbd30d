-- The demo clinic's campaign builder (issue 13): a product with its primary image and a background version, and a
-- scheduled lead-generation campaign promoting it (utm_campaign `clareamento-verao`, the code its leads' UTM carries).
-- media-plans and broadcasts seeds add the campaign's plan, snapshots and broadcast. Idempotent.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into campaigns.products (id, tenant_id, name, sku, description, price, currency, url, utm)
values ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', 'Clareamento dental a laser', 'CLR-LASER-01',
        'Clareamento em consultório, 2 sessões de 40 minutos, com avaliação gratuita.', 1290.00, 'BRL',
        'https://brightsmile.example.com/clareamento', '{"source": "meta", "medium": "paid_social", "campaign": "clareamento-verao"}')
on conflict do nothing;

insert into campaigns.product_images (id, tenant_id, product_id, kind, parent_image_id, url, alt, is_primary, position, width, height)
values ('00000000-0000-4000-8000-0000000000c2', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1', 'image', null,
        'https://brightsmile.example.com/img/clareamento-1080.jpg', 'Sorriso depois do clareamento', true, 0, 1080, 1080),
       ('00000000-0000-4000-8000-0000000000c3', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1', 'background',
        '00000000-0000-4000-8000-0000000000c2', 'https://brightsmile.example.com/img/clareamento-1080-bg-azul.png', 'Fundo azul', false, 0, 1080, 1080)
on conflict do nothing;

insert into campaigns.campaigns (id, tenant_id, name, type, status, description, budget, currency, starts_at, ends_at, product_id, utm_campaign,
                                 config, version, created_by)
values ('00000000-0000-4000-8000-0000000000c4', '00000000-0000-4000-8000-000000000001', 'Clareamento de verão', 'lead_generation', 'scheduled',
        'Leads para avaliação gratuita de clareamento, conversa pelo WhatsApp.', 6000.00, 'BRL',
        date_trunc('day', now()) + interval '3 days', date_trunc('day', now()) + interval '33 days',
        '00000000-0000-4000-8000-0000000000c1', 'clareamento-verao',
        '{"audience": {"locations": ["São Paulo, BR"], "ageMin": 25, "ageMax": 55, "genders": ["all"], "interests": ["odontologia estética"]},
          "platforms": [{"platform": "meta", "placements": ["feed", "stories"], "objective": "leads"}, {"platform": "google", "placements": ["search"]}, {"platform": "whatsapp"}],
          "creative": {"headline": "Sorriso mais branco em 2 sessões", "primaryText": "Avaliação gratuita. Fale com a gente pelo WhatsApp.", "callToAction": "Enviar mensagem", "landingUrl": "https://brightsmile.example.com/clareamento"},
          "publish": {"mode": "scheduled", "publishAt": "2026-12-04T12:00:00Z", "timezone": "America/Sao_Paulo"}}',
        2, 'seed')
on conflict do nothing;

insert into core.audit_log (tenant_id, actor, action, target_type, target_id, details)
select '00000000-0000-4000-8000-000000000001', 'seed', 'campaign.created', 'campaign', '00000000-0000-4000-8000-0000000000c4', '{"version": 1}'
where not exists (select 1 from core.audit_log where target_id = '00000000-0000-4000-8000-0000000000c4' and action = 'campaign.created');
