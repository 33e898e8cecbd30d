-- A finished WhatsApp broadcast for the demo clinic (issue 13), with realistic outcomes: most delivered or read, a few
-- replies, some failed with Meta's 131026 (undeliverable), opted-out and incomplete leads skipped before sending.
-- Written as the dispatcher and the status webhooks leave it (recipients, messages, outbox rows). Idempotent: fixed
-- ids and `on conflict do nothing`. Needs 0003 (the demo number and its business account).
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into whatsapp.templates (id, tenant_id, business_account_id, meta_template_id, name, language, category, status, quality_score, components)
values ('00000000-0000-4000-8000-0000000000b4', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000b1',
        '100000000000004', 'december_checkup', 'en_US', 'MARKETING', 'APPROVED', 'GREEN',
        '[{"type":"BODY","text":"Hi {{1}}! December check-ups at Bright Smile Dental are 20% off for {{2}} patients. Reply YES and we will book you in."},{"type":"FOOTER","text":"Reply STOP to opt out"}]')
on conflict do nothing;

-- Sixty patients: 3 opted out (every 20th), 2 without a name (7 and 33).
insert into marketing.leads (id, tenant_id, phone_e164, phone_key, wa_id, name, source, status, tags, fields, opted_out_at, created_at)
select ('00000000-0000-4000-8000-' || lpad(to_hex(12255232 + g), 12, '0'))::uuid, '00000000-0000-4000-8000-000000000001',
       '+5511980000' || lpad(g::text, 3, '0'), '+5511980000' || lpad(g::text, 3, '0'), '5511980000' || lpad(g::text, 3, '0'),
       case when g in (7, 33) then null else (array['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Felipe', 'Gabi', 'Heitor'])[1 + g % 8] || ' ' ||
                                            (array['Souza', 'Lima', 'Costa', 'Alves', 'Rocha', 'Dias'])[1 + g % 6] end,
       'whatsapp', 'contacted', '{patient,december_checkup}', jsonb_build_object('plan', case when g % 2 = 0 then 'family' else 'individual' end),
       case when g % 20 = 0 then now() - interval '20 days' end, now() - interval '60 days'
  from generate_series(1, 60) g
on conflict do nothing;

insert into campaigns.broadcasts (id, tenant_id, name, status, phone_number_id, template_id, template_name, template_language, audience, parameters,
                                  recipient_count, skipped_count, dispatched_count, accepted_count, failed_count, transitions, version, created_by,
                                  materialised_at, started_at, finished_at, created_at, updated_at)
values ('00000000-0000-4000-8000-0000000000d1', '00000000-0000-4000-8000-000000000001', 'December check-up offer', 'completed',
        '00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-0000000000b4', 'december_checkup', 'en_US',
        '{"type":"filter","filter":{"tags":["december_checkup"],"tagMatch":"all"}}',
        '{"body":[{"field":"first_name"},{"field":"fields.plan","fallback":"our"}],"buttons":[]}',
        60, 5, 55, 51, 4, 2, 3, 'seed',
        now() - interval '3 days', now() - interval '3 days', now() - interval '3 days' + interval '2 minutes', now() - interval '4 days', now() - interval '3 days')
on conflict do nothing;

-- The messages as the status webhooks left them: every 11th failed (131026: 4 of them), then read / delivered / sent in turn.
with sent as (
  select g, ('00000000-0000-4000-8000-' || lpad(to_hex(12255232 + g), 12, '0'))::uuid as lead_id,
         ('00000000-0000-4000-8000-' || lpad(to_hex(12320768 + g), 12, '0'))::uuid as message_id,
         '5511980000' || lpad(g::text, 3, '0') as wa_id,
         now() - interval '3 days' + (g * interval '2 seconds') as at,
         case when g % 11 = 0 then 'failed' when g % 3 = 0 then 'read' when g % 3 = 1 then 'delivered' else 'sent' end as status,
         (array['Ana', 'Bruno', 'Carla', 'Diego', 'Elisa', 'Felipe', 'Gabi', 'Heitor'])[1 + g % 8] as first_name
    from generate_series(1, 60) g
   where g % 20 <> 0 and g not in (7, 33)
)
insert into whatsapp.messages (id, tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, status_rank, status_at,
                               sent_at, delivered_at, read_at, failed_at, error_code, error_title, occurred_at)
