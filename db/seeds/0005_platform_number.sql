-- The platform's own WhatsApp number (config PLATFORM_TENANT_ID / PLATFORM_PHONE_NUMBER_ID, the development defaults),
-- from which onboarding nudges reach businesses as the approved onboarding_reminder template. Idempotent.
-- DEV ONLY: the access token is the demo number's (sealed with the development SECRETS_KEY fallback; the emulator
-- accepts it, Meta does not). In production the operator creates this tenant and number and gets the template approved.
select set_config('app.tenant_id', '00000000-0000-4000-8000-0000000000f0', true);

insert into core.tenants (id, name, slug, default_country, timezone)
values ('00000000-0000-4000-8000-0000000000f0', 'Platform (onboarding reminders)', 'platform', 'US', 'UTC')
on conflict (id) do nothing;

insert into whatsapp.business_accounts (id, tenant_id, waba_id, name)
values ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-0000000000f0', '100000000000101', 'Platform')
on conflict do nothing;

insert into whatsapp.phone_numbers (id, tenant_id, business_account_id, phone_number_id, display_phone_number, verified_name, app_mode, access_token_sealed)
values ('00000000-0000-4000-8000-0000000000f2', '00000000-0000-4000-8000-0000000000f0', '00000000-0000-4000-8000-0000000000f1',
        '100000000000102', '+1 555 000 0102', 'Platform', 'platform',
        'v1.RDBwcDMzESqoxomD.LYv1niKsm7qhmvWVpkiSrA.EedHAWTE1SD5mAqjdQ3RghND7IfNYQaIM22kqFvUtyV_gRAQh49wVkbV2kXgtUtm0A')
on conflict do nothing;

-- Utility (an account the business started setting up), so opt-out from marketing does not apply; the nudge still
-- respects any opt-out and suppression of the contact (domains/onboarding/service.ts sendWhatsAppNudge).
insert into whatsapp.templates (id, tenant_id, business_account_id, meta_template_id, name, language, category, status, components)
values ('00000000-0000-4000-8000-0000000000f3', '00000000-0000-4000-8000-0000000000f0', '00000000-0000-4000-8000-0000000000f1',
        '100000000000103', 'onboarding_reminder', 'en', 'UTILITY', 'APPROVED',
        '[{"type":"BODY","text":"Hi! The WhatsApp setup of {{1}} is waiting for you. Pick up where you left off: {{2}}"}]')
on conflict do nothing;
