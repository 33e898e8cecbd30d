-- Pausing, stopping or failing a broadcast cancels its messages still waiting in the outbox (never claimed by the sender), so nothing of it goes out after the transition commits except the sends already in flight.

-- cancelled: taken out of the outbox before any call was made (Meta never saw it); final, like accepted and failed.
alter table whatsapp.outbound_sends drop constraint outbound_sends_state_check;
alter table whatsapp.outbound_sends add constraint outbound_sends_state_check
  check (state in ('queued', 'sending', 'in_doubt', 'accepted', 'failed', 'cancelled'));

-- The sender's head lookup covers only open sends; a cancelled one is closed.
drop index whatsapp.outbound_sends_open_idx;
create index outbound_sends_open_idx on whatsapp.outbound_sends (tenant_id, phone_number_id, wa_id, seq)
  where state not in ('accepted', 'failed', 'cancelled');
