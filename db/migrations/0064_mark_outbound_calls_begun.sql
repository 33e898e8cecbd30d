-- After a kill -9 the outbox could not tell a send whose Graph call had begun from one its worker had only claimed
-- (`sending` is committed before the send waits for its rate slots, up to about a second): both waited the 5-minute
-- grace for status webhooks that could only come for the first kind (bench:broadcasts, 10,000 recipients: the last
-- send accepted 300 s after the kill, the whole run 2.2–2.6× longer than its sending). Now the sender commits
-- `call_began_at` just before its call, and only if its claim (the attempt number) is still its own. A claim without
-- it never reached Meta: once it is older than a runner could still be waiting for its slots, another runner claims
-- it again and sends at once; the old runner's mark then finds the attempt changed and it does not call. A claim with
-- it is ambiguous, as before (evidence from the status webhooks, else the grace).
alter table whatsapp.outbound_sends add column call_began_at timestamptz;
comment on column whatsapp.outbound_sends.call_began_at is
  'committed just before the Graph call of the current attempt (null: claimed, the call never began)';
-- Open sends claimed before this migration may have been called: treat them as begun (the grace applies, as before).
update whatsapp.outbound_sends set call_began_at = call_started_at where state in ('sending', 'in_doubt');