select message_id, '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000b2', lead_id, 'outbound',
       'wamid.seed-broadcast-' || g, wa_id, 'template',
       jsonb_build_object('name', 'december_checkup', 'language', jsonb_build_object('code', 'en_US'),
                          'components', jsonb_build_array(jsonb_build_object('type', 'body', 'parameters', jsonb_build_array(
                            jsonb_build_object('type', 'text', 'text', first_name), jsonb_build_object('type', 'text', 'text', case when g % 2 = 0 then 'family' else 'individual' end))))),
       status, whatsapp.status_rank(status), at + interval '30 seconds',
       case when status <> 'failed' then at + interval '2 seconds' end,
       case when status in ('delivered', 'read') then at + interval '5 seconds' end,
       case when status = 'read' then at + interval '40 minutes' end,
       case when status = 'failed' then at + interval '3 seconds' end,
       case when status = 'failed' then 131026 end, case when status = 'failed' then 'Message undeliverable' end, at
  from sent
on conflict do nothing;

insert into whatsapp.outbound_sends (message_id, tenant_id, phone_number_id, wa_id, kind, body, template_id, source, requested_by, idempotency_key,
                                     state, attempts, call_started_at, accepted_at, created_at, updated_at)
select m.id, m.tenant_id, m.phone_number_id, m.wa_id, 'template',
       jsonb_build_object('messaging_product', 'whatsapp', 'recipient_type', 'individual', 'to', m.wa_id, 'type', 'template', 'template', m.content),
       '00000000-0000-4000-8000-0000000000b4', 'broadcast', 'broadcast:00000000-0000-4000-8000-0000000000d1', 'wa-out:' || m.id::text,
       'accepted', 1, m.occurred_at, m.occurred_at + interval '300 milliseconds', m.occurred_at, m.occurred_at
  from whatsapp.messages m
 where m.wamid like 'wamid.seed-broadcast-%'
on conflict do nothing;

-- The audience snapshot: one recipient per lead, skipped ones with their reason.
insert into campaigns.broadcast_recipients (tenant_id, broadcast_id, lead_id, wa_id, state, skip_reason, skip_detail, components, message_id, error_code, queued_at, settled_at)
select '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000d1', l.id, l.wa_id,
       case when l.opted_out_at is not null or l.name is null then 'skipped' when m.status = 'failed' then 'failed' else 'sent' end,
       case when l.opted_out_at is not null then 'opted_out' when l.name is null then 'missing_parameter' end,
       case when l.opted_out_at is not null then 'opted out on ' || to_char(l.opted_out_at, 'YYYY-MM-DD') when l.name is null then 'no value for body {{1}} (first_name)' end,
       m.content -> 'components', m.id, m.error_code, m.occurred_at, m.occurred_at + interval '300 milliseconds'
  from marketing.leads l left join whatsapp.messages m on m.lead_id = l.id and m.wamid like 'wamid.seed-broadcast-%'
 where 'december_checkup' = any(l.tags)
on conflict do nothing;

-- Replies: every 7th patient who got the message answered within the hour.
insert into whatsapp.messages (id, tenant_id, phone_number_id, lead_id, direction, wamid, wa_id, type, content, status, occurred_at)
select ('00000000-0000-4000-8000-' || lpad(to_hex(12386304 + g), 12, '0'))::uuid, m.tenant_id, m.phone_number_id, m.lead_id, 'inbound',
       'wamid.seed-broadcast-reply-' || g, m.wa_id, 'text', '{"body":"YES please!"}', 'received', m.occurred_at + interval '45 minutes'
  from generate_series(1, 60) g
  join whatsapp.messages m on m.wamid = 'wamid.seed-broadcast-' || g and m.status <> 'failed'
 where g % 7 = 0
on conflict do nothing;
