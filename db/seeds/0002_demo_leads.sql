-- A lead form and two leads for the demo tenant, so the forms and leads APIs have something to show. Idempotent.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into marketing.forms (id, tenant_id, public_key, name, definition, created_by)
values ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-000000000001', 'wf_demo0000000000000000000000000001',
        'Agende sua avaliação (demo)',
        '{"fields": [{"name": "name", "label": "Nome", "type": "text", "required": true, "maxLength": 1000, "maps_to": "name"},
                     {"name": "email", "label": "E-mail", "type": "email", "required": false, "maps_to": "email"},
                     {"name": "phone", "label": "WhatsApp", "type": "phone", "required": true, "maps_to": "phone"}],
          "allowedOrigins": ["http://localhost:8080"],
          "consent": {"required": true, "text": "Aceito ser contatado pelo WhatsApp.", "policyVersion": "2025-01"},
          "honeypotField": "website", "minFillSeconds": 3}',
        'seed')
on conflict (id) do nothing;

insert into marketing.leads (id, tenant_id, email, phone_e164, phone_key, name, source, status, tags)
values
  ('00000000-0000-4000-8000-0000000001a1', '00000000-0000-4000-8000-000000000001', 'ana.souza@example.com', '+5521987654321',
   '+5521987654321', 'Ana Souza', 'web_form', 'new', '{implants}'),
  ('00000000-0000-4000-8000-0000000001a2', '00000000-0000-4000-8000-000000000001', 'bruno@example.com', '+5511912345678',
   '+5511912345678', 'Bruno Lima', 'web_form', 'contacted', '{}')
on conflict do nothing;
