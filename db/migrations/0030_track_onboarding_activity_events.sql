-- Each onboarding session remembers the last step activity already recorded as an analytics event, so a view records only what is new instead of reading the session's whole history every time.
alter table onboarding.sessions add column activity_events_through bigint not null default 0;
