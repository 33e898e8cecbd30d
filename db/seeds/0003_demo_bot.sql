-- The demo clinic's WhatsApp number (on the local Cloud API emulator `npm start` runs) and its published
-- lead-qualification bot, so a fresh install can be talked to from the terminal (`npm run play-lead`). Idempotent.
-- DEV ONLY: the access token below is sealed with the fixed development SECRETS_KEY fallback (lib/crypto.ts); it
-- opens to a fake token the emulator accepts, and is useless against Meta. Seeds never run in production.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

-- The emulator's defaults: WABA 100000000000001, phone number id 100000000000002, display number 15550001234.
insert into whatsapp.business_accounts (id, tenant_id, waba_id, name)
values ('00000000-0000-4000-8000-0000000000b1', '00000000-0000-4000-8000-000000000001', '100000000000001', 'Bright Smile Dental (demo)')
on conflict do nothing;

insert into whatsapp.phone_numbers (id, tenant_id, business_account_id, phone_number_id, display_phone_number, verified_name, app_mode, access_token_sealed)
values ('00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000b1',
        '100000000000002', '+1 555 000 1234', 'Bright Smile Dental', 'platform',
        'v1.RDBwcDMzESqoxomD.LYv1niKsm7qhmvWVpkiSrA.EedHAWTE1SD5mAqjdQ3RghND7IfNYQaIM22kqFvUtyV_gRAQh49wVkbV2kXgtUtm0A')
on conflict do nothing;

-- An approved utility template, for leads whose 24-hour window has closed.
insert into whatsapp.templates (id, tenant_id, business_account_id, meta_template_id, name, language, category, status, components)
values ('00000000-0000-4000-8000-0000000000b3', '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000b1',
        '100000000000003', 'appointment_reminder', 'en_US', 'UTILITY', 'APPROVED',
        '[{"type":"BODY","text":"Hi {{1}}, this is Bright Smile Dental: a reminder of your appointment on {{2}}. Reply here if you need to change it."}]')
on conflict do nothing;

-- The bot: domains/conversations/flows/demo-qualification-flow.ts, as version 1, published.
insert into conversations.flows (id, tenant_id, name, latest_version, published_version, published_at)
values ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001', 'Dental clinic: new patient qualification', 1, null, null)
on conflict do nothing;

insert into conversations.flow_versions (tenant_id, flow_id, version, document, created_by)
values ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1', 1,
        '{"name":"Dental clinic: new patient qualification","description":"Greets new WhatsApp contacts, asks what they need and when, collects an email and routes implant leads to sales.","trigger":{"type":"first_message"},"startNodeId":"greeting_test","nodes":[{"type":"experiment","id":"greeting_test","experimentKey":"greeting-tone","variations":[{"variationKey":"full","next":"greet"},{"variationKey":"short","next":"greet_short"}],"otherwise":"greet"},{"type":"send_message","id":"greet_short","text":"Hi {{lead.name|there}}! 👋 Welcome to Bright Smile Dental.","next":"ask_service"},{"type":"send_message","id":"greet","text":"Hi {{lead.name|there}}! 👋 Welcome to Bright Smile Dental. I''m the clinic''s assistant and I''ll get you booked in under a minute.","next":"ask_service"},{"type":"ask","id":"ask_service","text":"What can we help you with?","answerKey":"service","input":{"kind":"buttons","options":[{"id":"cleaning","title":"Cleaning & check-up"},{"id":"implants","title":"Implants & braces"},{"id":"human","title":"Talk to a person"}]},"invalidText":"Sorry, I did not get that. Please tap one of the buttons below 👇","maxAttempts":3,"onMaxAttempts":"talk_to_person","timeout":{"afterSeconds":3600,"reminderText":"Still there? Just tap one of the options above and we will find you a slot 🙂","thenNodeId":"no_reply"},"next":"route_service"},{"type":"branch","id":"route_service","rules":[{"when":{"answer":"service","equals":"human"},"next":"talk_to_person"}],"otherwise":"ask_time"},{"type":"ask","id":"ask_time","text":"Great choice: {{answers.service}}. When would you prefer to come in?","answerKey":"preferred_time","input":{"kind":"list","buttonText":"See times","options":[{"id":"weekday_morning","title":"Weekday morning","description":"Mon-Fri, 8:00-12:00"},{"id":"weekday_afternoon","title":"Weekday afternoon","description":"Mon-Fri, 12:00-18:00"},{"id":"weekday_evening","title":"Weekday evening","description":"Mon-Fri, 18:00-20:00"},{"id":"saturday","title":"Saturday","description":"Sat, 8:00-13:00"}]},"invalidText":"Please pick a time from the list 👇","onMaxAttempts":"talk_to_person","next":"save_time"},{"type":"set_field","id":"save_time","field":"preferred_time","value":"{{answers.preferred_time}}","next":"ask_email"},{"type":"ask","id":"ask_email","text":"What''s your email? We''ll send your appointment confirmation there.","answerKey":"email","input":{"kind":"text","validate":"email"},"invalidText":"Hmm, that doesn''t look like an email address. Could you check it? (e.g. maria@example.com)","maxAttempts":3,"onMaxAttempts":"tag_no_email","next":"save_email"},{"type":"set_field","id":"save_email","field":"email","value":"{{answers.email}}","next":"route_value"},{"type":"tag","id":"tag_no_email","add":["no_email"],"next":"route_value"},{"type":"branch","id":"route_value","rules":[{"when":{"answer":"service","equals":"implants"},"next":"qualify_implants"}],"otherwise":"tag_cleaning"},{"type":"qualify","id":"qualify_implants","status":"qualified","next":"tag_implants"},{"type":"tag","id":"tag_implants","add":["service:implants","high_value"],"next":"thanks"},{"type":"tag","id":"tag_cleaning","add":["service:cleaning"],"next":"thanks"},{"type":"end","id":"thanks","text":"Thank you, {{lead.name|and see you soon}}! 🦷 Our team will confirm your {{answers.service}} appointment ({{answers.preferred_time}}) here on WhatsApp shortly."},{"type":"handover","id":"talk_to_person","text":"Sure! I''m passing you to our front desk. Someone will reply right here shortly (Mon-Sat, 8:00-20:00).","note":"Lead asked for a person (service: {{answers.service|not chosen}})"},{"type":"end","id":"no_reply","text":"No worries, {{lead.name|there}}. Whenever you''re ready, just send us a message here. 😊"}]}', 'seed')
on conflict do nothing;

update conversations.flows set published_version = 1, published_at = now()
 where id = '00000000-0000-4000-8000-0000000000c1' and published_version is null and latest_version = 1;
