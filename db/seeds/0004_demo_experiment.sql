-- The demo bot's greeting experiment (issue 11): the flow's first node, greeting_test, branches on greeting-tone, so
-- `npm run play-lead` shows a lead its variation and GET /v1/experiments shows it running. Idempotent.
select set_config('app.tenant_id', '00000000-0000-4000-8000-000000000001', true);

insert into experiments.experiments (id, tenant_id, key, name, hypothesis, status, unit, seed, coverage, variations, goals, phase, started_at)
values ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-000000000001', 'greeting-tone', 'Bot greeting: full or short',
        'A shorter welcome gets more new patients to pick a service', 'running', 'lead', 'greeting-tone', 1,
        '[{"key":"full","name":"Full welcome","weight":0.5},{"key":"short","name":"Short welcome","weight":0.5}]',
        '[{"event":"lead.qualified","windowHours":168},{"event":"whatsapp.message_received","windowHours":24}]', 1, now())
on conflict do nothing;

insert into experiments.phases (tenant_id, experiment_id, phase, variations, coverage)
values ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000e1', 1,
        '[{"key":"full","name":"Full welcome","weight":0.5},{"key":"short","name":"Short welcome","weight":0.5}]', 1)
on conflict do nothing;
